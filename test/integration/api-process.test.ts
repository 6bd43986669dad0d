// The API process itself (api/server.ts): what it refuses to start with, what it warns about, and
// /metrics on a port of its own.
import { freePort } from '../../scripts/stack';
import { killAllApiProcesses, startApiProcess, waitForHealth } from '../helpers/api-process';

afterAll(killAllApiProcesses);

it('refuses to start with the built-in link secret unless NODE_ENV=development', async () => {
  const port = await freePort();
  const { output, exited } = startApiProcess({ NODE_ENV: undefined, LINK_SIGNING_SECRET: undefined, PORT: String(port) });
  // Either it exits, or it comes up (which fails the test at once rather than at the timeout).
  expect(await Promise.race([exited, waitForHealth(`http://127.0.0.1:${port}`, exited).then(() => 'listening')])).toBe(1);
  expect(output.text).toMatch(/LINK_SIGNING_SECRET is required .* unless NODE_ENV=development; NODE_ENV is unset/);
});

it('in development starts with it but warns at boot, and serves /metrics only on METRICS_PORT, behind METRICS_TOKEN', async () => {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const token = 'scrape-token-0123456789abcdef';
  const { child, output, exited } = startApiProcess({
    NODE_ENV: 'development', LINK_SIGNING_SECRET: undefined, PORT: String(port), METRICS_PORT: String(metricsPort), METRICS_TOKEN: token,
  });
  const api = `http://127.0.0.1:${port}`;
  const metrics = `http://127.0.0.1:${metricsPort}`;
  await waitForHealth(api, exited);
  try {
    expect(output.text).toContain('INSECURE: LINK_SIGNING_SECRET is unset');

    const onApi = await fetch(`${api}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
    expect(onApi.status).toBe(404);
    expect(onApi.headers.get('content-type')).toMatch(/^application\/problem\+json/);

    const anonymous = await fetch(`${metrics}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { code: string }).code).toBe('UNAUTHENTICATED');
    const scraped = await fetch(`${metrics}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toContain('docket_http_request_duration_seconds');
    expect((await fetch(`${metrics}/v1/me`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(404);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});
