// Secrets Docket must keep but can read back (a webhook's HMAC secret: it signs every delivery) are stored
// encrypted, so a database dump or a read replica does not hand them out. AES-256-GCM with a random IV
// per value; the key comes from SECRETS_KEY, or is derived from LINK_SIGNING_SECRET when that is unset.
import { createCipheriv, createDecipheriv, hash, hkdfSync, randomBytes } from 'node:crypto';

/** How every sealed value starts (SQL that looks for plain ones matches on it). */
export const SEALED_PREFIX = 'enc:v1:';

/** The 32-byte key: SECRETS_KEY (64 hex chars or base64 of 32 bytes), else HKDF of the link secret. */
export function secretsKey(secretsKeyEnv: string | undefined, linkSecret: string): Buffer {
  if (secretsKeyEnv) {
    const key = /^[0-9a-f]{64}$/i.test(secretsKeyEnv) ? Buffer.from(secretsKeyEnv, 'hex') : Buffer.from(secretsKeyEnv, 'base64');
    if (key.length !== 32) throw new Error('SECRETS_KEY must be 32 bytes, as 64 hex characters or base64');
    return key;
  }
  // A distinct label, so the derived key is unrelated to the HMAC key the link secret is used as.
  return Buffer.from(hkdfSync('sha256', linkSecret, 'docket', 'docket/secrets/v1', 32));
}

export function sealSecret(plain: string, key: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return SEALED_PREFIX + [iv, cipher.getAuthTag(), data].map((b) => b.toString('base64url')).join('.');
}

/** Whether a stored value is sealed (sealSecret's format), rather than one stored before encryption. */
export const isSealed = (stored: string): boolean => stored.startsWith(SEALED_PREFIX);

/** Decrypts a sealed value; a value stored before encryption (no prefix) is returned as it is. */
export function openSecret(stored: string, key: Buffer): string {
  if (!isSealed(stored)) return stored;
  const [iv, tag, data] = stored.slice(SEALED_PREFIX.length).split('.').map((p) => Buffer.from(p, 'base64url'));
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
}

/** SHA-256 in hex: how secrets Docket only checks (API key secrets, tokens) are kept and compared. */
export function sha256Hex(s: string): string {
  // One-shot: every authenticated request hashes its credential, and a Hash object costs ~2 µs to ~0.5 µs for this.
  return hash('sha256', s, 'hex');
}
