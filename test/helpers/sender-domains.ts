// Sender domains in tests: a tenant's verified domain written straight into the database (for suites that create
// campaigns: the verification itself is tested through the API in sender-domains.test.ts), and a DNS server on
// loopback whose TXT records a test sets (dns2), plus one that never answers.
import dgram from 'node:dgram';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import DNS from 'dns2';
import type { Sequelize } from 'sequelize';

/** The domain of test/helpers/campaigns.ts BODY's fromEmail (news@acme.example). */
export const TEST_SENDER_DOMAIN = 'acme.example';

/** Gives the tenant `domain` as a verified sender domain (again: kept verified); answers its id. */
export async function verifiedSenderDomain(sequelize: Sequelize, tenantId: string, domain = TEST_SENDER_DOMAIN): Promise<string> {
  const [rows] = await sequelize.query(`INSERT INTO sender_domains (tenant_id, id, domain, token, status, verified_at) VALUES ($1, $2, $3, $4, 'verified', now())
    ON CONFLICT (tenant_id, domain) DO UPDATE SET status = 'verified', verified_at = now() RETURNING id`, { bind: [tenantId, randomUUID(), domain, randomBytes(24).toString('base64url')] });
  return (rows as { id: string }[])[0].id;
}

export interface TestDnsServer {
  /** host:port, as DNS_SERVERS takes it. */
  address: string;
  /** Sets the TXT records at `name` (each value one record; [] removes them). */
  setTxt(name: string, values: string[]): void;
  /** Names asked for, in order. */
  queries: string[];
  close(): Promise<void>;
}

/** An authoritative-looking DNS server on 127.0.0.1 (UDP): the TXT records set, NXDOMAIN for any other name. */
export async function startDnsServer(): Promise<TestDnsServer> {
  const txt = new Map<string, string[]>();
  const queries: string[] = [];
  const server = DNS.createServer({
    udp: true,
    handle: (request, send) => {
      const response = DNS.Packet.createResponseFromRequest(request);
      const [question] = request.questions;
      const name = question.name.toLowerCase().replace(/\.$/, '');
      queries.push(name);
      const values = txt.get(name);
      if (!values?.length) response.header.rcode = 3; // NXDOMAIN
      for (const data of values ?? []) response.answers.push({ name: question.name, type: DNS.Packet.TYPE.TXT, class: DNS.Packet.CLASS.IN, ttl: 60, data } as never);
      void send(response);
    },
  });
  const addresses = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  return {
    address: `127.0.0.1:${addresses.udp!.port}`,
    setTxt: (name, values) => { txt.set(name.toLowerCase(), values); },
    queries,
    close: () => server.close(),
  };
}

/** A UDP socket on 127.0.0.1 that takes queries and never answers (a resolver that hangs). */
export async function startSilentDnsServer(): Promise<{ address: string; close(): Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(socket.address() as AddressInfo).port}`, close: () => new Promise((resolve) => socket.close(() => resolve())) };
}
