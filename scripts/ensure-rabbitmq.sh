#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers on 127.0.0.1:5672 (or AMQP_URL's
# host and port), starting the machine's broker when it is down.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

host=127.0.0.1 port=5672
if [ -n "${AMQP_URL:-}" ]; then
  hostport="${AMQP_URL#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
  host="${hostport%%:*}"; [ "$hostport" != "$host" ] && port="${hostport##*:}"
fi

port_open "$host" "$port" && exit 0
if ! command -v rabbitmq-server >/dev/null; then
  echo "RabbitMQ is not answering on $host:$port and rabbitmq-server is not installed" >&2
  exit 1
fi
echo "starting RabbitMQ (rabbitmq-server -detached)" >&2
rabbitmq-server -detached
for _ in $(seq 1 60); do
  port_open "$host" "$port" && exit 0
  sleep 1
done
echo "RabbitMQ did not open $host:$port within 60 s" >&2
exit 1
