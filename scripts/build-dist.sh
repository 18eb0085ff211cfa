#!/bin/sh
# The one TypeScript -> JavaScript build: transpiles the code that runs
# (gen/, services/, gateway/, plus any extra source folders given, e.g.
# bench; no tests, nor the *.child.ts scripts that tests start) file by
# file into OUTDIR with the same layout:
# services/events/main.ts -> OUTDIR/services/events/main.js.
#   npm run build                    scripts/build-dist.sh dist bench test scripts
#                                    (start scripts; benchmarks, whose processes import test and script helpers)
#   deploy/docker/Dockerfile         scripts/build-dist.sh /app/dist    (the images)
# so that a process runs plain `node` (no transpiler in it, nothing written at
# run time: a read-only root filesystem works). Type checking is separate
# (`npm run typecheck`). Per-file transpiling is exact here: tsconfig has
# isolatedModules and verbatimModuleSyntax, and imports already name the
# .js files. OUTDIR is emptied first, so no output of a deleted source stays.
set -eu
out="${1:?usage: scripts/build-dist.sh OUTDIR [EXTRA_SOURCE_DIR...]}"
shift
cd "$(dirname "$0")/.."
files=$(find gen services gateway "$@" -name '*.ts' ! -name '*.d.ts' ! -name '*.test.ts' ! -name '*.contract.ts' ! -name 'test-support.ts' ! -name '*.child.ts' | sort)
case "$out" in
  "" | "." | "./" | "/" | "..") echo "build-dist.sh: refusing to empty '$out'" >&2; exit 2 ;;
esac
rm -rf "$out"
# esbuild comes with tsx, a production dependency.
exec node_modules/.bin/esbuild $files --outdir="$out" --outbase=. --platform=node --format=esm --target=node20 \
  --sourcemap --log-level=warning
