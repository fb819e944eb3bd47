#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker/controller) on loopback.
#
#   scripts/kafka.sh start|stop|status|restart|reset [--name NAME] [--port PORT]
#
# The broker jars are resolved once from Maven Central into $KAFKA_CACHE_DIR (outside the repo).
# Each named instance keeps its data, config, log and pid under .run/kafka-NAME; `dev` (port 9092)
# serves `npm start`, `test` (port 39092) serves `npm test`. Topic auto-creation is off: the system
# creates its own topics.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/scripts/kafka/pom.xml")"
CACHE_DIR="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kafka-nest}/kafka-$KAFKA_VERSION"
NAME=dev
PORT=""
CMD="${1:-status}"
shift || true
while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    *) echo "kafka.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ -z "$PORT" ]; then
  case "$NAME" in test) PORT=39092 ;; *) PORT=9092 ;; esac
fi
CONTROLLER_PORT=$((PORT + 1))
# A second listener for fault tests: it listens on PORT+2 but advertises PORT+3, where a test runs a TCP proxy
# (test/support/kafka-proxy.ts). Clients that bootstrap from PORT+3 then reach every broker through the proxy,
# which can drop responses, delay or cut connections. Nothing listens on PORT+3 unless a test starts the proxy.
PROXIED_PORT=$((PORT + 2))
PROXY_PORT=$((PORT + 3))
RUN_DIR="$ROOT/.run/kafka-$NAME"
PID_FILE="$RUN_DIR/kafka.pid"
LOG_FILE="$RUN_DIR/kafka.log"

log() { echo "[kafka:$NAME] $*" >&2; }

fetch() {
  if [ -f "$CACHE_DIR/.complete" ]; then return; fi
  command -v java >/dev/null || { log "java (JDK 17+) is required to run the broker"; exit 1; }
  command -v mvn >/dev/null || { log "maven is required to fetch the broker jars"; exit 1; }
  log "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $CACHE_DIR"
  mkdir -p "$CACHE_DIR/libs"
  mvn -q -B -Dstyle.color=never -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$CACHE_DIR/libs"
  touch "$CACHE_DIR/.complete"
}

running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

write_config() {
  mkdir -p "$RUN_DIR/data"
  cat > "$RUN_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,PROXIED://127.0.0.1:$PROXIED_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,PROXIED://127.0.0.1:$PROXY_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT
log.dirs=$RUN_DIR/data
auto.create.topics.enable=false
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
  cat > "$RUN_DIR/log4j2.properties" <<PROPS
rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka.server.KafkaRaftServer
logger.kafka.level=INFO
PROPS
}

JAVA_ARGS=(java -Xms256m "-Xmx${KAFKA_HEAP:-768m}" -XX:+UseG1GC -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$RUN_DIR/log4j2.properties" -cp "$CACHE_DIR/libs/*")

start() {
  fetch
  if running; then log "already running (pid $(cat "$PID_FILE")) on 127.0.0.1:$PORT"; return; fi
  if port_open; then log "port $PORT is taken by another process; pick another with --port"; exit 1; fi
  write_config
  if [ ! -f "$RUN_DIR/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$("${JAVA_ARGS[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null)"
    "${JAVA_ARGS[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$RUN_DIR/server.properties" >/dev/null 2>&1
  fi
  # Own session: the broker outlives a test runner or terminal that started it, until kafka.sh stop.
  setsid nohup "${JAVA_ARGS[@]}" kafka.Kafka "$RUN_DIR/server.properties" >"$LOG_FILE" 2>&1 &
  echo $! > "$PID_FILE"
  for _ in $(seq 1 120); do
    if port_open; then log "up on 127.0.0.1:$PORT (pid $(cat "$PID_FILE"), log $LOG_FILE)"; return; fi
    if ! running; then log "broker exited during start; last log lines:"; tail -20 "$LOG_FILE" >&2; exit 1; fi
    sleep 0.5
  done
  log "broker did not open port $PORT within 60 s; see $LOG_FILE"; exit 1
}

stop() {
  if ! running; then rm -f "$PID_FILE"; log "not running"; return; fi
  local pid; pid="$(cat "$PID_FILE")"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    if ! kill -0 "$pid" 2>/dev/null; then rm -f "$PID_FILE"; log "stopped"; return; fi
    sleep 0.5
  done
  log "broker did not stop within 30 s; killing"; kill -KILL "$pid" 2>/dev/null || true; rm -f "$PID_FILE"
}

case "$CMD" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  reset) stop; rm -rf "$RUN_DIR"; log "data removed" ;;
  status) if running; then echo "running pid $(cat "$PID_FILE") on 127.0.0.1:$PORT"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: scripts/kafka.sh start|stop|restart|reset|status|fetch [--name NAME] [--port PORT]" >&2; exit 2 ;;
esac
