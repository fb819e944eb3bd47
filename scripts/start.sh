#!/usr/bin/env bash
# `npm start`: installs what is missing, starts the local infrastructure this machine lacks (a Kafka broker unless
# KAFKA_BROKERS is set, MailDev unless SMTP_URL is set, PostgreSQL and Redis if they are down), builds and starts
# every app, prints where to look, and stops everything it started on Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
ensure_node_modules
ensure_postgres
ensure_redis
ensure_ffmpeg

PIDS=()
NAMES=()
STARTED_KAFKA=0
cleanup() {
  trap - INT TERM EXIT
  log "stopping"
  # Apps first (SIGTERM: they drain and commit), then what they depend on.
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$STARTED_KAFKA" = 1 ]; then bash scripts/kafka.sh stop --name dev; fi
  log "stopped"
}
trap 'cleanup; exit 130' INT TERM
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -z "${KAFKA_BROKERS:-}" ]; then
  bash scripts/kafka.sh start --name dev --port "${KAFKA_PORT:-9092}"
  STARTED_KAFKA=1
  export KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT:-9092}"
fi

MAIL_UI=""
if [ -z "${SMTP_URL:-}" ]; then
  MAIL_SMTP_PORT="${MAILDEV_SMTP_PORT:-1025}"
  MAIL_WEB_PORT="${MAILDEV_WEB_PORT:-1080}"
  for port in "$MAIL_SMTP_PORT" "$MAIL_WEB_PORT"; do
    port_free "$port" || { log "port $port is taken; set MAILDEV_SMTP_PORT/MAILDEV_WEB_PORT or SMTP_URL"; exit 1; }
  done
  setsid maildev --smtp "$MAIL_SMTP_PORT" --web "$MAIL_WEB_PORT" --ip 127.0.0.1 --web-ip 127.0.0.1 --silent \
    > >(setsid sed -u 's/^/[maildev] /') 2>&1 &
  PIDS+=($!)
  NAMES+=(maildev)
  export SMTP_URL="smtp://127.0.0.1:$MAIL_SMTP_PORT"
  MAIL_UI="http://127.0.0.1:$MAIL_WEB_PORT/index.html"
fi

log "building apps"
build_apps

# kafkajs 2.2.4 schedules a negative timeout on Node 24 (tulios/kafkajs#1751); Node clamps it to 1 ms, as intended.
export NODE_OPTIONS="${NODE_OPTIONS:-} --disable-warning=TimeoutNegativeWarning"
HOST="${HOST:-127.0.0.1}"
export HOST
# Readable lines here; the apps default to JSON lines (one object each) for a log collector.
export LOG_FORMAT="${LOG_FORMAT:-pretty}"
unset PORT # one variable for five apps would make them collide: <APP>_PORT sets one app's port
declare -A PORTS
while read -r app default_port; do
  var="$(echo "$app" | tr 'a-z-' 'A-Z_')_PORT" # users-api → USERS_API_PORT
  PORTS[$app]="${!var:-$default_port}"
  port_free "${PORTS[$app]}" || { log "port ${PORTS[$app]} ($app) is taken; set $var to another"; exit 1; }
done < <(node scripts/apps.js --ports)

# The console (apps/console) reaches the others where this script starts them; its page calls users-api and the
# notifier from the browser, so users-api allows the console's origin.
CONSOLE_APPS=""
for app in "${APPS[@]}"; do CONSOLE_APPS+="${CONSOLE_APPS:+,}$app=http://$HOST:${PORTS[$app]}"; done
export CONSOLE_APPS
export CONSOLE_API_URL="${CONSOLE_API_URL:-http://$HOST:${PORTS[users-api]}}"
export CONSOLE_NOTIFIER_URL="${CONSOLE_NOTIFIER_URL:-http://$HOST:${PORTS[notifier]}}"
export USERS_API_ALLOWED_ORIGINS="${USERS_API_ALLOWED_ORIGINS:-http://$HOST:${PORTS[console]}}"
# The notifier lets the console's page read its streams (the per-user one with its cookie) and checks sign-ins
# against users-api's keys.
export NOTIFIER_ALLOWED_ORIGINS="${NOTIFIER_ALLOWED_ORIGINS:-http://$HOST:${PORTS[console]}}"
export AUTH_JWKS_URL="${AUTH_JWKS_URL:-http://$HOST:${PORTS[users-api]}/.well-known/jwks.json}"
[ -n "${MAIL_UI:-}" ] && export CONSOLE_MAIL_URL="${CONSOLE_MAIL_URL:-${MAIL_UI%/index.html}}"

