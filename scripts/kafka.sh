#!/usr/bin/env bash
# Local Apache Kafka on loopback (KRaft): a single node, or a replicated cluster of N nodes, each a combined
# broker and controller from the same Maven jars with its own ports, data, log and pid.
#
#   scripts/kafka.sh start|stop|kill|restart|reset|status|fetch [--name NAME] [--port PORT] [--nodes N] [--node I]
#                    [--secure]
#
#   --nodes N   on first start: run N nodes (a quorum of N voters). Topics the cluster creates itself
#               (consumer offsets) get replication factor min(N, 3) and min.insync.replicas 2 when N >= 3.
#               Node I listens on PORT + 10*(I-1); later commands remember N.
#   --node I    start, stop, kill or report one node of a cluster only (the others keep running).
#   kill        SIGKILL: a crash, no controlled shutdown. stop is SIGTERM (a clean one).
#   --secure    on first start: the client listener speaks SASL_SSL (SCRAM-SHA-512) only. A CA and a broker
#               certificate are made with openssl under .run/kafka-NAME/tls (the CA is tls/ca.pem); the SCRAM user
#               is KAFKA_SASL_USERNAME with KAFKA_SASL_PASSWORD from the environment. Brokers and controllers talk
#               plaintext among themselves, on loopback only.
#
# The broker jars are resolved once from Maven Central into $KAFKA_CACHE_DIR (outside the repo).
# Each named instance keeps its state under .run/kafka-NAME; `dev` (port 9092) serves `npm start`, `test` (port
# 29092) serves `npm test`. Test and bench ports stay below 32768, out of Linux's ephemeral range: a port there can
# be taken as the source port of any outgoing connection, and a broker started later could not bind it.
# Topic auto-creation is off: the system creates its own topics. A node logs to .run/kafka-NAME[/node-I]/kafka.log at
# KAFKA_LOG_LEVEL (default WARN; INFO shows leader elections, ISR changes and log truncation).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/scripts/kafka/pom.xml")"
# Keyed by the pom's content too: a changed dependency list fetches a fresh set of jars.
POM_HASH="$(sha1sum "$ROOT/scripts/kafka/pom.xml" | cut -c1-8)"
CACHE_DIR="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kafka-nest}/kafka-$KAFKA_VERSION-$POM_HASH"
NAME=dev
PORT=""
NODES=""
ONLY_NODE=""
SECURE=""
CMD="${1:-status}"
shift || true
while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --nodes) NODES="$2"; shift 2 ;;
    --node) ONLY_NODE="$2"; shift 2 ;;
    --secure) SECURE=1; shift ;;
    *) echo "kafka.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
RUN_DIR="$ROOT/.run/kafka-$NAME"

log() { echo "[kafka:$NAME] $*" >&2; }

# What the first start chose is kept with the instance, so `stop`, `kill --node 2` and `status` need no flags.
remembered() { if [ -f "$RUN_DIR/$1" ]; then cat "$RUN_DIR/$1"; fi; }
[ -n "$PORT" ] || PORT="$(remembered port)"
if [ -z "$PORT" ]; then
  case "$NAME" in test) PORT=29092 ;; *) PORT=9092 ;; esac
fi
[ -n "$NODES" ] || NODES="$(remembered nodes)"
NODES="${NODES:-1}"
[ -n "$SECURE" ] || SECURE="$(remembered secure)"
case "$NODES" in [1-9]) ;; *) log "--nodes must be 1 to 9 (got '$NODES')"; exit 2 ;; esac
if [ -n "$ONLY_NODE" ]; then
  case "$ONLY_NODE" in [1-9]) ;; *) log "--node must be 1 to $NODES (got '$ONLY_NODE')"; exit 2 ;; esac
  if [ "$ONLY_NODE" -gt "$NODES" ]; then log "--node must be 1 to $NODES (got '$ONLY_NODE')"; exit 2; fi
fi

# Node I's ports: client, controller, a second listener for fault tests (it listens on +2 but advertises +3, where a
# test runs a TCP proxy, test/support/kafka-proxy.ts, so clients that bootstrap from +3 reach the broker only through
# the proxy; nothing listens on +3 unless a test starts one), and, when secured, the plaintext inter-broker listener.
client_port() { echo $((PORT + 10 * ($1 - 1))); }
controller_port() { echo $(($(client_port "$1") + 1)); }
node_dir() { if [ "$NODES" = 1 ]; then echo "$RUN_DIR"; else echo "$RUN_DIR/node-$1"; fi; }
pid_file() { echo "$(node_dir "$1")/kafka.pid"; }
log_file() { echo "$(node_dir "$1")/kafka.log"; }
selected_nodes() { if [ -n "$ONLY_NODE" ]; then echo "$ONLY_NODE"; else seq 1 "$NODES"; fi; }

