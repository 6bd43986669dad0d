// Experiment (profiling aid, not production code): the API exactly as api/server.ts starts it, but with
// openapi-backend's OpenAPIRouter.getOperations() memoised per definition. Upstream rebuilds the whole
// operation list (lodash chain over every path) on each call, and a request calls it several times.
//   BENCH_API_ENTRY=bench/experiments/memoized-router-api.ts npm run bench -- foundation
import { OpenAPIRouter } from 'openapi-backend';
import { startApi } from '../../api/server';

type Router = { definition: object; getOperations(): unknown[] };
const proto = (OpenAPIRouter as unknown as { prototype: Router }).prototype;
const original = proto.getOperations;
const cache = new WeakMap<object, unknown[]>();
proto.getOperations = function (this: Router) {
  let ops = cache.get(this.definition);
  if (!ops) {
    ops = original.call(this);
    cache.set(this.definition, ops);
  }
  return ops;
};

startApi().then((api) => {
  const stop = () => { api.close().then(() => process.exit(0), () => process.exit(1)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}, (err) => {
  console.error(err);
  process.exit(1);
});
