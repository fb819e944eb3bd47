#!/usr/bin/env bash
# Shared set-up steps for scripts/start.sh, scripts/test.sh and .ci/run. Source it; each step is idempotent.

log() { echo "[setup] $*" >&2; }

# npm scripts put node_modules/.bin first on PATH, where the `node` package provides Node 24.
ensure_node_modules() {
  if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    # npm itself runs on the system Node here, older than the engines some packages name; the project runs on the
    # Node 24 it installs, so those notes are noise. Errors still show. The four install scripts the tree has (`node`
    # fetches its platform binary; argon2, @swc/core and @parcel/watcher check for theirs) are approved by name in
    # package.json's allowScripts, so npm does not list them as unreviewed.
    log "installing dependencies (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  export PATH="$PWD/node_modules/.bin:$PATH"
  hash -r
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 24 ]; then
    log "Node $(node --version) found; this project needs Node >= 24.9 (installed as the 'node' devDependency)"
    exit 1
  fi
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

# Starts the machine's PostgreSQL cluster when DATABASE_URL is not given and nothing answers on 5432.
ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ] || pg_up; then return; fi
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  fi
  for _ in $(seq 1 60); do pg_up && return; sleep 0.5; done
  log "PostgreSQL is not reachable on 127.0.0.1:5432; start it or set DATABASE_URL"
  exit 1
}

# A Debian package's commands, installed with apt-get when one is missing: apt_install PACKAGE COMMAND...
apt_install() {
  local package="$1"
  shift
  local missing=""
  for command in "$@"; do command -v "$command" >/dev/null || missing=1; done
  [ -z "$missing" ] && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null && { [ -z "$sudo" ] || command -v sudo >/dev/null; }; then
    log "installing $package (Debian package; a few minutes the first time)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$package" >/dev/null
  fi
  for command in "$@"; do command -v "$command" >/dev/null || return 1; done
}

# ffmpeg and ffprobe for the video-processor (and the tests that make test videos): Debian's package when missing.
# curl and jq: the docs' examples use them, and a test runs those examples as written.
ensure_curl_jq() {
  apt_install curl curl && apt_install jq jq && return
  log "curl and jq are needed by the docs-examples test: install them (apt-get install curl jq)"
  exit 1
}

ensure_ffmpeg() {
  apt_install ffmpeg ffmpeg ffprobe && return
  log "ffmpeg and ffprobe are needed by the video-processor: install them (apt-get install ffmpeg) or set FFMPEG_PATH/FFPROBE_PATH"
  exit 1
}

# openssl makes the CA and broker certificate of the secured-broker test (scripts/kafka.sh --secure).
ensure_openssl() {
  apt_install openssl openssl && return
  log "openssl is needed by the secured-broker test: install it (apt-get install openssl)"
  exit 1
}

# kubectl, whose `kubectl kustomize` renders deploy/k8s for the manifest checks: Debian's kubernetes-client when missing.
ensure_kubectl() {
  apt_install kubernetes-client kubectl && return
  log "kubectl is needed to render the Kubernetes manifests: install it (apt-get install kubernetes-client)"
  exit 1
}

# redis-server and redis-cli: the tests start Redis servers of their own, and `npm start` one when none runs.
ensure_redis_server() {
  apt_install redis-server redis-server redis-cli && return
  log "redis-server is needed: install it (apt-get install redis-server)"
  exit 1
}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }

ensure_redis() {
  if [ -n "${REDIS_URL:-}" ]; then return; fi
  ensure_redis_server
  if redis_up; then return; fi
  if command -v redis-server >/dev/null; then
    log "starting Redis"
    mkdir -p .run/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir "$PWD/.run/redis" --logfile "$PWD/.run/redis/redis.log"
  fi
  for _ in $(seq 1 40); do redis_up && return; sleep 0.25; done
  log "Redis is not reachable on 127.0.0.1:6379; start it or set REDIS_URL"
  exit 1
}

# Unless KAFKA_BROKERS is given: a wiped single broker under .run/kafka-NAME on PORT for this script's run,
# stopped when the script exits.
start_throwaway_kafka() {
  local name="$1" port="$2"
  if [ -n "${KAFKA_BROKERS:-}" ]; then
    log "using KAFKA_BROKERS=$KAFKA_BROKERS; tests that stop and start the broker will fail against it"
    return
  fi
  bash scripts/kafka.sh reset --name "$name" --port "$port"
  bash scripts/kafka.sh start --name "$name" --port "$port"
  export KAFKA_BROKERS="127.0.0.1:$port"
  # shellcheck disable=SC2064 # the values are fixed now, on purpose
  trap "bash scripts/kafka.sh stop --name $name --port $port" EXIT
}

# Chromium for the browser tests (driven by puppeteer-core, which downloads no browser): Debian's package.
ensure_chromium() {
  [ -n "${CHROMIUM_PATH:-}" ] && return
  apt_install chromium chromium && return
  log "chromium is needed by the browser tests: install it (apt-get install chromium) or set CHROMIUM_PATH"
  exit 1
}

# The apps are the application projects of nest-cli.json (scripts/apps.js prints them).
# shellcheck disable=SC2207 # app names have no spaces
APPS=($(node scripts/apps.js))

build_apps() {
  for app in "${APPS[@]}"; do nest build "$app"; done
  build_console
}

# The console's page (apps/console/web): its modules compiled to ES modules, the page and style beside them.
build_console() {
  tsc -p apps/console/web/tsconfig.json
  cp apps/console/web/index.html apps/console/web/console.css dist/console/web/
}

app_entry() { echo "dist/apps/$1/apps/$1/src/main.js"; }
