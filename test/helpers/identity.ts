/** Principals and tokens for tests: made through the real code, tokens from the real token endpoint. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { createPrincipal } from "../../src/identity/principals.js";
import type { RoleName } from "../../src/identity/roles.js";

export interface TestPrincipal {
  id: string;
  clientId: string;
  clientSecret: string;
  tenant: string;
}

/** Where `app.inject` requests arrive unless a host is given. */
export const INJECT_BASE = "http://localhost:80";

/** An application user of the organisation (default: the default one). */
export async function testPrincipal(
  app: FastifyInstance,
  roles: RoleName[],
  { providerId, organizationId }: { providerId?: string; organizationId?: string } = {},
): Promise<TestPrincipal> {
  await app.identity.ready();
  const tenant = organizationId ?? (await app.identity.organizations.defaultOrganization()).id;
  const { principal, clientSecret } = await createPrincipal(app.identity.store, tenant, {
    name: `test ${roles.join("+")}`,
    roles,
    providerId,
  });
  return { id: principal.id, clientId: principal.clientId!, clientSecret: clientSecret!, tenant };
}

/** A token from the built-in issuer's endpoint for `resource` (the organisation URL the requests will use). */
export async function tokenOf(app: FastifyInstance, principal: TestPrincipal, resource = INJECT_BASE): Promise<string> {
  // As written (URL would drop a default port, which app.inject's Host keeps).
  const host = resource.replace(/^https?:\/\//, "").split("/")[0]!;
  const response = await app.inject({
    method: "POST",
    url: `/${principal.tenant}/oauth2/v2.0/token`,
    headers: { host, "content-type": "application/x-www-form-urlencoded" },
    payload: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: principal.clientId,
      client_secret: principal.clientSecret,
      scope: `${resource}/.default`,
    }).toString(),
  });
  if (response.statusCode !== 200) throw new Error(`token endpoint answered ${response.statusCode}: ${response.body}`);
  return response.json<{ access_token: string }>().access_token;
}

/** A token for a new principal with `roles`, for `app.inject` requests. */
export async function tokenFor(
  app: FastifyInstance,
  roles: RoleName[],
  options: { providerId?: string; organizationId?: string; resource?: string } = {},
): Promise<string> {
  return tokenOf(app, await testPrincipal(app, roles, options), options.resource);
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A fresh folder for the credentials file of first start. */
export const testDataDir = (): string => mkdtempSync(path.join(tmpdir(), "cif-test-data-"));
