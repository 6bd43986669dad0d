// Webhook secrets at rest: sealed values do not contain the secret, open back to it only with the right
// key, and a tampered value is refused rather than decrypted to garbage.
import { openSecret, sealSecret, secretsKey } from '../../lib/secrets';

const key = secretsKey(undefined, 'link-secret-link-secret-link-secret-!!');

it('seals a secret so the stored text does not reveal it, and opens it again', () => {
  const sealed = sealSecret('whsec_at_least_16_chars', key);
  expect(sealed).not.toContain('whsec');
  expect(sealSecret('whsec_at_least_16_chars', key)).not.toBe(sealed); // a fresh IV each time
  expect(openSecret(sealed, key)).toBe('whsec_at_least_16_chars');
});

it('refuses the wrong key and a tampered value; reads a value stored before encryption as it is', () => {
  const sealed = sealSecret('whsec_at_least_16_chars', key);
  expect(() => openSecret(sealed, secretsKey('a'.repeat(64), 'x'))).toThrow();
  const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
  expect(() => openSecret(tampered, key)).toThrow();
  expect(openSecret('legacy-plain-secret', key)).toBe('legacy-plain-secret');
});

it('takes SECRETS_KEY as hex or base64 of 32 bytes, and nothing else', () => {
  const hex = 'ab'.repeat(32);
  expect(secretsKey(hex, 'ignored').equals(Buffer.from(hex, 'hex'))).toBe(true);
  expect(secretsKey(Buffer.from(hex, 'hex').toString('base64'), 'ignored').equals(Buffer.from(hex, 'hex'))).toBe(true);
  expect(() => secretsKey('too-short', 'ignored')).toThrow(/32 bytes/);
});
