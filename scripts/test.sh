#!/usr/bin/env bash
# The whole test suite: `npm test`. Installs or starts what the tests need:
# dependencies (npm ci when node_modules is missing), RabbitMQ (started when
# port 5672 is closed) and FerretDB (built with Go when missing; the tests
# start their own throwaway instance unless MONGODB_URL is set) and the
# buf.validate .proto that buf and .proto-loading tests read.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm ci --no-audit --no-fund

bash scripts/ensure-rabbitmq.sh
bash scripts/ferretdb/install.sh >/dev/null
bash scripts/protovalidate/install.sh >/dev/null

exec npx vitest run "$@"
