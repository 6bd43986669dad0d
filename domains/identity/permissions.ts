// Dot-named permissions: '*' grants all, 'audit.*' grants every permission under 'audit.'.

/**
 * Whether `granted` covers `needed`. `needed` may itself be a pattern: 'files.*' is covered by '*',
 * 'files.*' or a wider prefix wildcard, never by names below it ('files.read' does not cover 'files.*',
 * which also grants permissions added later).
 */
export function grants(granted: readonly string[], needed: string): boolean {
  for (const g of granted) {
    if (g === '*' || g === needed) return true;
    if (g.endsWith('.*') && needed.startsWith(g.slice(0, -1))) return true;
  }
  return false;
}

/**
 * Every pattern that grants `needed` (as `grants` decides): '*', the name itself, and the wildcard of each of its
 * dotted prefixes ('identity.users.manage' ← 'identity.*', 'identity.users.*').
 */
export function grantingPatterns(needed: string): string[] {
  const parts = needed.split('.');
  const prefixes = parts.slice(0, -1).map((_, i) => `${parts.slice(0, i + 1).join('.')}.*`);
  return [...new Set(['*', needed, ...prefixes])];
}

/** The patterns of `patterns` that no other of them covers (['files.*', 'files.read'] → ['files.*']). */
function widest(patterns: Iterable<string>): string[] {
  const unique = [...new Set(patterns)];
  return unique.filter((p) => !unique.some((q) => q !== p && grants([q], p))).sort();
}

/** Exactly what both pattern lists grant, as patterns (['files.read'] ∩ ['files.*'] = ['files.read']). */
export function intersect(a: readonly string[], b: readonly string[]): string[] {
  const both: string[] = [];
  for (const x of a) {
    for (const y of b) {
      if (grants([y], x)) both.push(x);
      else if (grants([x], y)) both.push(y);
    }
  }
  return widest(both);
}

/** What a credential may do: the user's role permissions, narrowed by the key's (or token's) scopes if it has any. */
export class PermissionSet {
  constructor(readonly fromRoles: readonly string[], readonly scopes: readonly string[] | null) {}

  /** Holds `needed` (a name or a pattern: holding 'files.*' needs both the roles and the scopes to cover it). */
  has(needed: string): boolean {
    return grants(this.fromRoles, needed) && (this.scopes === null || grants(this.scopes, needed));
  }

  /** The patterns of `perms` this credential does not hold: what it may not grant to anyone. */
  missing(perms: Iterable<string>): string[] {
    return [...new Set(perms)].filter((p) => !this.has(p));
  }

  /**
   * Exactly what the credential can do, as patterns: the roles' permissions where there are no scopes,
   * otherwise the part of each that the other covers (a key scoped 'files.*' on a user holding 'files.read'
   * lists 'files.read'; a key scoped '*' lists the roles' permissions).
   */
  list(): string[] {
    return this.scopes === null ? widest(this.fromRoles) : intersect(this.fromRoles, this.scopes);
  }
}
