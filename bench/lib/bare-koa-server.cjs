// The baseline of "GET /v1/me: Docket / bare Koa": a bare Koa app in a process of its own that answers GET /v1/me
// with the JSON body it is given (BARE_BODY), nothing else in the path. Prints "listening <port>" when ready.
'use strict';
const Koa = require('koa');

const body = JSON.parse(process.env.BARE_BODY || '{}');
const app = new Koa();
app.use(async (ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/v1/me') ctx.body = body;
});
const server = app.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
server.keepAliveTimeout = 65_000;
process.once('SIGTERM', () => server.close(() => process.exit(0)));
