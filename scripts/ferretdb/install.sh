#!/usr/bin/env bash
# Ensures .tools/bin/ferretdb (FerretDB, a MongoDB wire-protocol server) exists and prints its path.
# `go install ...@version` fails here (the module proxy 403s the deprecation lookup), so we
# download the module source, add the version file the binary needs, and `go build` it.
set -euo pipefail

VERSION="v1.24.2"
MODULE="github.com/FerretDB/FerretDB"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
BIN="$BIN_DIR/ferretdb"

# Captures --version output rather than piping into `grep -q`, which can SIGPIPE the binary and
# (with pipefail) fail the check spuriously.
has_version() { [[ -x "$1" ]] && grep -qx "version: $VERSION" <<<"$("$1" --version 2>/dev/null)"; }

# Fast path: already installed with the right version.
if has_version "$BIN"; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null 2>&1; then
  echo "ferretdb install: Go toolchain not found (looked on PATH and /usr/local/go/bin)" >&2
  exit 1
fi

LOG="$(mktemp)"
WORK=""
TMP_BIN=""
cleanup() { rm -rf "$LOG" ${WORK:+"$WORK"} ${TMP_BIN:+"$TMP_BIN"}; }
trap cleanup EXIT
fail() {
  echo "ferretdb install: $1" >&2
  tail -n 40 "$LOG" >&2
  exit 1
}

# Module dir in the Go module cache (read-only). Errors come back in the JSON, so log it all.
(cd / && go mod download -json "$MODULE@$VERSION") >>"$LOG" 2>&1 || true
SRC_DIR="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' "$LOG")"
[[ -n "$SRC_DIR" && -d "$SRC_DIR" ]] || fail "go mod download $MODULE@$VERSION failed"

# Writable copy; build/version/version.txt is generated upstream and missing from the module
# zip, and the binary panics at startup without it.
WORK="$(mktemp -d)"
cp -R "$SRC_DIR/." "$WORK/"
chmod -R u+w "$WORK"
echo "$VERSION" > "$WORK/build/version/version.txt"

# Build to a temp file next to the target, then mv (atomic; concurrent runs do not see half a binary).
mkdir -p "$BIN_DIR"
TMP_BIN="$(mktemp "$BIN_DIR/.ferretdb.XXXXXX")"
build() { (cd "$WORK" && env "$@" go build -o "$TMP_BIN" ./cmd/ferretdb) >>"$LOG" 2>&1; }
if ! build; then
  echo "--- retrying with GOTOOLCHAIN=go1.24.3 ---" >>"$LOG"
  build GOTOOLCHAIN=go1.24.3 || fail "go build of ferretdb $VERSION failed"
fi
has_version "$TMP_BIN" || fail "built binary does not report $VERSION"
mv -f "$TMP_BIN" "$BIN"
TMP_BIN=""
echo "$BIN"
