import { create, type DescMessage, type DescService, type Message } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
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
 * stay in the handlers. (Strings that are not valid Unicode never get
 * here: protobuf-es refuses invalid UTF-8 in binary and lone surrogates in
 * JSON while decoding.)
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
