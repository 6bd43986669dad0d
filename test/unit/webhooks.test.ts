// The relay's read bound (the smallest UUIDv7 of a millisecond) and the Standard Webhooks headers, checked with
// the reference library: one signature per secret, each verifying on its own.
import { v7 as uuidv7 } from 'uuid';
import { Webhook } from 'standardwebhooks';
import { uuidV7Floor } from '../../lib/uuid';
import { newWebhookSecret, standardWebhookHeaders } from '../../lib/notify/standard-webhooks';

it('uuidV7Floor(ms) sorts at or before every UUIDv7 of that millisecond and after every earlier one', () => {
  const ms = Date.parse('2026-11-23T10:00:00.123Z');
  const floor = uuidV7Floor(ms);
  for (let i = 0; i < 50; i++) {
    expect(uuidv7({ msecs: ms }) >= floor).toBe(true);
    expect(uuidv7({ msecs: ms - 1 }) < floor).toBe(true);
  }
  expect(floor).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7000-8000-000000000000$/);
});

it('signs with every secret given, space-separated; each verifies alone and a third does not', () => {
  const [a, b, c] = [newWebhookSecret(), newWebhookSecret(), newWebhookSecret()];
  const body = JSON.stringify({ type: 'document.ready', timestamp: '2026-11-23T10:00:00Z', data: { x: 1 } });
  const headers = standardWebhookHeaders([a, b], 'evt-1', body);
  expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
  expect(new Webhook(a).verify(body, headers)).toEqual(JSON.parse(body));
  expect(new Webhook(b).verify(body, headers)).toEqual(JSON.parse(body));
  expect(() => new Webhook(c).verify(body, headers)).toThrow();
  expect(() => new Webhook(a).verify(body.replace('1', '2'), headers)).toThrow();
});
