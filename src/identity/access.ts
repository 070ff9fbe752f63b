/**
 * What the caller of one request may do: its principal, roles and privileges. Every entry
 * point (entity sets, actions, `$batch` parts, the analytics and admin APIs) asks here.
 */
import { type PrivilegeNeed, privilegeName } from "../model/privileges.js";
import { ODataError } from "../odata/errors.js";
import { ROLE_PRIVILEGES, type RoleName } from "./roles.js";

/** Dataverse's PrivilegeDenied (shared/reference/security.md §1). */
export const PRIVILEGE_DENIED = "0x80040220";

export class Access {
  private readonly privileges: ReadonlySet<string>;

  constructor(
    /** The principal's systemuserid. */
    readonly principalId: string,
    readonly roles: readonly RoleName[],
  ) {
    this.privileges = new Set(roles.flatMap((role) => [...ROLE_PRIVILEGES[role]]));
  }

  has(need: PrivilegeNeed): boolean {
    return this.privileges.has(privilegeName(need));
  }

  hasRole(role: RoleName): boolean {
    return this.roles.includes(role);
  }

  /** Throws Dataverse's 403 for the first need not granted. */
  require(needs: readonly PrivilegeNeed[]): void {
    for (const need of needs) if (!this.has(need)) throw this.denied(privilegeName(need), need.table.logicalName);
  }

  /** A role-level refusal (the admin API), in the same form. */
  requireRole(role: RoleName, what: string): void {
    if (!this.hasRole(role)) throw this.denied(`the ${role} role`, what);
  }

  private denied(privilege: string, entity: string): ODataError {
    return new ODataError(
      403,
      PRIVILEGE_DENIED,
      `Principal user (Id=${this.principalId}, type=8, roleCount=${this.roles.length}, privilegeCount=${this.privileges.size}, accessMode=0), ` +
        `is missing ${privilege} privilege for entity '${entity}'. context.Caller=${this.principalId}`,
    );
  }
}
