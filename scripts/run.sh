#!/usr/bin/env bash
# make run: the local demo.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then scripts/install-deps.sh; fi
url=$(scripts/db.sh up)
go run ./cmd/kvsync migrate --db-url "$url"
echo "database ready: $url"
