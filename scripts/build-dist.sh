#!/bin/sh
# Transpiles the TypeScript that runs in production (gen/, services/,
# gateway/; no tests) to JavaScript, file by file, into OUTDIR with the same
# layout: services/events/main.ts -> OUTDIR/services/events/main.js. Used by
# deploy/docker/Dockerfile, so the images start plain `node` (no transpiler
# process, nothing written at run time: a read-only root filesystem works),
# and by test/deploy/, which starts the result.
# Per-file transpiling is exact here: tsconfig has isolatedModules and
# verbatimModuleSyntax, and imports already name the .js files.
set -eu
out="${1:?usage: scripts/build-dist.sh OUTDIR}"
cd "$(dirname "$0")/.."
files=$(find gen services gateway -name '*.ts' ! -name '*.d.ts' ! -name '*.test.ts' ! -name '*.contract.ts' ! -name 'test-support.ts' | sort)
# esbuild comes with tsx, a production dependency.
exec node_modules/.bin/esbuild $files --outdir="$out" --outbase=. --platform=node --format=esm --target=node20 \
  --sourcemap --log-level=warning
