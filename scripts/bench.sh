#!/usr/bin/env bash
# `npm run bench`: POST /users latency side by side (healthy, slow SMTP, Kafka down, synchronous design), then
# 201 → SMTP accepted on an idle system, split by stage, then the video work queue with 1 and 2 processors; against a
# throw-away broker on 127.0.0.1:29292 and the database kafka_nest_bench.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
ensure_node_modules
ensure_postgres
ensure_ffmpeg
start_throwaway_kafka bench 29292
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kafka_nest_bench}"
export NODE_OPTIONS="--disable-warning=TimeoutNegativeWarning"
node -r @swc-node/register bench/registration-latency.ts
node -r @swc-node/register bench/delivery-latency.ts
node -r @swc-node/register bench/work-queue.ts