fetch() {
  if [ -f "$CACHE_DIR/.complete" ]; then return; fi
  command -v java >/dev/null || { log "java (JDK 17+) is required to run the broker"; exit 1; }
  command -v mvn >/dev/null || { log "maven is required to fetch the broker jars"; exit 1; }
  log "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $CACHE_DIR"
  mkdir -p "$CACHE_DIR/libs"
  if ! mvn -q -B -Dstyle.color=never -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$CACHE_DIR/libs" > "$CACHE_DIR/fetch.log" 2>&1; then
    log "fetching the broker jars failed:"; cat "$CACHE_DIR/fetch.log" >&2; exit 1
  fi
  touch "$CACHE_DIR/.complete"
}

running() { local pf; pf="$(pid_file "$1")"; [ -f "$pf" ] && kill -0 "$(cat "$pf")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A CA and a certificate for 127.0.0.1/localhost signed by it, in PEM (Kafka reads PEM key stores since 2.7).
make_tls() {
  local dir="$RUN_DIR/tls"
  [ -f "$dir/broker.pem" ] && return
  command -v openssl >/dev/null || { log "openssl is required for --secure"; exit 1; }
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=kafka-nest local CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/broker.key" -out "$dir/broker.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$dir/san.ext"
  openssl x509 -req -in "$dir/broker.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
    -extfile "$dir/san.ext" -out "$dir/broker.crt" 2>/dev/null
  # Key (PKCS#8) and chain in one file, as a PEM key store.
  openssl pkcs8 -topk8 -nocrypt -in "$dir/broker.key" -out "$dir/broker.pk8"
  cat "$dir/broker.pk8" "$dir/broker.crt" "$dir/ca.pem" > "$dir/broker.pem"
  chmod 600 "$dir"/*.key "$dir/broker.pk8" "$dir/broker.pem"
  log "TLS: CA certificate $dir/ca.pem"
}

write_config() {
  local node="$1" dir port cport voters="" i
  dir="$(node_dir "$node")"; port="$(client_port "$node")"; cport="$(controller_port "$node")"
  for i in $(seq 1 "$NODES"); do voters="${voters:+$voters,}$i@127.0.0.1:$(controller_port "$i")"; done
  local rf=$((NODES < 3 ? NODES : 3)) min_isr=$((NODES >= 3 ? 2 : 1))
  local listeners advertised protocols inter
  if [ "$SECURE" = 1 ]; then
    listeners="SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,INTERNAL://127.0.0.1:$((port + 4))"
    advertised="SASL_SSL://127.0.0.1:$port,INTERNAL://127.0.0.1:$((port + 4))"
    protocols="CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL"
    inter=INTERNAL
  else
    listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,PROXIED://127.0.0.1:$((port + 2))"
    advertised="PLAINTEXT://127.0.0.1:$port,PROXIED://127.0.0.1:$((port + 3))"
    protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT"
    inter=PLAINTEXT
  fi
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=$inter
listener.security.protocol.map=$protocols
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
log.retention.hours=168
# A node that stops heartbeating is fenced (its partitions get new leaders) after this long.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
PROPS
  if [ "$SECURE" = 1 ]; then
    cat >> "$dir/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$RUN_DIR/tls/broker.pem
ssl.client.auth=none
PROPS
  fi
  cat > "$dir/log4j2.properties" <<PROPS
rootLogger.level=${KAFKA_LOG_LEVEL:-WARN}
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka.server.KafkaRaftServer
logger.kafka.level=INFO
PROPS
}

JAVA_ARGS=(java -Xms256m "-Xmx${KAFKA_HEAP:-768m}" -XX:+UseG1GC -Djava.awt.headless=true -cp "$CACHE_DIR/libs/*")

format() {
  local node="$1" dir; dir="$(node_dir "$node")"
  [ -f "$dir/data/meta.properties" ] && return
  local cluster_id; cluster_id="$(remembered cluster-id)"
  if [ -z "$cluster_id" ]; then
    cluster_id="$("${JAVA_ARGS[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null)"
    echo "$cluster_id" > "$RUN_DIR/cluster-id"
  fi
  local scram=()
  if [ "$SECURE" = 1 ]; then
    : "${KAFKA_SASL_USERNAME:?--secure needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD in the environment}"
    : "${KAFKA_SASL_PASSWORD:?--secure needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD in the environment}"
    scram=(--add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USERNAME,password=$KAFKA_SASL_PASSWORD]")
  fi
  if ! "${JAVA_ARGS[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" ${scram[@]+"${scram[@]}"} \
    > "$dir/format.log" 2>&1; then
    log "formatting node $node failed:"; cat "$dir/format.log" >&2; exit 1
  fi
}

start_node() {
  local node="$1" port; port="$(client_port "$node")"
  if running "$node"; then log "node $node already running (pid $(cat "$(pid_file "$node")")) on 127.0.0.1:$port"; return; fi
  if port_open "$port"; then log "port $port is taken by another process; pick another with --port"; exit 1; fi
  write_config "$node"
  format "$node"
  local dir; dir="$(node_dir "$node")"
  # Own session: the broker outlives a test runner or terminal that started it, until kafka.sh stop.
  setsid nohup "${JAVA_ARGS[@]}" "-Dlog4j2.configurationFile=$dir/log4j2.properties" kafka.Kafka \
    "$dir/server.properties" > "$(log_file "$node")" 2>&1 &
  echo $! > "$(pid_file "$node")"
}

wait_up() {
  local node="$1" port; port="$(client_port "$node")"
  for _ in $(seq 1 120); do
    if port_open "$port"; then
      log "node $node up on 127.0.0.1:$port (pid $(cat "$(pid_file "$node")"), log $(log_file "$node"))"; return
    fi
    if ! running "$node"; then log "node $node exited during start; last log lines:"; tail -20 "$(log_file "$node")" >&2; exit 1; fi
    sleep 0.5
  done
  log "node $node did not open port $port within 60 s; see $(log_file "$node")"; exit 1
}

start() {
  fetch
  mkdir -p "$RUN_DIR"
  if [ -f "$RUN_DIR/nodes" ] && [ "$(cat "$RUN_DIR/nodes")" != "$NODES" ]; then
    log "this instance has $(cat "$RUN_DIR/nodes") nodes; reset it to change that"; exit 1
  fi
  if [ "$SECURE" = 1 ] && [ -f "$RUN_DIR/nodes" ] && [ ! -f "$RUN_DIR/secure" ]; then
    log "this instance was created without --secure (its SCRAM user is made when the data is formatted); reset it first"
    exit 1
  fi
  echo "$NODES" > "$RUN_DIR/nodes"; echo "$PORT" > "$RUN_DIR/port"
  if [ "$SECURE" = 1 ]; then echo 1 > "$RUN_DIR/secure"; make_tls; fi
  local node
  # All nodes at once: none can finish starting before a quorum of controllers is up.
  for node in $(selected_nodes); do start_node "$node"; done
  for node in $(selected_nodes); do wait_up "$node"; done
}

stop_node() {
  local node="$1" signal="$2" pid
  if ! running "$node"; then rm -f "$(pid_file "$node")"; return; fi
  pid="$(cat "$(pid_file "$node")")"
  kill "-$signal" "$pid"
  for _ in $(seq 1 60); do
    if ! kill -0 "$pid" 2>/dev/null; then rm -f "$(pid_file "$node")"; log "node $node stopped ($signal)"; return; fi
    sleep 0.5
  done
  log "node $node did not stop within 30 s; killing"; kill -KILL "$pid" 2>/dev/null || true; rm -f "$(pid_file "$node")"
}

stop() {
  local node pids=()
  # In parallel: a clean shutdown of the last nodes waits for a controller quorum that the first ones took away.
  for node in $(selected_nodes); do stop_node "$node" "$1" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
}

status() {
  local node down=0
  for node in $(selected_nodes); do
    if running "$node"; then echo "node $node running pid $(cat "$(pid_file "$node")") on 127.0.0.1:$(client_port "$node")"
    else echo "node $node stopped"; down=1; fi
  done
  return "$down"
}

case "$CMD" in
  fetch) fetch ;;
  start) start ;;
  stop) stop TERM ;;
  kill) stop KILL ;;
  restart) stop TERM; start ;;
  reset) ONLY_NODE=""; stop TERM; rm -rf "$RUN_DIR"; log "data removed" ;;
  status) status ;;
  *) echo "usage: scripts/kafka.sh start|stop|kill|restart|reset|status|fetch [--name NAME] [--port PORT] [--nodes N] [--node I] [--secure]" >&2; exit 2 ;;
esac
