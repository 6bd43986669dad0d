// A loopback TCP proxy in front of a dependency (Postgres, Temporal), which a test can cut — every open
// connection reset, new ones refused — and restore, to play an outage on the real stack.
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** `host:port` of the proxy. */
  address: string;
  /** Resets every connection and refuses new ones until restore(). */
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    track(client);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    // One side gone: the other is reset too, as a dying server or a dropped link does it.
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listen = (port: number) => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  let listening = true;
  const stop = async () => {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.resetAndDestroy();
    await closed;
  };
  return {
    port,
    address: `127.0.0.1:${port}`,
    cut: stop,
    async restore() {
      if (listening) return;
      await listen(port);
      listening = true;
    },
    close: stop,
  };
}

/** host and port of a postgres:// URL, and the URL with them replaced by the proxy's. */
export function viaProxy(url: string, proxy: Pick<TcpProxy, 'port'>): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}

export function hostPort(urlOrAddress: string): { host: string; port: number } {
  const u = urlOrAddress.includes('://') ? new URL(urlOrAddress) : new URL(`tcp://${urlOrAddress}`);
  return { host: u.hostname, port: Number(u.port) };
}
