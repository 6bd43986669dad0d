// The search attributes every Docket workflow carries, so operators find any flow in the Temporal UI.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const TENANT_ID = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);
export const ENTITY_TYPE = defineSearchAttributeKey('EntityType', SearchAttributeType.KEYWORD);
export const ENTITY_ID = defineSearchAttributeKey('EntityId', SearchAttributeType.KEYWORD);
export const STATUS = defineSearchAttributeKey('Status', SearchAttributeType.KEYWORD);
/**
 * The business object a workflow is about, by the object's own id, where the workflow is not the object
 * itself: an approval flow's EntityId is the flow, its ObjectId the purchase order (or other object) it approves.
 */
export const OBJECT_ID = defineSearchAttributeKey('ObjectId', SearchAttributeType.KEYWORD);

/** Names to register on a cluster: `temporal operator search-attribute create --name X --type Keyword`. */
export const SEARCH_ATTRIBUTE_NAMES = [TENANT_ID.name, ENTITY_TYPE.name, ENTITY_ID.name, STATUS.name, OBJECT_ID.name];

export interface BusinessRef {
  /** The domain, first part of the workflow id: `<domain>:<tenantId>:<entityId>`. */
  domain: string;
  tenantId: string;
  entityType: string;
  entityId: string;
  /** The object the workflow is about, when that is not the entity itself (ObjectId). */
  objectId?: string;
}

export function businessWorkflowId(ref: Pick<BusinessRef, 'domain' | 'tenantId' | 'entityId'>): string {
  return `${ref.domain}:${ref.tenantId}:${ref.entityId}`;
}
