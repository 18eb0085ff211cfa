#!/usr/bin/env bash
# Ensures .tools/bin/NAME exists at the pinned version, building it with Go
# from the Go module proxy when missing, and prints its path. Used by
# scripts/test.sh, test/deploy/ (the offline deployment checks) and
# test/conformance/ (the Connect conformance suite).
#   kustomize   renders deploy/k8s exactly as `kubectl apply -k` would
#   promtool    checks the Prometheus config and alert rules, and runs their unit tests
#   connectconformance  the Connect conformance suite's runner (test/conformance/)
# The first build downloads the module's dependencies and compiles them
# (kustomize about a minute, promtool several minutes on two cores); later
# runs take the fast path. A stamp file next to the binary records the version.
set -euo pipefail

NAME="${1:?usage: scripts/tools/install.sh kustomize|promtool|connectconformance}"
case "$NAME" in
  kustomize) PACKAGE="sigs.k8s.io/kustomize/kustomize/v5"; VERSION="v5.8.2" ;;
  # Prometheus v3.16.0 (its Go module is versioned v0.316.0).
  promtool) PACKAGE="github.com/prometheus/prometheus/cmd/promtool"; VERSION="v0.316.0" ;;
  connectconformance) PACKAGE="connectrpc.com/conformance/cmd/connectconformance"; VERSION="v1.0.7" ;;
  *) echo "tools install: unknown tool $NAME" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
BIN="$BIN_DIR/$NAME"
STAMP="$BIN.version"

if [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$PACKAGE@$VERSION" ]]; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null 2>&1 || { echo "tools install: Go toolchain not found (looked on PATH and /usr/local/go/bin)" >&2; exit 1; }

# Build into a private directory, then move: concurrent runs never see half a binary.
mkdir -p "$BIN_DIR"
WORK="$(mktemp -d "$BIN_DIR/.build-$NAME.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
if ! (cd "$WORK" && GOBIN="$WORK" go install "$PACKAGE@$VERSION") >"$WORK/log" 2>&1; then
  echo "tools install: go install $PACKAGE@$VERSION failed:" >&2
  tail -n 40 "$WORK/log" >&2
  exit 1
fi
mv -f "$WORK/$NAME" "$BIN"
echo "$PACKAGE@$VERSION" > "$STAMP"
echo "$BIN"
