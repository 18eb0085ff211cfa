import { create, ScalarType, type DescMessage, type DescService, type Message } from "@bufbuild/protobuf";
import { pathToString, reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import type { Interceptor } from "@connectrpc/connect";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import { invalidArgument } from "../errors.js";

/**
 * Checks every request message against the `buf.validate` rules declared in
 * the contracts (proto/), before any handler runs: the one place where
 * required fields, lengths, ranges and formats are enforced, for every
 * service and protocol. A request that breaks rules gets InvalidArgument
 * with one google.rpc.BadRequest field violation per broken rule, e.g.
 * `location.halls[0].capacity: value must be greater than or equal to 1`.
 * Rules that need data (does the hall exist? is start in the future?)
 * stay in the handlers. Strings must also be well-formed Unicode: binary
 * protobuf with invalid UTF-8 does not decode, but JSON can carry lone
 * surrogates ("\ud800"), which no UTF-8 store or client can hold.
 *
 * The validator compiles a message's rules on first use (about 0.1 s for
 * one with CEL rules), so the request types of `services` are compiled
 * here, at start, rather than inside the first caller's deadline.
 */
export function validationInterceptor(services: DescService[], validator: Validator = createValidator()): Interceptor {
  for (const service of services) {
    for (const method of service.methods) validator.validate(method.input, create(method.input));
  }
  return (next) => async (req) => {
    if (req.stream) {
      return next({ ...req, message: validateEach(validator, req.method.input, req.message) });
    }
    check(validator, req.method.input, req.message);
    return next(req);
  };
}

async function* validateEach<T extends Message>(validator: Validator, schema: DescMessage, messages: AsyncIterable<T>) {
  for await (const message of messages) {
    check(validator, schema, message);
    yield message;
  }
}

function check(validator: Validator, schema: DescMessage, message: Message): void {
  const malformed = malformedStrings(reflect(schema, message), "");
  if (malformed.length > 0) throw invalidArgument(malformed.map((field) => ({ field, description: "must be valid UTF-8 text (has a lone UTF-16 surrogate)" })));
  const result = validator.validate(schema, message);
  // "error" means a rule could not be evaluated: a bug in our rules, so it
  // is thrown as is and the errors interceptor answers Internal.
  if (result.kind === "error") throw result.error;
  if (result.kind === "invalid") {
    throw invalidArgument(
      result.error.violations.map((v) => ({ field: pathToString(v.field), description: v.message })),
    );
  }
}

// String.prototype.isWellFormed is ES2024; this is the same test.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Paths of string fields (at any depth) that are not well-formed UTF-16. */
function malformedStrings(message: ReflectMessage, prefix: string): string[] {
  const found: string[] = [];
  for (const field of message.fields) {
    if (!message.isSet(field)) continue;
    const path = prefix + field.name;
    if (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) {
      if (LONE_SURROGATE.test(message.get(field) as string)) found.push(path);
    } else if (field.fieldKind === "message") {
      found.push(...malformedStrings(message.get(field) as ReflectMessage, `${path}.`));
    } else if (field.fieldKind === "list") {
      const list = message.get(field);
      let i = 0;
      for (const item of list) {
        if (field.listKind === "scalar" && typeof item === "string" && LONE_SURROGATE.test(item)) found.push(`${path}[${i}]`);
        if (field.listKind === "message") found.push(...malformedStrings(item as ReflectMessage, `${path}[${i}].`));
        i++;
      }
    }
  }
  return found;
}
