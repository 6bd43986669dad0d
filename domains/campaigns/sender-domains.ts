// Sender domains: a campaign is sent From an address at a domain its tenant has proven it controls, by publishing a
// TXT record `_docket.<domain>` = `docket-verify=<token>` (a token the server made for this tenant and domain), so
// one tenant cannot send as another's domain, or as anyone's, through the operator's relay. A verified domain covers
// its subdomains (whoever publishes records for example.com can publish them for news.example.com); a verified
// subdomain does not cover its parent. SENDER_DOMAINS=any turns the check off (one organisation's deployment).
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { domainToASCII } from 'node:url';
import { Op, type Transaction } from 'sequelize';
import { v7 as uuidv7 } from 'uuid';
import type { Config } from '../../config';
import { SenderDomain } from '../../db/models/sender-domains';
import { recordAudit } from '../../lib/audit';
import { ApiError, serviceUnavailable } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { auditBy, Caller, CommandDeps } from '../command';
import type { Schemas } from '../schemas';

export const SENDER_DOMAIN_LIMITS = {
  /** Domains a tenant may hold, pending or verified: each verification is a DNS query the server makes. */
  maxPerTenant: 50,
} as const;

/** SENDER_DOMAINS: `verified` (a From domain must be verified by its tenant) or `any` (no check). */
export type SenderDomainsMode = Config['senderDomains']['mode'];

export const VERIFY_RECORD_PREFIX = '_docket.';
export const VERIFY_VALUE_PREFIX = 'docket-verify=';

/** The TXT record a tenant publishes to prove it controls `domain`. */
export const dnsRecordOf = (d: Pick<SenderDomain, 'domain' | 'token'>) => ({ type: 'TXT' as const, name: `${VERIFY_RECORD_PREFIX}${d.domain}`, value: `${VERIFY_VALUE_PREFIX}${d.token}` });

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
/** A top-level label: letters, or an IDN one (xn--…); never all digits, so an IP address is not a domain. */
const TLD = /^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;

/**
 * `input` as the domain it names (lower-case ASCII, an IDN as punycode, no trailing dot), or null when it is not a
 * host name with at least two labels (a registrable domain or below it: `com`, an IP address, `a_b.com` are not).
 */
export function normalizeDomain(input: string): string | null {
  const trimmed = input.trim().replace(/\.$/, '');
  if (!trimmed || trimmed.length > 253 || /[\s/@:]/.test(trimmed)) return null;
  // domainToASCII applies IDNA (UTS #46): Ünïcode.example → xn--ncode-…; '' when it cannot be converted.
  const ascii = domainToASCII(trimmed).toLowerCase();
  if (!ascii || ascii.length > 253) return null;
  const labels = ascii.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l)) || !TLD.test(labels[labels.length - 1])) return null;
  return ascii;
}

/** The domain of an address (its part after the last @), normalised as a sender domain is; null if it is not one. */
export function domainOfAddress(address: string): string | null {
  const at = address.lastIndexOf('@');
  return at < 0 ? null : normalizeDomain(address.slice(at + 1));
}

/** The domain and each parent of it that is still a domain (news.eu.example.com → itself, eu.example.com, example.com). */
export function coveringDomains(domain: string): string[] {
  const labels = domain.split('.');
  return labels.slice(0, -1).map((_, i) => labels.slice(i).join('.'));
}

const unverified = (address: string, domain: string | null, inBody: boolean) => new ApiError(422, 'SENDER_DOMAIN_UNVERIFIED',
  `The From address "${address}" is not at a verified sender domain of this tenant: add ${domain ?? 'its domain'} (POST /v1/sender-domains), publish its TXT record and verify it`,
  inBody ? { errors: [{ path: '/requestBody/fromEmail', message: `${domain ?? 'its domain'} is not a verified sender domain` }] } : {});

/**
 * Refuses (422 SENDER_DOMAIN_UNVERIFIED) a From address whose domain, or a parent of it, is not verified for the
 * tenant — unless SENDER_DOMAINS=any. `inBody`: the address is the request's (named in `errors`). Inside a
 * transaction the covering row is read FOR SHARE, so a delete of the domain waits for the send being recorded.
 */
export async function assertVerifiedSender(
  deps: { config: { senderDomains: Pick<Config['senderDomains'], 'mode'> } }, tenantId: string, fromEmail: string, opts: { transaction?: Transaction; inBody?: boolean } = {},
): Promise<void> {
  if (deps.config.senderDomains.mode === 'any') return;
  const { transaction, inBody = false } = opts;
  const domain = domainOfAddress(fromEmail);
  if (!domain) throw unverified(fromEmail, null, inBody);
  const found = await SenderDomain.findOne({
    where: { tenantId, domain: { [Op.in]: coveringDomains(domain) }, status: 'verified' }, attributes: ['id'],
    transaction, lock: transaction ? transaction.LOCK.SHARE : undefined,
  });
  if (!found) throw unverified(fromEmail, domain, inBody);
}

export const presentSenderDomain = (d: SenderDomain): Schemas['SenderDomain'] => ({
  id: d.id, domain: d.domain, status: d.status, dnsRecord: dnsRecordOf(d), verifiedAt: d.verifiedAt ? d.verifiedAt.toISOString() : null,
  createdBy: d.createdBy, createdAt: d.createdAt.toISOString(), updatedAt: d.updatedAt.toISOString(),
});

export const findSenderDomain = (tenantId: string, id: string, transaction?: Transaction): Promise<SenderDomain> =>
  findInTenant(SenderDomain, tenantId, id, 'Sender domain', transaction ? { transaction, lock: transaction.LOCK.UPDATE } : {});

const auditView = (d: SenderDomain) => ({ domain: d.domain, status: d.status, verifiedAt: d.verifiedAt?.toISOString() ?? null });

