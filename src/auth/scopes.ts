/**
 * SMART Backend Services scopes, v1 (`system/Observation.read`, `system/*.*`) and v2
 * (`system/Observation.rs`, `system/*.cruds`). Only `system/` scopes grant anything here; the
 * `bulkflow/admin` scope lets an operator see and cancel every client's jobs. Pure.
 */

export const ADMIN_SCOPE = 'bulkflow/admin';

export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

interface Grant {
  type: string; // a resource type or '*'
  permissions: ReadonlySet<Permission>;
}

const V1: Record<string, Permission[]> = { read: ['r', 's'], write: ['c', 'u', 'd'], '*': ['c', 'r', 'u', 'd', 's'] };
const SCOPE = /^system\/([A-Z][A-Za-z]+|\*)\.([a-z*]+)$/;

/** A scope string's grant, or undefined when it is not a system scope this server understands. */
export function parseScope(scope: string): Grant | undefined {
  const match = SCOPE.exec(scope);
  if (!match) return undefined;
  const [, type, permissionText] = match;
  if (V1[permissionText]) return { type, permissions: new Set(V1[permissionText]) };
  // v2: letters in the order c, r, u, d, s, each at most once.
  if (!/^c?r?u?d?s?$/.test(permissionText) || permissionText === '') return undefined;
  return { type, permissions: new Set(permissionText.split('') as Permission[]) };
}

export class Scopes {
  private readonly grants: Grant[];
  readonly admin: boolean;

  constructor(readonly granted: readonly string[]) {
    this.grants = granted.map(parseScope).filter((g): g is Grant => g !== undefined);
    this.admin = granted.includes(ADMIN_SCOPE);
  }

  static parse(scope: string | undefined): Scopes {
    return new Scopes((scope ?? '').split(/\s+/).filter(Boolean));
  }

  allows(type: string, permission: Permission): boolean {
    return this.grants.some((g) => (g.type === '*' || g.type === type) && g.permissions.has(permission));
  }

  /** Read access to `type` (what a bulk export of it needs). */
  canRead(type: string): boolean {
    return this.allows(type, 'r');
  }

  /** The types named (not `*`) with read access. */
  readableTypes(): string[] {
    return [...new Set(this.grants.filter((g) => g.type !== '*' && g.permissions.has('r')).map((g) => g.type))];
  }

  /** Whether some type is readable: what running a view needs before its request is even read. */
  get readsAnything(): boolean {
    return this.grants.some((g) => g.permissions.has('r'));
  }

  /** Whether every type is readable (`system/*.read`, `system/*.rs`, ...). */
  get readsEverything(): boolean {
    return this.grants.some((g) => g.type === '*' && g.permissions.has('r'));
  }
}

/**
 * What a client asked for, narrowed to what it is allowed: a requested scope is granted when an
 * allowed scope covers it (same or `*` type, a superset of permissions); `bulkflow/admin` only
 * when allowed verbatim.
 */
export function grantScopes(requested: string[], allowed: string[]): string[] {
  const allowedGrants = allowed.map(parseScope).filter((g): g is Grant => g !== undefined);
  return requested.filter((scope) => {
    if (scope === ADMIN_SCOPE) return allowed.includes(ADMIN_SCOPE);
    const want = parseScope(scope);
    return (
      want !== undefined &&
      allowedGrants.some((g) => (g.type === '*' || g.type === want.type) && [...want.permissions].every((p) => g.permissions.has(p)))
    );
  });
}
