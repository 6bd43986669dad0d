// Dot-named permissions: exact names, '*' and prefix wildcards; key scopes narrow, never widen.
import { grants, PermissionSet } from '../../api/permissions';

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
});
