import { create, hasOption, type DescMessage, type DescService, type Message } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import type { Interceptor } from "@connectrpc/connect";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import { field as fieldRules, message as messageRules, oneof as oneofRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { invalidArgument } from "../errors.js";

/**
 * Checks every request message against the `buf.validate` rules declared in
 * the contracts (proto/), before any handler runs: the one place where
 * required fields, lengths, ranges and formats are enforced, for every
 * service and protocol. A request that breaks rules gets InvalidArgument
 * with one google.rpc.BadRequest field violation per broken rule, e.g.
 * `location.halls[0].capacity: value must be greater than or equal to 1`.
 * Rules that need data (does the hall exist? is start in the future?)
 * stay in the handlers. (Strings that are not valid Unicode never get
 * here: protobuf-es refuses invalid UTF-8 in binary and lone surrogates in
 * JSON while decoding.)
 *
 * The validator compiles a type's rules on first use (about 0.1 s for the
 * first one with CEL rules). Compiling every request type at start held
 * back SERVING by that much, so `warmUp()` compiles them after the server
 * listens, one type per event-loop turn, and a call that arrives first
 * compiles its own type. Types that declare no rules at all (their fields
 * and nested messages included) are never handed to the validator: it
 * would find nothing to check, at a cost on every call.
 */
export function requestValidation(services: DescService[], validator: Validator = createValidator()): RequestValidation {
  const ruled = new Map<DescMessage, boolean>();
  const needsCheck = (schema: DescMessage) => {
    let has = ruled.get(schema);
    if (has === undefined) ruled.set(schema, (has = declaresRules(schema, new Set())));
    return has;
  };
  const interceptor: Interceptor = (next) => (req) => {
    const schema = req.method.input;
    if (!needsCheck(schema)) return next(req);
    if (req.stream) return next({ ...req, message: validateEach(validator, schema, req.message) });
    try {
      check(validator, schema, req.message);
    } catch (err) {
      return Promise.reject(err);
    }
    return next(req);
  };
  return {
    interceptor,
    async warmUp() {
      const broken = new Map<string, Error>();
      for (const service of services) {
        for (const method of service.methods) {
          if (!needsCheck(method.input) || broken.has(method.input.typeName)) continue;
          await new Promise((resolve) => setImmediate(resolve));
          const result = validator.validate(method.input, create(method.input));
          if (result.kind === "error") broken.set(method.input.typeName, result.error);
        }
      }
      return broken;
    },
  };
}

export interface RequestValidation {
  /** Checks each request (unary, or each message of a stream) before the handler runs. */
  interceptor: Interceptor;
  /**
   * Compiles the rules of every request type, one per event-loop turn, so
   * no caller waits for it. Resolves to the types whose rules cannot be
   * evaluated (a mistake in the contracts: their calls answer Internal).
   */
  warmUp(): Promise<Map<string, Error>>;
}

/**
 * Whether `schema` or any message type it contains declares buf.validate
 * rules (the only rules protovalidate applies: proto2 `required` is not
 * enforced in its default mode).
 */
function declaresRules(schema: DescMessage, seen: Set<DescMessage>): boolean {
  if (seen.has(schema)) return false; // being looked at further up, or found without rules
  seen.add(schema);
  if (hasOption(schema, messageRules)) return true;
  if (schema.oneofs.some((oneof) => hasOption(oneof, oneofRules))) return true;
  for (const field of schema.fields) {
    if (hasOption(field, fieldRules)) return true;
    if (field.message !== undefined && declaresRules(field.message, seen)) return true;
  }
  return false;
}

async function* validateEach<T extends Message>(validator: Validator, schema: DescMessage, messages: AsyncIterable<T>) {
  for await (const message of messages) {
    check(validator, schema, message);
    yield message;
  }
}

function check(validator: Validator, schema: DescMessage, message: Message): void {
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
