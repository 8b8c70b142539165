#!/usr/bin/env bash
# The compatibility check (`npm run compat`, run by .ci/run after `npm test`): the unit tests and
# a short integration subset (a system export, a view export, a SQLQuery, a lake run, a
# `$bulk-submit`) on each supported Node.js LTS line other than the pinned one, which runs the
# whole suite. Each line comes from the npm registry (deploy/install-node.sh). Needs `npm run
# build` first (npm test's pretest does it).
set -euo pipefail
cd "$(dirname "$0")/.."

lines=${BULKFLOW_COMPAT_NODE_VERSIONS:-"22.23.5 24.22.3"}
subset=(
  test/unit/
  test/integration/export-system.test.ts
  test/integration/sql-export.test.ts
  test/integration/sql-query-run.test.ts
  test/integration/lake-schedules.test.ts
  test/integration/bulk-submit.test.ts
)
for version in $lines; do
  bin=$(bash deploy/install-node.sh "$version")
  echo "compat: the unit tests and the integration subset on Node $("$bin/node" --version)"
  BULKFLOW_NODE_BIN="$bin" bash deploy/with-node.sh jest --maxWorkers=2 "${subset[@]}"
done
