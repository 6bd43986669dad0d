// Page cursors are sealed with an HMAC bound to the list (its operation), so the only cursors that
// decode are ones this server issued for that list: a forged, truncated or borrowed cursor is a 400
// before its values get anywhere near a query.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { validationFailed } from '../lib/problems';

export class CursorSeal {
  private readonly key: Buffer;

  /** `secret` is shared by every API process (LINK_SIGNING_SECRET), so any of them opens any cursor. */
  constructor(secret: string) {
    this.key = createHmac('sha256', secret).update('docket page cursor v1').digest();
  }

  private mac(operationId: string, payload: string): Buffer {
    return createHmac('sha256', this.key).update(`${operationId}\n${payload}`).digest();
  }

  /** `<payload>.<mac>`; the payload (base64url, see api/conventions.ts) has no dot. */
  seal(operationId: string, payload: string): string {
    return `${payload}.${this.mac(operationId, payload).toString('base64url')}`;
  }

  /** The payload of a cursor this server sealed for `operationId`; anything else is a 400. */
  open(operationId: string, cursor: string): string {
    const dot = cursor.lastIndexOf('.');
    const payload = cursor.slice(0, dot);
    const given = Buffer.from(cursor.slice(dot + 1), 'base64url');
    const expected = this.mac(operationId, payload);
    if (dot < 0 || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw validationFailed([{ path: '/query/cursor', message: 'is not a cursor returned by this list' }]);
    }
    return payload;
  }
}
