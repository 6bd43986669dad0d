// Profiling aid, not production code; compiled API only (BENCH_API_ENTRY=bench/.build/api/server.js,
// built by `npx tsc -p tsconfig.build.json --outDir bench/.build`). Preload with
//   BENCH_API_NODE_ARGS="--require ./bench/experiments/single-flight-auth.cjs"
// so concurrent cache misses of one credential share one lookup: when the 5 s auth cache entry of the
// benchmark's key expires, the 50 requests in flight otherwise each run the 3 lookup queries at once.
'use strict';
const path = require('node:path');
const { Authenticator } = require(path.join(__dirname, '..', '.build', 'api', 'auth.js'));

const authenticate = Authenticator.prototype.authenticate;
const inflight = new Map();
Authenticator.prototype.authenticate = function singleFlight(headers) {
  const key = String(headers['x-api-key'] ?? headers.authorization ?? '');
  let p = inflight.get(key);
  if (!p) {
    p = authenticate.call(this, headers).finally(() => inflight.delete(key));
    inflight.set(key, p);
  }
  return p;
};
