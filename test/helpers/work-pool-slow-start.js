// A tasks module for test/unit/work-pool.test.ts that takes 1.5 s to load, as Docket's own does when tsx compiles it
// on a busy machine: a thread started to replace a stopped one is not ready at once.
for (const t0 = Date.now(); Date.now() - t0 < 1_500;);
module.exports = async function burn({ args: [what], started }) {
  started?.postMessage(null); // the budget starts now (lib/work-pool.ts taskRunner does the same)
  if (what?.spinMs) for (const t0 = Date.now(); Date.now() - t0 < what.spinMs;);
  return { ok: true, value: 'done' };
};
