#!/usr/bin/env bash
# `npm test`: installs what is missing, starts a throw-away Kafka broker (unless KAFKA_BROKERS is given),
# makes sure PostgreSQL and Redis run, then type-checks and runs the unit, int and end-to-end suites.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
ensure_node_modules
ensure_postgres
ensure_ffmpeg
ensure_curl_jq
ensure_redis_server
ensure_redis
ensure_chromium
ensure_kubectl
ensure_openssl
# TEST_KAFKA_NAME and TEST_KAFKA_PORT let two checkouts on one machine test side by side.
export TEST_KAFKA_NAME="${TEST_KAFKA_NAME:-test}"
start_throwaway_kafka "$TEST_KAFKA_NAME" "${TEST_KAFKA_PORT:-29092}"

export NODE_OPTIONS="--experimental-vm-modules --disable-warning=ExperimentalWarning --disable-warning=TimeoutNegativeWarning"
log "type-checking"
tsc -p tsconfig.json --noEmit
tsc -p apps/console/web/tsconfig.json --noEmit
# The fault and observability suites run the apps as child processes (to SIGKILL, SIGTERM and SIGSTOP them, and
# to trace them as deployed).
log "building the apps"
build_apps
jest --config jest.config.js --selectProjects unit "$@"
# The libraries' SQL against PostgreSQL alone (no Kafka, no apps), each spec in a database of its own: seconds.
jest --config jest.config.js --selectProjects int "$@"
# --forceExit: a kafkajs consumer can reopen its coordinator connection for a heartbeat after the batch that was in
# flight when disconnect() was called, and that socket holds the run open; each suite still closes what it opened.
jest --config jest.config.js --selectProjects e2e --runInBand --forceExit "$@"