/**
 * Adds a domain, pending until verified, with a fresh token: 422 INVALID_DOMAIN, 409 ALREADY_EXISTS (the tenant has
 * it), 422 SENDER_DOMAIN_LIMIT past SENDER_DOMAIN_LIMITS.maxPerTenant.
 */
export async function createSenderDomain(deps: CommandDeps, c: Caller, body: { domain: string }): Promise<SenderDomain> {
  const domain = normalizeDomain(body.domain);
  if (!domain) {
    throw new ApiError(422, 'INVALID_DOMAIN', `"${body.domain}" is not a domain name (e.g. example.com; an internationalised one is taken as punycode)`, { errors: [{ path: '/requestBody/domain', message: 'is not a domain name' }] });
  }
  return deps.sequelize.transaction(async (transaction) => {
    // Concurrent creates of one tenant are counted one after another (the tenant's advisory lock, this transaction only).
    await deps.sequelize.query("SELECT pg_advisory_xact_lock(hashtext('sender_domains:' || $1))", { bind: [c.tenantId], transaction });
    if (await SenderDomain.findOne({ where: { tenantId: c.tenantId, domain }, attributes: ['id'], transaction })) {
      throw new ApiError(409, 'ALREADY_EXISTS', `This tenant already has the sender domain ${domain}`);
    }
    const count = await SenderDomain.count({ where: { tenantId: c.tenantId }, transaction });
    if (count >= SENDER_DOMAIN_LIMITS.maxPerTenant) {
      throw new ApiError(422, 'SENDER_DOMAIN_LIMIT', `This tenant has ${count} sender domains; at most ${SENDER_DOMAIN_LIMITS.maxPerTenant}: delete one first`, { count });
    }
    const row = await SenderDomain.create({ tenantId: c.tenantId, id: uuidv7(), domain, token: randomBytes(24).toString('base64url'), createdBy: c.userId }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'campaigns.sender_domain.created', entityType: 'sender_domain', entityId: row.id, after: auditView(row) }, transaction);
    return row;
  });
}

/** DNS answers meaning "no such record" (the name or the TXT type absent); any other failure is the resolver's. */
const ABSENT = new Set(['ENOTFOUND', 'ENODATA']);

/**
 * The TXT records at `name` (each record's strings joined, as RFC 7208 reads a split record), [] when there are none;
 * a resolver that fails or does not answer within `dnsTimeoutMs` is 503 SERVICE_UNAVAILABLE with Retry-After.
 */
export async function lookupTxt(config: Pick<Config, 'senderDomains'>, name: string): Promise<string[]> {
  const { dnsServers, dnsTimeoutMs } = config.senderDomains;
  // One try per server, each its share of the deadline, so a silent first server leaves time to ask the next; the
  // deadline below bounds them all together (cancel() ends the look-up).
  const servers = dnsServers.length ? dnsServers : new Resolver().getServers();
  const resolver = new Resolver({ timeout: Math.max(100, Math.floor(dnsTimeoutMs / Math.max(1, servers.length))), tries: 1 });
  resolver.setServers(servers);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => { resolver.cancel(); reject(Object.assign(new Error(`no answer within ${dnsTimeoutMs} ms`), { code: 'ETIMEOUT' })); }, dnsTimeoutMs);
  });
  try {
    const records = await Promise.race([resolver.resolveTxt(name), deadline]);
    return records.map((chunks) => chunks.join(''));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (ABSENT.has(code)) return [];
    throw serviceUnavailable(`The DNS look-up of ${name} failed (${code || (err as Error).message}); try again`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Looks the domain's TXT record up and, when it holds this tenant's token, marks the domain verified (audited). A
 * verified domain is answered as it is, without a look-up. 422 SENDER_DOMAIN_NOT_VERIFIED (the record expected, and
 * what was found) when it does not; 503 when DNS does not answer.
 */
export async function verifySenderDomain(deps: CommandDeps, c: Caller, id: string): Promise<SenderDomain> {
  const current = await findSenderDomain(c.tenantId, id);
  if (current.status === 'verified') return current;
  const record = dnsRecordOf(current);
  // Outside any transaction: the look-up may take seconds, and no row needs holding meanwhile.
  const found = await lookupTxt(deps.config, record.name);
  if (!found.some((v) => v.trim() === record.value)) {
    const seen = found.filter((v) => v.startsWith(VERIFY_VALUE_PREFIX)).length;
    throw new ApiError(422, 'SENDER_DOMAIN_NOT_VERIFIED', `No TXT record ${record.name} with the value "${record.value}" was found`
      + (found.length ? ` (${found.length} TXT record(s) there${seen ? `, ${seen} with another docket-verify token` : ''})` : ' (no TXT record there)')
      + '; publish it at your DNS provider and verify again once it has propagated');
  }
  return deps.sequelize.transaction(async (transaction) => {
    const row = await findSenderDomain(c.tenantId, id, transaction);
    if (row.status === 'verified' || row.token !== current.token) return row;
    await row.update({ status: 'verified', verifiedAt: new Date() }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'campaigns.sender_domain.verified', entityType: 'sender_domain', entityId: id, before: { status: 'pending' }, after: auditView(row) }, transaction);
    return row;
  });
}

/**
 * Deletes the domain: from then on campaigns From it (and its subdomains, unless another verified domain covers them)
 * are refused at create, edit, send, schedule, retry and test send, and a scheduled send fails at its time (the
 * snapshot checks it). A send already running goes on.
 */
export async function deleteSenderDomain(deps: CommandDeps, c: Caller, id: string): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const row = await findSenderDomain(c.tenantId, id, transaction);
    await row.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'campaigns.sender_domain.deleted', entityType: 'sender_domain', entityId: id, before: auditView(row) }, transaction);
  });
}
