#!/usr/bin/env bash
# Builds every app with the Nest CLI into dist/apps/<app>.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
ensure_node_modules
build_apps
