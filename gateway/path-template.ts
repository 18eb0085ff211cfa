/**
 * google.api.http path templates (google/api/http.proto):
 *
 *     Template = "/" Segments [ Verb ] ;
 *     Segments = Segment { "/" Segment } ;
 *     Segment  = "*" | "**" | LITERAL | Variable ;
 *     Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *     Verb     = ":" LITERAL ;
 *
 * e.g. "/v1/events/{id}", "/v1/bookings/{id}:cancel",
 * "/v1/{name=projects/*\/locations/*}". "**" matches the rest of the path.
 */
export interface PathTemplate {
  readonly source: string;
  readonly segments: readonly Segment[];
  readonly verb: string | undefined;
  readonly variables: readonly Variable[];
}

type Segment = { kind: "literal"; value: string } | { kind: "any" } | { kind: "rest" };

interface Variable {
  /** Dotted field path, split: "event.id" → ["event", "id"]. */
  fieldPath: string[];
  /** Index of the first segment the variable covers. */
  start: number;
  /** Index after its last segment; undefined when it ends in "**". */
  end: number | undefined;
}

export function parsePathTemplate(source: string): PathTemplate {
  const fail = (why: string): never => {
    throw new Error(`invalid path template ${JSON.stringify(source)}: ${why}`);
  };
  if (!source.startsWith("/")) fail("must start with /");
  let body = source.slice(1);
  let verb: string | undefined;
  const colon = body.lastIndexOf(":");
  if (colon > body.lastIndexOf("/") && colon > body.lastIndexOf("}")) {
    verb = body.slice(colon + 1);
    body = body.slice(0, colon);
    if (verb === "") fail("empty verb");
  }

  const segments: Segment[] = [];
  const variables: Variable[] = [];
  const addSegment = (text: string) => {
    if (text === "") fail("empty segment");
    if (segments.at(-1)?.kind === "rest") fail('"**" must be the last segment');
    segments.push(text === "*" ? { kind: "any" } : text === "**" ? { kind: "rest" } : { kind: "literal", value: text });
  };
  let i = 0;
  while (i <= body.length) {
    if (body[i] === "{") {
      const close = body.indexOf("}", i);
      if (close < 0) fail("unclosed {");
      const [path = "", pattern = "*"] = body.slice(i + 1, close).split("=", 2);
      if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(path)) fail(`bad field path ${JSON.stringify(path)}`);
      const start = segments.length;
      for (const part of pattern.split("/")) addSegment(part);
      variables.push({ fieldPath: path.split("."), start, end: segments.at(-1)?.kind === "rest" ? undefined : segments.length });
      i = close + 1;
      if (i < body.length && body[i] !== "/") fail("a variable must span whole segments");
      i++;
    } else {
      let next = body.indexOf("/", i);
      if (next < 0) next = body.length;
      const text = body.slice(i, next);
      if (/[{}]/.test(text)) fail("a variable must span whole segments");
      addSegment(text);
      i = next + 1;
    }
  }
  return { source, segments, verb, variables };
}

/** Literal segments: with several matching templates, the most specific wins. */
export function literalCount(template: PathTemplate): number {
  return template.segments.filter((s) => s.kind === "literal").length;
}

/**
 * Matches a request path (without the query) against a template. Returns
 * the variables' values (percent-decoded) by dotted field path, or
 * undefined when the path does not match.
 */
export function matchPath(template: PathTemplate, path: string): Map<string, string> | undefined {
  if (!path.startsWith("/")) return undefined;
  let body = path.slice(1);
  if (template.verb !== undefined) {
    if (!body.endsWith(`:${template.verb}`)) return undefined;
    body = body.slice(0, -template.verb.length - 1);
  }
  const parts = body.split("/");
  const decoded: string[] = [];
  for (const part of parts) {
    // Empty segments ("//", a trailing "/") never match: ids are not empty.
    if (part === "") return undefined;
    try {
      decoded.push(decodeURIComponent(part));
    } catch {
      return undefined;
    }
  }
  const { segments } = template;
  const hasRest = segments.at(-1)?.kind === "rest";
  if (hasRest ? decoded.length < segments.length : decoded.length !== segments.length) return undefined;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.kind === "literal" && segment.value !== decoded[i]) return undefined;
  }
  const values = new Map<string, string>();
  for (const v of template.variables) values.set(v.fieldPath.join("."), decoded.slice(v.start, v.end).join("/"));
  return values;
}
