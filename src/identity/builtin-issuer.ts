/**
 * The built-in OAuth 2.0 issuer, so self-hosting needs no identity provider: the
 * client-credentials grant in Entra's request and response shape, ES256 tokens signed by a
 * key made on first start and kept in the control database, and the public keys published
 * as a JWKS. Its tokens are checked by the same path as an external issuer's
 * (./token-verifier.ts).
 */
import { randomUUID } from "node:crypto";
import {
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  SignJWT,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
} from "jose";
import { ODataError } from "../odata/errors.js";
import { type Organization, builtinIssuer } from "./organizations.js";
import { verifySecret } from "./secrets.js";
import type { ControlStore, SigningKeyRow } from "./store/control-store.js";

export const BUILTIN_ALGORITHM = "ES256";

/** Entra's token errors (RFC 6749 §5.2 codes plus AADSTS-style descriptions). */
export class TokenRequestError extends Error {
  override name = "TokenRequestError";
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
  ) {
    super(description);
  }

  toBody() {
    return { error: this.error, error_description: this.message, timestamp: new Date().toISOString() };
  }
}

export interface TokenResponse {
  token_type: "Bearer";
  expires_in: number;
  ext_expires_in: number;
  access_token: string;
}

/** An issued token: the answer, and the claims it carries (for the audit log). */
export interface IssuedToken {
  response: TokenResponse;
  claims: JWTPayload;
}

type SigningKeyObject = Awaited<ReturnType<typeof importJWK>>;

interface ActiveKey {
  kid: string;
  privateKey: SigningKeyObject;
}

export class BuiltinIssuer {
  private signing?: ActiveKey;
  private published: JSONWebKeySet = { keys: [] };
  private resolver: JWTVerifyGetKey = createLocalJWKSet({ keys: [] });

  constructor(
    private readonly store: ControlStore,
    private readonly lifetimeSeconds: number,
  ) {}

  /** Loads the signing keys, making one on first start. */
  async start(): Promise<void> {
    let rows = await this.store.activeSigningKeys();
    if (rows.length === 0) {
      const { privateKey, publicKey } = await generateKeyPair(BUILTIN_ALGORITHM, { extractable: true });
      const kid = randomUUID();
      await this.store.addSigningKey({
        kid,
        algorithm: BUILTIN_ALGORITHM,
        privateJwk: await exportJWK(privateKey),
        publicJwk: { ...(await exportJWK(publicKey)), kid, alg: BUILTIN_ALGORITHM, use: "sig" },
      });
      rows = await this.store.activeSigningKeys();
    }
    await this.useKeys(rows);
  }

  private async useKeys(rows: SigningKeyRow[]): Promise<void> {
    const newest = rows[0]!;
    this.signing = {
      kid: newest.kid,
      privateKey: await importJWK(newest.privateJwk as JWK, newest.algorithm),
    };
    this.published = { keys: rows.map((row) => row.publicJwk as JWK) };
    this.resolver = createLocalJWKSet(this.published);
  }

  /** The public keys (`/{tenant}/discovery/v2.0/keys`). */
  jwks(): JSONWebKeySet {
    return this.published;
  }

  /** jose's key resolver over our own public keys. */
  get getKey(): JWTVerifyGetKey {
    return this.resolver;
  }

  /**
   * The client-credentials grant. `resource`: the organisation URL this request is for
   * (the scope must be `<it>/.default`); `base`: the server's base URL (for `iss`).
   */
  async issue(form: Record<string, unknown>, organization: Organization, resource: string, base: string): Promise<IssuedToken> {
    const field = (name: string) => (typeof form[name] === "string" ? form[name] : undefined);
    const grantType = field("grant_type");
    if (grantType !== "client_credentials") {
      throw new TokenRequestError(
        400,
        "unsupported_grant_type",
        `grant_type must be client_credentials (got ${JSON.stringify(grantType ?? null)}).`,
      );
    }
    const clientId = field("client_id");
    const secret = field("client_secret");
    if (!clientId || !secret) throw new TokenRequestError(400, "invalid_request", "client_id and client_secret are required.");
    const scope = field("scope");
    const wanted = `${resource}/.default`;
    if (
      !scope ||
      scope
        .split(" ")
        .filter(Boolean)
        .some((s) => s.replace(/\/+\.default$/, "/.default") !== wanted)
    ) {
      throw new TokenRequestError(
        400,
        "invalid_scope",
        `The scope must be ${wanted} (the organisation's URL followed by /.default).`,
      );
    }
    const principal = await this.store.principalByClientId(clientId);
    // One answer for an unknown client, a wrong secret and a disabled one: nothing to guess from.
    const refused = new TokenRequestError(401, "invalid_client", "The client id or secret is not valid for this tenant.");
    if (!principal || principal.organizationId !== organization.id || principal.disabled || principal.kind !== "application") {
      throw refused;
    }
    let matches = false;
    for (const stored of principal.secrets) if (await verifySecret(secret, stored.hash)) matches = true;
    if (!matches) throw refused;

    if (!this.signing) throw new ODataError(503, "0x80040216", "The token issuer is starting.");
    const now = Math.floor(Date.now() / 1000);
    const claims: JWTPayload = {
      aud: resource,
      azp: clientId,
      azpacr: "1",
      appid: clientId,
      idtyp: "app",
      oid: principal.id,
      tid: organization.id,
      roles: principal.roles,
      ver: "2.0",
      iss: builtinIssuer(base, organization),
      sub: principal.id,
      iat: now,
      nbf: now,
      exp: now + this.lifetimeSeconds,
      jti: randomUUID(),
    };
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: BUILTIN_ALGORITHM, kid: this.signing.kid, typ: "JWT" })
      .sign(this.signing.privateKey);
    const response: TokenResponse = {
      token_type: "Bearer",
      expires_in: this.lifetimeSeconds,
      ext_expires_in: this.lifetimeSeconds,
      access_token: token,
    };
    return { response, claims };
  }
}
