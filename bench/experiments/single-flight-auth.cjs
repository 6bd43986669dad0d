// Profiling aid, not production code. Preload with
//   BENCH_API_NODE_ARGS="--require ./bench/experiments/single-flight-auth.cjs" npm run bench -- foundation
// so concurrent cache misses of one credential share one lookup. The Authenticator caches a credential
// for 5 s; when the benchmark key's entry expires, every request in flight (50) misses at once and runs
// the 3 lookup queries itself: 150 queries on a 20-connection pool, a latency spike every 5 s.
'use strict';
const Module = require('node:module');

const load = Module._load;
Module._load = function patchedLoad(...args) {
  const exports = load.apply(this, args);
  const Authenticator = exports && exports.Authenticator;
  if (typeof Authenticator === 'function' && !Authenticator.prototype.__singleFlight) {
    const authenticate = Authenticator.prototype.authenticate;
    const inflight = new Map();
    Authenticator.prototype.authenticate = function singleFlight(headers) {
      const key = String(headers['x-api-key'] ?? headers.authorization ?? '');
      let pending = inflight.get(key);
      if (!pending) {
        pending = authenticate.call(this, headers).finally(() => inflight.delete(key));
        inflight.set(key, pending);
      }
      return pending;
    };
    Authenticator.prototype.__singleFlight = true;
  }
  return exports;
};
