// Dot-named permissions: '*' grants all, 'audit.*' grants every permission under 'audit.'.

export function grants(granted: readonly string[], needed: string): boolean {
  for (const g of granted) {
    if (g === '*' || g === needed) return true;
    if (g.endsWith('.*') && needed.startsWith(g.slice(0, -1))) return true;
  }
  return false;
}

/** What a credential may do: the user's role permissions, narrowed by the key's scopes if it has any. */
export class PermissionSet {
  constructor(readonly fromRoles: readonly string[], readonly scopes: readonly string[] | null) {}

  has(needed: string): boolean {
    return grants(this.fromRoles, needed) && (this.scopes === null || grants(this.scopes, needed));
  }

  /** The list shown to the caller: role permissions, or the scopes that the roles cover. */
  list(): string[] {
    const base = this.scopes === null ? this.fromRoles : this.scopes.filter((s) => grants(this.fromRoles, s));
    return [...new Set(base)].sort();
  }

}
