// Purchase orders → API JSON.
import type { PurchaseOrder } from '../../db/models/purchasing';
import type { Schemas } from '../schemas';

export const presentPurchaseOrder = (o: PurchaseOrder): Schemas['PurchaseOrder'] => ({
  id: o.id, number: o.number, supplier: o.supplier, currency: o.currency, lines: o.lines, total: o.total, state: o.state,
  requesterId: o.requesterId, approvalFlowId: o.approvalFlowId ?? null, createdAt: o.createdAt.toISOString(), updatedAt: o.updatedAt.toISOString(),
});
