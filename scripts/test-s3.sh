#!/usr/bin/env bash
# `npm run test:s3`: the S3 file store against a real SeaweedFS server (built once into .tools/bin: minutes
# the first time), then the API and a worker on FILE_STORE=s3. Not part of `npm test`; extra arguments go to Jest.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent gen:types
npx tsx -e 'require("./scripts/tools").ensureWeed()'
DOCKET_S3_TESTS=1 npx jest --selectProjects s3 --runInBand "$@"
