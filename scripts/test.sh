#!/usr/bin/env bash
# `npm test`: types generated from the contract, typecheck, lint, then every Jest test (unit and
# integration, in band: one Postgres + one Temporal server for the run). Ends with a one-line summary.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent gen:types
npx tsc --noEmit -p .
npx eslint .
mkdir -p .data
rm -f .data/jest-results.json
set +e
npx jest --runInBand --json --outputFile=.data/jest-results.json "$@"
status=$?
set -e
node -e '
  const fs = require("fs");
  const f = ".data/jest-results.json";
  if (!fs.existsSync(f)) { console.log("tests: 0 passed, 1 failed"); process.exit(0); }
  const r = JSON.parse(fs.readFileSync(f, "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests + r.numRuntimeErrorTestSuites} failed` + (skipped ? `, ${skipped} skipped` : ""));
'
exit $status
