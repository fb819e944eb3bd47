#!/usr/bin/env bash
# `npm run bench [-- NAME...]`: every benchmark under bench/ (or the named ones), one after another, against a
# throw-away broker on 127.0.0.1:29292 and the database kafka_nest_bench; each writes bench/results/NAME.json, then
# bench/report.mjs renders the charts and the Markdown table (bench/results/README.md and docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

ALL=(request-path delivery-latency consumer-pipeline outbox-relay registration-throughput load-leveling work-queue sign-in-timing)
if [ "$#" -eq 0 ]; then
  BENCHES=("${ALL[@]}")
else
  BENCHES=("$@")
  for name in "${BENCHES[@]}"; do
    if [ ! -f "bench/$name.ts" ]; then
      echo "no benchmark named '$name'; the benchmarks are: ${ALL[*]}" >&2
      exit 2
    fi
  done
fi

ensure_node_modules
ensure_postgres
ensure_ffmpeg
start_throwaway_kafka bench 29292
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kafka_nest_bench}"
export NODE_OPTIONS="--disable-warning=TimeoutNegativeWarning"
started=$SECONDS
for name in "${BENCHES[@]}"; do
  log "bench $name"
  # Each bench bounds its own waits; this bounds a bench that hangs anyway (the longest takes about 2 minutes).
  timeout 600 node -r @swc-node/register "bench/$name.ts"
done
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)" \
  node bench/report.mjs
# The report writes tables and JSON; the formatter lays them out as the lint expects.
prettier --write --log-level warn docs/benchmarks.md bench/results
log "benchmarks took $((SECONDS - started)) s"
