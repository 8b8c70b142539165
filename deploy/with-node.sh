#!/usr/bin/env bash
# Runs a command on bulkflow's pinned Node.js (.node-version): installs it into .tools/node when
# missing (deploy/install-node.sh), then puts it first on PATH, so `node`, jest and every child
# process they spawn (process.execPath) run on it whatever Node started npm.
# BULKFLOW_NODE_BIN=<folder> runs on another Node instead (the compatibility check's other lines).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BULKFLOW_NODE_BIN:-$root/.tools/node/bin}
if [ -z "${BULKFLOW_NODE_BIN:-}" ]; then
  pinned=$(tr -d '[:space:]' < "$root/.node-version")
  if [ "$("$bin/node" --version 2>/dev/null)" != "v$pinned" ]; then bin=$(bash "$root/deploy/install-node.sh"); fi
fi
export PATH="$bin:$root/node_modules/.bin:$PATH"
exec "$@"
