#!/usr/bin/env bash
# Regenerates envoy/myevents.pb, the descriptor set Envoy's gRPC-JSON
# transcoder loads (/etc/envoy/myevents.pb): proto/ with every import
# (google/api/http.proto, descriptor.proto, timestamp.proto, ...), without
# source info. Run it after any change in proto/ and commit the result;
# test/edge-config/envoy.test.ts fails while the committed file is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/protovalidate/install.sh >/dev/null
npx buf build proto --as-file-descriptor-set --exclude-source-info -o 'envoy/myevents.pb#format=binpb'
echo "wrote envoy/myevents.pb ($(wc -c < envoy/myevents.pb) bytes)"
