// The search attributes every Docket workflow carries, so operators find any flow in the Temporal UI.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const TENANT_ID = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);
export const ENTITY_TYPE = defineSearchAttributeKey('EntityType', SearchAttributeType.KEYWORD);
export const ENTITY_ID = defineSearchAttributeKey('EntityId', SearchAttributeType.KEYWORD);
export const STATUS = defineSearchAttributeKey('Status', SearchAttributeType.KEYWORD);

/** Names to register on a cluster: `temporal operator search-attribute create --name X --type Keyword`. */
export const SEARCH_ATTRIBUTE_NAMES = [TENANT_ID.name, ENTITY_TYPE.name, ENTITY_ID.name, STATUS.name];

export interface BusinessRef {
  /** The domain, first part of the workflow id: `<domain>:<tenantId>:<entityId>`. */
  domain: string;
  tenantId: string;
  entityType: string;
  entityId: string;
}

export function businessWorkflowId(ref: Pick<BusinessRef, 'domain' | 'tenantId' | 'entityId'>): string {
  return `${ref.domain}:${ref.tenantId}:${ref.entityId}`;
}
