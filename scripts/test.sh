#!/usr/bin/env bash
# The whole test suite: `npm test`. Installs or starts what the tests need:
# dependencies (npm ci when node_modules is missing), RabbitMQ (started when
# port 5672 is closed) and FerretDB (built with Go when missing; the tests
# start their own throwaway instance unless MONGODB_URL is set), the
# buf.validate .proto that buf and .proto-loading tests read, Debian's
# Chromium for the browser tests (apt-get; never a downloaded browser), and the
# pinned kustomize and promtool of the offline deployment checks (test/deploy/)
# and the Connect conformance runner (test/conformance/), built with Go into
# .tools/bin when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm ci --no-audit --no-fund

bash scripts/ensure-rabbitmq.sh
bash scripts/ferretdb/install.sh >/dev/null
bash scripts/protovalidate/install.sh >/dev/null
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "installing Debian's chromium for the browser tests" >&2
  apt-get install -y chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi
bash scripts/tools/install.sh kustomize >/dev/null
bash scripts/tools/install.sh promtool >/dev/null
bash scripts/tools/install.sh connectconformance >/dev/null

exec npx vitest run "$@"
