/**
 * Who is calling: the bearer token checked, the principal found, its roles and caller.
 * One verification path for both kinds of issuer, with jose: its jwtVerify never accepts
 * `alg: none`, ties each key to its algorithm (no RS256→HS256 confusion) and checks
 * `iss`, `aud`, `exp` and `nbf`. Not fast-jwt (@fastify/jwt): it accepts every algorithm
 * and any issuer and audience unless told otherwise, and has had a series of
 * algorithm-confusion and cache-key advisories (CVE-2023-48223 and its incomplete fixes).
 */
import { type JWTPayload, type JWTVerifyGetKey, errors, jwtVerify } from "jose";
import { LRUCache } from "lru-cache";
import type { Caller } from "../model/caller.js";
import { ODataError } from "../odata/errors.js";
import { Access } from "./access.js";
import { type Challenge, badToken, expiredToken, notAuthenticated } from "./auth-errors.js";
import type { BuiltinIssuer } from "./builtin-issuer.js";
import { ExternalIssuerKeys } from "./external-keys.js";
import {
  type Organization,
  type RequestPlace,
  builtinAuthorizeEndpoint,
  builtinIssuer,
  normaliseUrl,
  organizationUrl,
} from "./organizations.js";
import { isRoleName } from "./roles.js";
import type { ControlStore, PrincipalRow } from "./store/control-store.js";
import { BUILTIN_ALGORITHM } from "./builtin-issuer.js";

/** Who made a request, as every later stage (authorization, the records, audit) sees it. */
export interface RequestIdentity {
  organization: Organization;
  principalId: string;
  principalName: string;
  caller: Caller;
  access: Access;
  /** The token's claims; undefined with AUTH_MODE=none. */
  claims?: JWTPayload;
}

/** Longest Authorization header looked at; Entra's tokens are 1–3 KB. */
export const MAX_TOKEN_LENGTH = 8192;

