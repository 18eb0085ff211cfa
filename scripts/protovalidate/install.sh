#!/usr/bin/env bash
# Ensures .tools/protovalidate/buf/validate/validate.proto exists: the `buf.validate` rule
# options our contracts declare. The Buf Schema Registry is not reachable here and the npm
# package @bufbuild/protovalidate ships only generated code, so the .proto comes from the Go
# module proxy (github.com/bufbuild/protovalidate at a pinned version). buf.yaml reads it from
# there as a workspace module; nothing from it is committed (gen/ holds only our own code).
set -euo pipefail

VERSION="v1.2.2"
MODULE="github.com/bufbuild/protovalidate"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/.tools/protovalidate"
STAMP="$DEST/.version"

if [[ -f "$DEST/buf/validate/validate.proto" && "$(cat "$STAMP" 2>/dev/null)" == "$VERSION" ]]; then
  echo "$DEST"
  exit 0
fi

command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null 2>&1 || { echo "protovalidate install: Go toolchain not found" >&2; exit 1; }

JSON="$( (cd / && go mod download -json "$MODULE@$VERSION") 2>&1 || true)"
SRC_DIR="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$JSON")"
SRC="$SRC_DIR/proto/protovalidate/buf/validate/validate.proto"
[[ -f "$SRC" ]] || { echo "protovalidate install: go mod download $MODULE@$VERSION failed:" >&2; echo "$JSON" >&2; exit 1; }

# Copy to a temp dir, then rename: concurrent runs never see half a tree.
TMP="$(mktemp -d "$ROOT/.tools/.protovalidate.XXXXXX" 2>/dev/null || (mkdir -p "$ROOT/.tools" && mktemp -d "$ROOT/.tools/.protovalidate.XXXXXX"))"
mkdir -p "$TMP/buf/validate"
cp "$SRC" "$TMP/buf/validate/validate.proto"
chmod u+w "$TMP/buf/validate/validate.proto"
echo "$VERSION" > "$TMP/.version"
rm -rf "$DEST"
mv "$TMP" "$DEST"
echo "$DEST"
