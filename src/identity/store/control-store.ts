/**
 * The control database through Prisma Client (ordinary CRUD; shared/ARCHITECTURE.md):
 * organisations, principals, client secrets and signing keys, in the schema `cif_control`
 * of the main database (prisma/control/schema.prisma).
 */
import { PrismaPg } from "@prisma/adapter-pg";
import { type Prisma, PrismaClient } from "@cif-analytics/control-client";
import type pg from "pg";

import { CONTROL_SCHEMA } from "../../db/database.js";
export { CONTROL_SCHEMA };

export type { Prisma };
export type OrganizationRow = Prisma.OrganizationGetPayload<object>;
export type PrincipalRow = Prisma.PrincipalGetPayload<object>;
export type PrincipalWithOrganization = Prisma.PrincipalGetPayload<{ include: { organization: true } }>;
export type SigningKeyRow = Prisma.SigningKeyGetPayload<object>;
export type ClientSecretRow = Prisma.ClientSecretGetPayload<object>;

export class ControlStore {
  readonly prisma: PrismaClient;

  /** Shares the service's pool: no second set of connections for a few small tables. */
  constructor(pool: pg.Pool) {
    this.prisma = new PrismaClient({ adapter: new PrismaPg(pool, { schema: CONTROL_SCHEMA }) });
  }

  defaultOrganization(): Promise<OrganizationRow | null> {
    return this.prisma.organization.findFirst({ where: { isDefault: true } });
  }

  organizationById(id: string): Promise<OrganizationRow | null> {
    return this.prisma.organization.findUnique({ where: { id } });
  }

  organizationByName(name: string): Promise<OrganizationRow | null> {
    return this.prisma.organization.findUnique({ where: { name } });
  }

  organizationByUrl(url: string): Promise<OrganizationRow | null> {
    return this.prisma.organization.findUnique({ where: { url } });
  }

  listOrganizations(): Promise<OrganizationRow[]> {
    return this.prisma.organization.findMany({ orderBy: { createdOn: "asc" } });
  }

  createOrganization(data: Prisma.OrganizationCreateInput): Promise<OrganizationRow> {
    return this.prisma.organization.create({ data });
  }

  principalByClientId(clientId: string): Promise<(PrincipalWithOrganization & { secrets: ClientSecretRow[] }) | null> {
    return this.prisma.principal.findUnique({
      where: { clientId },
      include: { organization: true, secrets: { where: { revokedOn: null } } },
    });
  }

  principalById(organizationId: string, id: string): Promise<PrincipalRow | null> {
    return this.prisma.principal.findFirst({ where: { id, organizationId } });
  }

  principalByObjectId(organizationId: string, issuer: string, objectId: string): Promise<PrincipalRow | null> {
    return this.prisma.principal.findUnique({
      where: { organizationId_issuer_objectId: { organizationId, issuer, objectId } },
    });
  }

  listPrincipals(organizationId: string): Promise<Array<PrincipalRow & { secrets: ClientSecretRow[] }>> {
    return this.prisma.principal.findMany({
      where: { organizationId },
      include: { secrets: { where: { revokedOn: null } } },
      orderBy: { createdOn: "asc" },
    });
  }

  createPrincipal(data: Prisma.PrincipalUncheckedCreateInput): Promise<PrincipalRow> {
    return this.prisma.principal.create({ data });
  }

  setPrincipalDisabled(organizationId: string, id: string, disabled: boolean): Promise<{ count: number }> {
    return this.prisma.principal.updateMany({ where: { id, organizationId }, data: { disabled } });
  }

  /** Revokes every current secret of the principal and adds `secret`, in one transaction. */
  async replaceSecret(principalId: string, secret: { id: string; hash: string; hint: string }): Promise<void> {
    await this.prisma.$transaction([
      this.prisma.clientSecret.updateMany({ where: { principalId, revokedOn: null }, data: { revokedOn: new Date() } }),
      this.prisma.clientSecret.create({ data: { ...secret, principalId } }),
    ]);
  }

  activeSigningKeys(): Promise<SigningKeyRow[]> {
    return this.prisma.signingKey.findMany({ where: { retiredOn: null }, orderBy: { createdOn: "desc" } });
  }

  addSigningKey(data: Prisma.SigningKeyCreateInput): Promise<SigningKeyRow> {
    return this.prisma.signingKey.create({ data });
  }

  close(): Promise<void> {
    return this.prisma.$disconnect();
  }
}
