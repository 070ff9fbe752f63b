/**
 * First start (issue 11, "two commands stay two"): with an empty control schema, the
 * default organisation is made and, for the built-in issuer, an administrator
 * application user whose client id and secret go to an owner-only file under DATA_DIR.
 * The log names the file, never the secret.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../config/config.js";
import { toOrganization, type Organization } from "./organizations.js";
import { createPrincipal } from "./principals.js";
import type { ControlStore } from "./store/control-store.js";

export const CREDENTIALS_FILE = "admin-credentials.json";

export interface AdminCredentials {
  tenant_id: string;
  client_id: string;
  client_secret: string;
  note: string;
}

interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export const credentialsPath = (config: Pick<Config, "DATA_DIR">) => path.resolve(config.DATA_DIR, CREDENTIALS_FILE);

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === "P2002";

export async function bootstrapIdentity(store: ControlStore, config: Config, log: Logger): Promise<Organization> {
  const existing = await store.defaultOrganization();
  if (existing) return toOrganization(existing);
  const external =
    config.AUTH_MODE === "oidc"
      ? {
          oidcIssuer: config.OIDC_ISSUER!,
          oidcAudience: config.OIDC_AUDIENCE ?? null,
          oidcJwksUrl: config.OIDC_JWKS_URL ?? null,
          oidcAlgorithms: config.OIDC_ALGORITHMS,
        }
      : {};
  let row;
  try {
    row = await store.createOrganization({
      id: config.ORGANIZATION_ID,
      name: "default",
      isDefault: true,
      businessUnitId: config.BUSINESS_UNIT_ID,
      ...external,
    });
  } catch (error) {
    // Another instance made it first: theirs is the one.
    if (!isUniqueViolation(error)) throw error;
    return toOrganization((await store.defaultOrganization())!);
  }
  const organization = toOrganization(row);
  if (config.AUTH_MODE === "oidc") {
    log.warn(
      { organization: organization.name },
      "default organisation created for an external issuer; add its administrators with `npm run admin -- create-user --issuer <iss> --object-id <oid> --roles Administrator`",
    );
    return organization;
  }
  const { principal, clientSecret } = await createPrincipal(store, organization.id, {
    name: "Administrator (made on first start)",
    roles: ["Administrator"],
  });
  const file = credentialsPath(config);
  const credentials: AdminCredentials = {
    tenant_id: organization.id,
    client_id: principal.clientId!,
    client_secret: clientSecret!,
    note: "The administrator application user made on first start. `npm run token` prints a token for it; `npm run admin -- rotate-secret <client_id>` replaces the secret.",
  };
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  log.info(
    { file, clientId: principal.clientId },
    "default organisation and administrator created; the administrator's client secret is in this file (owner only)",
  );
  return organization;
}