/** Dataverse's answer for a valid token whose identity is not a user of the organisation. */
export const NOT_A_MEMBER = "0x80072560";

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const GUID_IN_ISSUER = /\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\/|$)/i;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The audience as configured and, when it is a URL, as its normalised forms (an Entra API's audience may be a bare GUID). */
function audiencesOf(audience: string): string[] {
  if (!URL.canParse(audience)) return [audience];
  return [audience, normaliseUrl(audience), `${normaliseUrl(audience)}/`];
}

export interface AuthenticatorOptions {
  clockToleranceSeconds: number;
  /** How long a principal looked up is trusted before it is read again (disable takes effect within it). */
  principalCacheMs?: number;
}

export class Authenticator {
  /** Verified tokens, until they expire: verification is once per token, not per request. */
  private readonly verified = new LRUCache<string, JWTPayload>({ max: 10_000, ttlAutopurge: false });
  private readonly principals: LRUCache<string, { row: PrincipalRow | null; access?: Access }>;
  private readonly externalKeys = new Map<string, ExternalIssuerKeys>();

  constructor(
    private readonly store: ControlStore,
    private readonly builtin: BuiltinIssuer,
    private readonly options: AuthenticatorOptions,
  ) {
    this.principals = new LRUCache({ max: 10_000, ttl: options.principalCacheMs ?? 30_000 });
  }

  /** Where a client gets a token for the organisation, and for what resource. */
  challenge(organization: Organization, place: RequestPlace): Challenge {
    const external = organization.external;
    return {
      authorizationUri: external
        ? `${external.issuer.replace(/\/v2\.0\/?$/, "").replace(/\/+$/, "")}/oauth2/authorize`
        : builtinAuthorizeEndpoint(place.base, organization),
      resourceId: organizationUrl(organization, place),
    };
  }

  async authenticate(
    header: string | string[] | undefined,
    organization: Organization,
    place: RequestPlace,
  ): Promise<RequestIdentity> {
    const challenge = this.challenge(organization, place);
    if (header === undefined || header === "") throw notAuthenticated(challenge);
    if (Array.isArray(header)) throw badToken(challenge, "send one Authorization header, not several.");
    if (header.length > MAX_TOKEN_LENGTH)
      throw badToken(challenge, `the Authorization header is longer than ${MAX_TOKEN_LENGTH} characters.`);
    if (!/^Bearer\b/i.test(header))
      throw badToken(challenge, "only Bearer tokens are accepted (Authorization: Bearer <access token>).");
    const token = BEARER.exec(header)?.[1];
    if (!token) throw badToken(challenge, "the Authorization header must be 'Bearer' followed by exactly one token.");

    const audience = organization.external?.audience ?? challenge.resourceId;
    const cacheKey = `${organization.id}\n${audience}\n${token}`;
    let claims = this.verified.get(cacheKey);
    if (!claims) {
      claims = await this.verify(token, organization, place, audience, challenge);
      const ttl = (claims.exp! + this.options.clockToleranceSeconds) * 1000 - Date.now();
      if (ttl > 0) this.verified.set(cacheKey, claims, { ttl });
    }
    const { row: principal, access } = await this.principalOf(claims, organization);
    return {
      organization,
      principalId: principal.id,
      principalName: principal.name,
      caller: {
        userId: principal.id,
        businessUnitId: organization.businessUnitId,
        organizationId: organization.id,
        ...(principal.providerId ? { providerId: principal.providerId } : {}),
      },
      access,
      claims,
    };
  }

  private async verify(
    token: string,
    organization: Organization,
    place: RequestPlace,
    audience: string,
    challenge: Challenge,
  ): Promise<JWTPayload> {
    const external = organization.external;
    const getKey: JWTVerifyGetKey = external
      ? this.keysOf(organization.id, external.issuer, external.jwksUrl)
      : this.builtin.getKey;
    const issuers = external ? [external.issuer] : [builtinIssuer(place.base, organization)];
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        issuer: issuers,
        audience: audiencesOf(audience),
        algorithms: external ? [...external.algorithms] : [BUILTIN_ALGORITHM],
        clockTolerance: this.options.clockToleranceSeconds,
        requiredClaims: ["exp"],
      }));
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw expiredToken(challenge);
      throw badToken(challenge, describeJoseError(error));
    }
    // Entra: the tenant of `tid` is the one in `iss`; the built-in issuer's tenant is the organisation.
    const tid = typeof payload.tid === "string" ? payload.tid : undefined;
    const issuerTenant = external ? GUID_IN_ISSUER.exec(payload.iss ?? "")?.[1] : organization.id;
    if (issuerTenant && tid?.toLowerCase() !== issuerTenant.toLowerCase()) {
      throw badToken(challenge, "the token's tid does not match its issuer's tenant.");
    }
    if (typeof payload.oid !== "string" && typeof payload.sub !== "string")
      throw badToken(challenge, "the token names no principal (oid or sub).");
    return payload;
  }

  private keysOf(organizationId: string, issuer: string, jwksUrl: string | undefined): JWTVerifyGetKey {
    const key = `${organizationId}\n${issuer}\n${jwksUrl ?? ""}`;
    let keys = this.externalKeys.get(key);
    if (!keys) this.externalKeys.set(key, (keys = new ExternalIssuerKeys({ issuer, jwksUrl })));
    return keys.getKey;
  }

  /** The principal and its privileges, looked up at most every principalCacheMs. */
  private async principalOf(claims: JWTPayload, organization: Organization): Promise<{ row: PrincipalRow; access: Access }> {
    const objectId = [claims.oid, claims.sub].find((v): v is string => typeof v === "string")!;
    const cacheKey = `${organization.id}\n${claims.iss}\n${objectId}`;
    let cached = this.principals.get(cacheKey);
    if (!cached) {
      // The built-in issuer's principals are GUIDs (a uuid column): anything else is no principal of it.
      const row = organization.external
        ? await this.store.principalByObjectId(organization.id, claims.iss!, objectId)
        : GUID.test(objectId)
          ? await this.store.principalById(organization.id, objectId)
          : null;
      this.principals.set(
        cacheKey,
        (cached = { row, access: row ? new Access(row.id, row.roles.filter(isRoleName)) : undefined }),
      );
    }
    const principal = cached.row;
    if (!principal || principal.disabled) {
      const app = [claims.appid, claims.azp].find((v): v is string => typeof v === "string");
      throw new ODataError(
        403,
        NOT_A_MEMBER,
        `The caller (oid ${objectId}${app ? `, application ${app}` : ""}) is not an enabled user of organization ${organization.name} (${organization.id}).`,
      );
    }
    return { row: principal, access: cached.access! };
  }

  /** Forget cached principals (after an administrator changes one). */
  forgetPrincipals(): void {
    this.principals.clear();
  }
}

/** jose's reason, without anything from the token itself. */
function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTClaimValidationFailed) return `${error.message} (claim ${error.claim}).`;
  if (error instanceof errors.JOSEAlgNotAllowed) return "its signing algorithm is not accepted.";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "its signature does not verify.";
  if (error instanceof errors.JWKSNoMatchingKey) return "it is not signed by a key of the organisation's issuer.";
  if (error instanceof errors.JWKSMultipleMatchingKeys) return "its key is ambiguous.";
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return "it is not a well-formed signed JWT.";
  if (error instanceof errors.JOSENotSupported) return "it uses an unsupported algorithm or key type.";
  if (error instanceof errors.JOSEError) return `${error.code}.`;
  return "it could not be verified.";
}
