// Profiling aid, not production code. Preload with
//   BENCH_API_NODE_ARGS="--require ./bench/experiments/memory-trace.cjs" BENCH_MEMORY_TRACE=/tmp/mem.jsonl
// to append the API's process.memoryUsage() (MB) once a second, showing whether RSS is V8 heap,
// code/other native memory, or buffers (external/arrayBuffers).
'use strict';
const fs = require('node:fs');

const file = process.env.BENCH_MEMORY_TRACE || `/tmp/docket-api-memory-${process.pid}.jsonl`;
const mb = (n) => Math.round((n / 1048576) * 10) / 10;
const started = Date.now();
setInterval(() => {
  const m = process.memoryUsage();
  const line = { t: Math.round((Date.now() - started) / 1000), rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers) };
  fs.appendFileSync(file, JSON.stringify(line) + '\n');
}, 1000).unref();
