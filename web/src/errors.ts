import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";

/** What a page shows for a failed call: one sentence, and per-field messages for forms. */
export interface Problem {
  code: Code;
  message: string;
  /** Field path as the service names it ("event.name", "seats") to what is wrong with it. */
  fields: Record<string, string>;
}

/**
 * Turns any failure of an RPC into words for people. The services send
 * standard codes with a human message and, for invalid input, a
 * google.rpc.BadRequest with one violation per field.
 */
export function describe(err: unknown): Problem {
  const error = ConnectError.from(err);
  const fields: Record<string, string> = {};
  for (const detail of error.findDetails(BadRequestSchema)) {
    for (const v of detail.fieldViolations) fields[v.field] = v.description;
  }
  return { code: error.code, message: messageFor(error, Object.keys(fields).length > 0), fields };
}

function messageFor(error: ConnectError, hasFields: boolean): string {
  switch (error.code) {
    case Code.InvalidArgument:
      return hasFields ? "Some fields need attention." : sentence(error.rawMessage);
    case Code.Unauthenticated:
      return "Please sign in first (your token may have expired).";
    case Code.PermissionDenied:
      return "You are signed in, but this needs an administrator.";
    case Code.ResourceExhausted:
      return "Too many requests right now; wait a moment and try again.";
    case Code.Unavailable:
      return "The service cannot be reached right now; try again in a moment.";
    case Code.DeadlineExceeded:
      return "The service took too long to answer; try again.";
    case Code.Internal:
    case Code.DataLoss:
      return "Something went wrong on our side; try again.";
    case Code.Unknown:
      // fetch() failures (offline, gateway down) arrive here.
      return "The service cannot be reached right now; check your connection and try again.";
    default:
      return sentence(error.rawMessage);
  }
}

function sentence(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return "The request failed.";
  const capital = trimmed[0]!.toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}
