import { fileURLToPath } from "node:url";

// The repository root, also when this runs compiled in dist/test/support (the benchmarks).
const ROOT = fileURLToPath(new URL(import.meta.url.includes("/dist/test/") ? "../../.." : "../..", import.meta.url));

/**
 * Where @grpc/proto-loader finds the contracts and what they import: our
 * protos, google/api and google/protobuf (google-proto-files), and
 * buf/validate (fetched into .tools by scripts/protovalidate/install.sh).
 */
export const PROTO_INCLUDE_DIRS = [`${ROOT}proto`, `${ROOT}node_modules/google-proto-files`, `${ROOT}.tools/protovalidate`];
