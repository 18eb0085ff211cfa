#!/usr/bin/env bash
# Regenerates test/conformance/gen/ from the conformance suite's protos, which
# live in its Go module (the version scripts/tools/install.sh builds the CLI from).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
VERSION="$(sed -n 's/.*connectconformance) PACKAGE="connectrpc.com\/conformance\/cmd\/connectconformance"; VERSION="\(v[^"]*\)".*/\1/p' scripts/tools/install.sh)"
DIR="$(go mod download -json "connectrpc.com/conformance@$VERSION" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).Dir))')"
npx buf generate "$DIR/proto" --template test/conformance/buf.gen.yaml
