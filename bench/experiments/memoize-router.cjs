// Profiling aid, not production code. Preload with
//   BENCH_API_NODE_ARGS="--require ./bench/experiments/memoize-router.cjs" npm run bench -- foundation
// to run the unchanged API with openapi-backend's OpenAPIRouter.getOperations() memoised per definition.
// Upstream (5.21.2) rebuilds the whole operation list (a lodash chain over every path, spreading each
// operation) on every call, and one request calls it several times (matchOperation in api/app.ts,
// matchOperation again in handleRequest, getOperation in validateRequest …).
'use strict';
const { OpenAPIRouter } = require('openapi-backend');

const original = OpenAPIRouter.prototype.getOperations;
const cache = new WeakMap();
OpenAPIRouter.prototype.getOperations = function getOperations() {
  let ops = cache.get(this.definition);
  if (!ops) {
    ops = original.call(this);
    cache.set(this.definition, ops);
  }
  return ops;
};
