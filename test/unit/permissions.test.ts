// Dot-named permissions: exact names, '*' and prefix wildcards; key scopes narrow, never widen.
import { grantingPatterns, grants, intersect, PermissionSet } from '../../domains/identity/permissions';

describe('grants', () => {
  it('grants an exact name, everything to *, and a subtree to a prefix wildcard', () => {
    expect(grants(['audit.read'], 'audit.read')).toBe(true);
    expect(grants(['*'], 'identity.roles.manage')).toBe(true);
    expect(grants(['identity.*'], 'identity.roles.manage')).toBe(true);
  });

  it('does not grant neighbours, parents or look-alike prefixes', () => {
    expect(grants(['audit.read'], 'audit.export')).toBe(false);
    expect(grants(['identity.roles.*'], 'identity.users.read')).toBe(false);
    expect(grants(['audit.*'], 'auditing.read')).toBe(false);
    expect(grants([], 'audit.read')).toBe(false);
  });

  it('compares patterns: a wildcard is covered only by itself or a wider one, never by the names below it', () => {
    expect(grants(['files.*'], 'files.*')).toBe(true);
    expect(grants(['*'], 'files.*')).toBe(true);
    expect(grants(['identity.*'], 'identity.users.*')).toBe(true);
    expect(grants(['files.read', 'files.write', 'files.delete'], 'files.*')).toBe(false);
    expect(grants(['identity.*'], '*')).toBe(false);
    expect(grants(['identity.apikeys.manage'], 'identity.apikeys.manage_others')).toBe(false);
  });
});

describe('intersect', () => {
  it('keeps the narrower side of each overlapping pair, and drops what another kept pattern covers', () => {
    expect(intersect(['files.read'], ['files.*'])).toEqual(['files.read']);
    expect(intersect(['*'], ['audit.read', 'files.*'])).toEqual(['audit.read', 'files.*']);
    expect(intersect(['identity.*', 'files.read'], ['*'])).toEqual(['files.read', 'identity.*']);
    expect(intersect(['files.*'], ['audit.*'])).toEqual([]);
    expect(intersect(['files.*', 'files.read'], ['files.*'])).toEqual(['files.*']);
  });
});

describe('PermissionSet', () => {
  it('without scopes: exactly what the roles grant', () => {
    const set = new PermissionSet(['files.*'], null);
    expect(set.has('files.write')).toBe(true);
    expect(set.has('audit.read')).toBe(false);
    expect(set.list()).toEqual(['files.*']);
  });

  it('with scopes: only what both the roles and the scopes grant', () => {
    const set = new PermissionSet(['*'], ['audit.read']);
    expect(set.has('audit.read')).toBe(true);
    expect(set.has('audit.export')).toBe(false);
    expect(set.list()).toEqual(['audit.read']);
  });

  it('a scope beyond the roles adds nothing', () => {
    const set = new PermissionSet(['files.read'], ['files.read', 'audit.read']);
    expect(set.has('audit.read')).toBe(false);
    expect(set.list()).toEqual(['files.read']);
  });

  it('lists exactly what a wildcard scope leaves: the roles\' permissions it covers', () => {
    expect(new PermissionSet(['files.read'], ['files.*']).list()).toEqual(['files.read']);
    expect(new PermissionSet(['audit.read', 'files.write'], ['*']).list()).toEqual(['audit.read', 'files.write']);
    expect(new PermissionSet(['*'], ['files.*']).list()).toEqual(['files.*']);
  });

  it('holds a wildcard only when both the roles and the scopes cover it', () => {
    expect(new PermissionSet(['*'], ['identity.apikeys.manage']).has('*')).toBe(false);
    expect(new PermissionSet(['files.read'], ['files.*']).has('files.*')).toBe(false);
    expect(new PermissionSet(['files.*'], null).has('files.*')).toBe(true);
    expect(new PermissionSet(['*'], null).missing(['*', 'files.read'])).toEqual([]);
    expect(new PermissionSet(['identity.*'], null).missing(['*', 'identity.users.manage', 'files.read'])).toEqual(['*', 'files.read']);
  });
});

describe('grantingPatterns', () => {
  it('lists exactly the patterns that grant a name, as grants() decides', () => {
    expect(grantingPatterns('identity.users.manage').sort()).toEqual(['*', 'identity.*', 'identity.users.*', 'identity.users.manage']);
    expect(grantingPatterns('audit.*').sort()).toEqual(['*', 'audit.*']);
    expect(grantingPatterns('*')).toEqual(['*']);
    // Against grants(): every candidate pattern grants the name exactly when it is listed.
    const candidates = ['*', 'identity.*', 'identity.users.*', 'identity.users.manage', 'identity.user.*', 'identity.users.manage.*', 'identity.users', 'ident.*', 'files.*'];
    for (const needed of ['identity.users.manage', 'identity.users.*', 'files.read']) {
      for (const c of candidates) expect([needed, c, grantingPatterns(needed).includes(c)]).toEqual([needed, c, grants([c], needed)]);
    }
  });
});
