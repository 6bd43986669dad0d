// The import targets: adding one is a file beside these and one line here.
import { ImportError } from '../errors';
import { subscribersTarget } from './subscribers';
import type { ImportTarget } from './types';
import { usersTarget } from './users';

export const IMPORT_TARGETS: Readonly<Record<string, ImportTarget>> = {
  [subscribersTarget.name]: subscribersTarget,
  [usersTarget.name]: usersTarget,
};

export function importTarget(name: string): ImportTarget {
  const target = IMPORT_TARGETS[name];
  if (!target) throw new ImportError('INVALID_MAPPING', `There is no import target "${name}" (targets: ${Object.keys(IMPORT_TARGETS).join(', ')})`);
  return target;
}

export type { ImportTarget, MergeContext, MergeCounts, PermissionCheck, TargetField } from './types';
