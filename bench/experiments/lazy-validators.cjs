// Profiling aid, not production code. Preload with
//   BENCH_API_NODE_ARGS="--require ./bench/experiments/lazy-validators.cjs" npm run bench -- foundation
// to run the unchanged API as if api/app.ts built OpenAPIBackend with `quick: true`: validators are
// compiled on an operation's first request instead of at boot, and response validators (never used at
// runtime) are not compiled at all. Quick mode also skips validating openapi.yaml itself at boot.
'use strict';
const { OpenAPIBackend } = require('openapi-backend');

const init = OpenAPIBackend.prototype.init;
OpenAPIBackend.prototype.init = function lazyInit() {
  this.quick = true;
  return init.call(this);
};
