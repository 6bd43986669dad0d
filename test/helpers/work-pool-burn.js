// A tasks module for test/unit/work-pool.test.ts: work that overruns a budget or a thread's memory, which
// none of Docket's own tasks do on purpose (their libraries stop themselves first).
module.exports = async function burn({ args: [what], started }) {
  started?.postMessage(null); // the budget starts now (lib/work-pool.ts taskRunner does the same)
  if (what.spinMs) for (const t0 = Date.now(); Date.now() - t0 < what.spinMs;);
  const held = [];
  for (let mb = 0; mb < (what.holdMb ?? 0); mb++) held.push(new Array(131_072).fill(mb + 0.5));
  return { ok: true, value: held.length || 'done' };
};
