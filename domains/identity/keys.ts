// API keys: dk_<prefix>_<secret>; the prefix is the lookup handle, only the secret's hash is stored.
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../lib/secrets';

export const API_KEY_PATTERN = /^dk_([a-f0-9]{12})_([A-Za-z0-9_-]{43})$/;

/** A new key, or a new secret for the key of `prefix` (a rotation): the prefix is the lookup handle, only the secret's hash is stored. */
export function generateApiKey(prefix = randomBytes(6).toString('hex')): { prefix: string; secret: string; secretHash: string } {
  const raw = randomBytes(32).toString('base64url');
  return { prefix, secret: `dk_${prefix}_${raw}`, secretHash: sha256Hex(raw) };
}
