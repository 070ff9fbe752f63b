/**
 * Organisations as the rest of the service sees them, and the URLs they answer at: by host
 * name (`url`), by path prefix (`/org/<name>/`, for single-host setups), or, for the
 * default organisation, at the server's own address.
 */
import type { OrganizationRow } from "./store/control-store.js";

export interface ExternalIssuer {
  issuer: string;
  /** The audience tokens must carry; default: the organisation's URL. */
  audience?: string;
  jwksUrl?: string;
  algorithms: readonly string[];
}

export interface Organization {
  id: string;
  name: string;
  /** `https://contoso.example.com`, when found by host name. */
  url?: string;
  isDefault: boolean;
  /** The database of its records; undefined: the main database. */
  databaseName?: string;
  businessUnitId: string;
  /** Set when its tokens come from an external OpenID Connect issuer; else the built-in issuer's. */
  external?: ExternalIssuer;
}

/** The path prefix of an organisation on a single host. */
export const ORGANIZATION_PATH_PREFIX = "/org/";

/** Organisation names: lower-case slugs, usable in a path and in a database name. */
export const ORGANIZATION_NAME = /^[a-z][a-z0-9-]{1,39}$/;

export function toOrganization(row: OrganizationRow): Organization {
  return {
    id: row.id,
    name: row.name,
    url: row.url ?? undefined,
    isDefault: row.isDefault,
    databaseName: row.databaseName ?? undefined,
    businessUnitId: row.businessUnitId,
    external: row.oidcIssuer
      ? {
          issuer: row.oidcIssuer,
          audience: row.oidcAudience ?? undefined,
          jwksUrl: row.oidcJwksUrl ?? undefined,
          algorithms: row.oidcAlgorithms,
        }
      : undefined,
  };
}

/** `https://Contoso.example.com:443/` → `https://contoso.example.com`: how URLs are compared. */
export function normaliseUrl(url: string): string {
  const parsed = new URL(url);
  const path = parsed.pathname.replace(/\/+$/, "");
  return `${parsed.protocol}//${parsed.host.toLowerCase()}${path}`;
}

/**
 * Where a request reached the organisation: the server's base (`PUBLIC_URL`, else the
 * request's scheme and host) and the path prefix it came through, if any.
 */
export interface RequestPlace {
  base: string;
  prefix?: string;
}

/** The organisation's URL as this request sees it: the token audience and the 401's resource_id. */
export function organizationUrl(organization: Organization, place: RequestPlace): string {
  if (place.prefix) return `${place.base}${place.prefix}`;
  return organization.url ?? place.base;
}

/** The built-in issuer of an organisation, laid out as Entra's: `<server>/<tenant>/v2.0`. */
export const builtinIssuer = (base: string, organization: Organization) => `${base}/${organization.id}/v2.0`;
export const builtinTokenEndpoint = (base: string, organization: Organization) => `${base}/${organization.id}/oauth2/v2.0/token`;
export const builtinAuthorizeEndpoint = (base: string, organization: Organization) =>
  `${base}/${organization.id}/oauth2/authorize`;
