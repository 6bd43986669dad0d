// One-click unsubscribe links (RFC 8058): one per (campaign, subscriber), signed with a key derived from
// LINK_SIGNING_SECRET. The token is the same every time it is made, so a message re-sent after a crash carries
// the same link, and it does not expire (an old newsletter's link must still work). It names its tenant, so a
// token is only ever looked up in the tenant it was signed for; a tampered one does not verify.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { parse as parseUuid, stringify as stringifyUuid } from 'uuid';

export interface UnsubscribeClaims {
  tenantId: string;
  campaignId: string;
  subscriberId: string;
}

const MAC_BYTES = 16;
const TOKEN = /^[A-Za-z0-9_-]{86}$/;

const keyOf = (secret: string) => createHmac('sha256', secret).update('docket unsubscribe link v1').digest();

function mac(key: Buffer, ids: Buffer): Buffer {
  return createHmac('sha256', key).update(ids).digest().subarray(0, MAC_BYTES);
}

export class UnsubscribeLinks {
  private readonly key: Buffer;

  constructor(secret: string, private readonly publicUrl: string) {
    this.key = keyOf(secret);
  }

  /** The token: the three ids (16 bytes each) and a 128-bit MAC over them, base64url (86 characters). */
  token(c: UnsubscribeClaims): string {
    const ids = Buffer.concat([c.tenantId, c.campaignId, c.subscriberId].map((id) => Buffer.from(parseUuid(id))));
    return Buffer.concat([ids, mac(this.key, ids)]).toString('base64url');
  }

  url(c: UnsubscribeClaims): string {
    return `${this.publicUrl.replace(/\/+$/, '')}/v1/unsubscribe/${this.token(c)}`;
  }

  /** The claims of a genuine token, or null. */
  verify(token: string): UnsubscribeClaims | null {
    if (!TOKEN.test(token)) return null;
    const raw = Buffer.from(token, 'base64url');
    // base64url ignores the spare bits of the last character: compare the text, so one spelling only passes.
    if (raw.toString('base64url') !== token) return null;
    const ids = raw.subarray(0, 48);
    const given = raw.subarray(48);
    if (given.length !== MAC_BYTES || !timingSafeEqual(given, mac(this.key, ids))) return null;
    const [tenantId, campaignId, subscriberId] = [0, 16, 32].map((at) => stringifyUuid(ids.subarray(at, at + 16)));
    return { tenantId, campaignId, subscriberId };
  }
}

/** The headers that let a mail client offer "unsubscribe" and do it with one POST (RFC 2369, RFC 8058). */
export function unsubscribeHeaders(url: string, mailto?: string): Record<string, string> {
  return {
    'List-Unsubscribe': mailto ? `<${url}>, <mailto:${mailto}>` : `<${url}>`,
    'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
  };
}
