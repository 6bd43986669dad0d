// An approved purchase order gets its PDF, from the tenant's template with code `purchase-order`
// (none: no PDF). The document belongs to the order (objectType purchase_order) and is made once
// per approval, whatever retries happen (its origin key names the order and the flow).
import type { Client } from '@temporalio/client';
import { Document, DocumentTemplate } from '../../db/models/documents';
import type { PurchaseOrder } from '../../db/models/purchasing';
import { requestDocument } from '../documents/commands';

export const PURCHASE_ORDER_TEMPLATE = 'purchase-order';

export async function generatePurchaseOrderDocument(client: Client, order: PurchaseOrder, flowId: string): Promise<Document | null> {
  const template = await DocumentTemplate.findOne({ where: { tenantId: order.tenantId, code: PURCHASE_ORDER_TEMPLATE } });
  if (!template) return null;
  return requestDocument(client, {
    tenantId: order.tenantId, template, output: 'pdf', fileName: `${order.number}.pdf`,
    objectType: 'purchase_order', objectId: order.id, createdBy: null, originKey: `purchase-order:${order.id}:${flowId}`,
    data: {
      order: {
        id: order.id, number: order.number, supplier: order.supplier, currency: order.currency, total: order.total,
        state: order.state, lines: order.lines.map((l) => ({ ...l, amount: Math.round(l.quantity * l.unitPrice * 100) / 100 })),
        approvedAt: new Date().toISOString(),
      },
    },
  });
}
