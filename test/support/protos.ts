import { join } from "node:path";
import { REPO_ROOT } from "../../services/runtime/paths.js";

/**
 * Where @grpc/proto-loader finds the contracts and what they import: our
 * protos, google/api and google/protobuf (google-proto-files), and
 * buf/validate (fetched into .tools by scripts/protovalidate/install.sh).
 */
export const PROTO_INCLUDE_DIRS = ["proto", "node_modules/google-proto-files", ".tools/protovalidate"].map((dir) => join(REPO_ROOT, dir));
