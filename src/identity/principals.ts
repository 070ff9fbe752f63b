/** Application users and external users: made, listed, disabled and given new secrets (the admin API and CLI). */
import { randomUUID } from "node:crypto";
import { badRequest } from "../odata/errors.js";
import { ROLE_NAMES, type RoleName, isRoleName } from "./roles.js";
import { hashSecret, newSecret, secretHint } from "./secrets.js";
import type { ControlStore, PrincipalRow } from "./store/control-store.js";

export interface NewPrincipal {
  name: string;
  roles: readonly string[];
  /** Channel providers: the msdyn_ciproviderid they are bound to. */
  providerId?: string;
  /** Users of an external issuer; without them, an application user of the built-in issuer. */
  issuer?: string;
  objectId?: string;
}

export interface PrincipalView {
  id: string;
  kind: string;
  name: string;
  clientId?: string;
  issuer?: string;
  objectId?: string;
  roles: string[];
  providerId?: string;
  disabled: boolean;
  createdOn: string;
  /** First characters of the current secrets. */
  secretHints?: string[];
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function view(row: PrincipalRow & { secrets?: Array<{ hint: string }> }): PrincipalView {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    ...(row.clientId ? { clientId: row.clientId } : {}),
    ...(row.issuer ? { issuer: row.issuer, objectId: row.objectId ?? undefined } : {}),
    roles: row.roles,
    ...(row.providerId ? { providerId: row.providerId } : {}),
    disabled: row.disabled,
    createdOn: row.createdOn.toISOString(),
    ...(row.secrets ? { secretHints: row.secrets.map((s) => `${s.hint}…`) } : {}),
  };
}

function checkRoles(roles: readonly string[], providerId: string | undefined): RoleName[] {
  if (roles.length === 0) throw badRequest(`roles: give at least one of ${ROLE_NAMES.join(", ")}.`);
  const unknown: string[] = roles.filter((r) => !isRoleName(r));
  if (unknown.length)
    throw badRequest(`roles: unknown role '${unknown[0]!.slice(0, 64)}'; the roles are ${ROLE_NAMES.join(", ")}.`);
  const valid = roles as RoleName[];
  if (valid.includes("ChannelProvider") !== (providerId !== undefined)) {
    throw badRequest(
      "providerId: a ChannelProvider principal must be bound to exactly one msdyn_ciprovider (providerId), and only it.",
    );
  }
  if (valid.includes("ChannelProvider") && valid.length > 1) {
    throw badRequest("roles: a ChannelProvider principal has that role alone (its data scope would not bind the others).");
  }
  if (providerId !== undefined && !GUID.test(providerId)) throw badRequest("providerId: must be a GUID (a msdyn_ciproviderid).");
  return valid;
}

/** Creates a principal; an application user's secret is returned here and never again. */
export async function createPrincipal(
  store: ControlStore,
  organizationId: string,
  input: NewPrincipal,
): Promise<{ principal: PrincipalView; clientSecret?: string }> {
  if (typeof input.name !== "string" || !input.name.trim() || input.name.length > 200) {
    throw badRequest("name: required, at most 200 characters.");
  }
  const roles = checkRoles(input.roles, input.providerId);
  const external = input.issuer !== undefined || input.objectId !== undefined;
  if (external && (!input.issuer || !input.objectId)) throw badRequest("issuer and objectId: give both for an external user.");
  const id = randomUUID();
  const row = await store.createPrincipal({
    id,
    organizationId,
    kind: external ? "user" : "application",
    name: input.name.trim(),
    clientId: external ? null : randomUUID(),
    issuer: input.issuer ?? null,
    objectId: input.objectId ?? null,
    roles,
    providerId: input.providerId ?? null,
  });
  if (external) return { principal: view(row) };
  const clientSecret = await rotateSecret(store, row.id);
  return { principal: view({ ...row, secrets: [{ hint: secretHint(clientSecret) }] }), clientSecret };
}

/** Replaces an application user's secrets with a new one, returned once. */
export async function rotateSecret(store: ControlStore, principalId: string): Promise<string> {
  const secret = newSecret();
  await store.replaceSecret(principalId, { id: randomUUID(), hash: await hashSecret(secret), hint: secretHint(secret) });
  return secret;
}