# users-api signs access tokens with a key kept in .run/ across restarts (signed-in clients stay signed in), unless
# AUTH_SIGNING_KEYS is given. A development key only: production takes it from a secret store.
if [ -z "${AUTH_SIGNING_KEYS:-}" ]; then
  mkdir -p .run
  if [ ! -s .run/auth-signing-keys.json ]; then
    (umask 077 && node -r @swc-node/register apps/users-api/src/users/users.cli.ts keys > .run/auth-signing-keys.json)
  fi
  AUTH_SIGNING_KEYS="$(cat .run/auth-signing-keys.json)"
  export AUTH_SIGNING_KEYS
fi

# The notifier signs its event ids and stream cookies with a secret kept in .run/ too (resumes survive a restart).
if [ -z "${NOTIFIER_STREAM_SECRET:-}" ]; then
  mkdir -p .run
  [ -s .run/notifier-stream-secret ] || (umask 077 && head -c 32 /dev/urandom | base64 > .run/notifier-stream-secret)
  NOTIFIER_STREAM_SECRET="$(cat .run/notifier-stream-secret)"
  export NOTIFIER_STREAM_SECRET
fi

for app in "${APPS[@]}"; do
  # Own sessions: Ctrl-C reaches only this script, which then sends each app one SIGTERM and waits for it to drain.
  PORT="${PORTS[$app]}" setsid node "$(app_entry "$app")" > >(setsid sed -u "s/^/[$app] /") 2>&1 &
  PIDS+=($!)
  NAMES+=("$app")
done

# Ready: each app's /health/ready answers 200 (database, Kafka, consumers joined).
for app in "${APPS[@]}"; do
  url="http://$HOST:${PORTS[$app]}/health/ready"
  for _ in $(seq 1 120); do
    if curl -fsS "$url" >/dev/null 2>&1; then break; fi
    for i in "${!PIDS[@]}"; do
      kill -0 "${PIDS[$i]}" 2>/dev/null || { log "${NAMES[$i]} exited during start; see its lines above"; exit 1; }
    done
    sleep 0.5
  done
  curl -fsS "$url" >/dev/null 2>&1 || { log "$app did not become ready on $url within 60 s; curl it to see why"; exit 1; }
done

API="http://$HOST:${PORTS[users-api]}"
{
  echo
  printf '  %-18s %s\n' "console" "http://$HOST:${PORTS[console]}/   (system view: sign in as an admin; npm run users -- grant-admin <email>)"
  printf '  %-18s %s\n' "users-api" "$API   (POST /users, POST /sessions, POST /videos, GET /videos/:id, POST /posts; $API/docs)"
  for app in "${APPS[@]}"; do
    case "$app" in
      users-api | console) ;;
      notifier) printf '  %-18s %s\n' "$app" "http://$HOST:${PORTS[$app]}   (curl -N http://$HOST:${PORTS[$app]}/notifications/stream)" ;;
      *) printf '  %-18s %s\n' "$app" "http://$HOST:${PORTS[$app]}" ;;
    esac
  done
  printf '  %-18s %s\n' "every app" "/health/live  /health/ready  /metrics (Prometheus text)"
  printf '  %-18s %s\n' "mail" "${MAIL_UI:-sent through $SMTP_URL}"
  printf '  %-18s %s\n' "kafka" "$KAFKA_BROKERS"
  printf '  %-18s %s\n' "database" "${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kafka_nest}"
  printf '  %-18s %s\n' "redis" "${REDIS_URL:-redis://127.0.0.1:6379}"
  cat <<EOF

  Try:  curl -i -H 'content-type: application/json' \\
          -d '{"email":"ann@example.com","username":"ann","password":"correct horse battery"}' $API/users
        TOKEN=\$(curl -s -H 'content-type: application/json' \\
          -d '{"email":"ann@example.com","password":"correct horse battery"}' $API/sessions | jq -r .accessToken)
        curl -i -H "Authorization: Bearer \$TOKEN" -F file=@clip.mp4 $API/videos   # then GET $API/videos/<id>
        curl -s http://$HOST:${PORTS[email-service]}/health/ready
        curl -s http://$HOST:${PORTS[email-service]}/metrics | grep ^kafka_consumer

  Ctrl-C stops everything started here.

EOF
} >&2
wait -n "${PIDS[@]}" || true
log "a process exited; shutting the rest down"
cleanup
exit 1
