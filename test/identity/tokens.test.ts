/**
 * Bearer tokens (issue 11), through the HTTP API:
 * 1. hostile tokens and Authorization headers at the built-in issuer's default organisation:
 *    each one answered 401 (never 500) with its Dataverse code and a WWW-Authenticate
 *    challenge, a valid token of a missing or disabled principal 403, and what stays open
 *    without a token;
 * 2. the built-in token endpoint: its refusals, its response and claims, the secret kept only
 *    as a scrypt hash, the per-IP rate limit;
 * 3. external OpenID Connect issuers served by the test on loopback: Entra v1 and v2 shapes,
 *    key rotation, an issuer outage, an issuer that cannot be reached, issuers and algorithms
 *    pinned;
 * 4. tokens of one organisation refused at another.
 *
 * Each refusal differs from a token that is accepted by one thing only (the accepted one is
 * tested too), so each test fails if the rule it names were removed. The codes and the
 * challenge are written out here (the spec), not read from src/identity/auth-errors.ts.
 */
import { type JsonWebKey, KeyObject, createHmac, createPublicKey, randomUUID, sign } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import {
  type CryptoKey,
  type JWK,
  type JWTPayload,
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  generateKeyPair,
  importJWK,
  jwtVerify,
} from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { verifySecret } from "../../src/identity/secrets.js";
import { createPrincipal } from "../../src/identity/principals.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { INJECT_BASE, type TestPrincipal, bearer, testDataDir, testPrincipal, tokenOf } from "../helpers/identity.js";
import {
  type IssuerKey,
  type TestIssuer,
  closedLoopbackOrigin,
  signWith,
  startSilentListener,
  startTestIssuer,
} from "../helpers/test-issuer.js";

const NOT_AUTHENTICATED = "0x80044302";
const EXPIRED = "0x8005F101";
const BAD_TOKEN = "0x8004A102";
const NOT_A_MEMBER = "0x80072560";

const WHO_AM_I = "/api/data/v9.2/WhoAmI()";
/** AUTH_CLOCK_TOLERANCE_SECONDS's default. */
const TOLERANCE = 60;

interface Challenge {
  authorizationUri: string;
  resourceId: string;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const errorOf = (response: LightMyRequestResponse) => response.json<{ error: { code: string; message: string } }>().error;

const whoAmI = (t: TestApp, headers: Record<string, string | string[]> = {}, prefix = "") =>
  t.app.inject({ method: "GET", url: `${prefix}${WHO_AM_I}`, headers });

/** A 401 with `code`, its challenge, and (when a credential was sent) error="invalid_token". */
function expectRefused(response: LightMyRequestResponse, code: string, challenge: Challenge, invalidToken = true) {
  expect(response.statusCode, response.body).toBe(401);
  expect(errorOf(response).code).toBe(code);
  expect(response.headers["www-authenticate"]).toBe(
    `Bearer authorization_uri=${challenge.authorizationUri}, resource_id=${challenge.resourceId}${invalidToken ? ', error="invalid_token"' : ""}`,
  );
}

function expectNotAMember(response: LightMyRequestResponse) {
  expect(response.statusCode, response.body).toBe(403);
  expect(errorOf(response).code).toBe(NOT_A_MEMBER);
  expect(response.headers["www-authenticate"]).toBeUndefined();
}

function expectWhoAmI(response: LightMyRequestResponse, userId: string, organizationId: string) {
  expect(response.statusCode, response.body).toBe(200);
  expect(response.json()).toMatchObject({ UserId: userId, OrganizationId: organizationId });
}

/** The built-in issuer's signing key, read from the control store (a test may sign what only the server should). */
async function serverKey(t: TestApp): Promise<IssuerKey> {
  const rows = await t.app.identity.store.activeSigningKeys();
  expect(rows).toHaveLength(1);
  const row = rows[0]!;
  return {
    kid: row.kid,
    alg: row.algorithm,
    privateKey: (await importJWK(row.privateJwk as JWK, row.algorithm)) as CryptoKey,
    publicJwk: row.publicJwk as JWK,
  };
}

const tokenRequest = (t: TestApp, tenant: string, form: Record<string, string>, remoteAddress?: string) =>
  t.app.inject({
    method: "POST",
    url: `/${tenant}/oauth2/v2.0/token`,
    headers: { "content-type": "application/x-www-form-urlencoded" },
    payload: new URLSearchParams(form).toString(),
    ...(remoteAddress ? { remoteAddress } : {}),
  });

const clientCredentials = (principal: TestPrincipal, overrides: Record<string, string> = {}) => ({
  grant_type: "client_credentials",
  client_id: principal.clientId,
  client_secret: principal.clientSecret,
  scope: `${INJECT_BASE}/.default`,
  ...overrides,
});

describe("bearer tokens at the built-in issuer's default organisation", () => {
  const t = useTestApp({
    AUTH_MODE: "builtin",
    DATA_DIR: testDataDir(),
    TOKEN_REQUESTS_PER_MINUTE: "100000",
    CORS_ORIGINS: "http://localhost:5173",
  });
  let admin: TestPrincipal;
  let key: IssuerKey;
  let challenge: Challenge;
  /** A loopback server a hostile header may point at (jku, x5u): it must never be asked. */
  let bait: TestIssuer;

  beforeAll(async () => {
    admin = await testPrincipal(t.app, ["Administrator"]);
    key = await serverKey(t);
    challenge = { authorizationUri: `${INJECT_BASE}/${admin.tenant}/oauth2/authorize`, resourceId: INJECT_BASE };
    bait = await startTestIssuer();
  });
  afterAll(async () => {
    await bait?.close();
  });

  /** The claims of a token the built-in issuer would issue to `principal` for the default organisation. */
  const claimsOf = (principal: TestPrincipal): JWTPayload => ({
    iss: `${INJECT_BASE}/${principal.tenant}/v2.0`,
    aud: INJECT_BASE,
    tid: principal.tenant,
    oid: principal.id,
    sub: principal.id,
    azp: principal.clientId,
    appid: principal.clientId,
    roles: ["Administrator"],
    ver: "2.0",
  });
  /** Signed with the server's own key: `overrides` is the one thing wrong. */
  const forged = (overrides: JWTPayload = {}, header: Record<string, unknown> = {}) =>
    signWith(key.privateKey, { alg: "ES256", kid: key.kid, typ: "JWT", ...header }, { ...claimsOf(admin), ...overrides });

  it("accepts a token signed by its key with every claim right (what each refusal below differs from by one thing)", async () => {
    expectWhoAmI(await whoAmI(t, bearer(await forged())), admin.id, admin.tenant);
    // and the token endpoint's own
    expectWhoAmI(await whoAmI(t, bearer(await tokenOf(t.app, admin))), admin.id, admin.tenant);
  });

  it("answers a request without Authorization 401 0x80044302, naming where to get a token and for what, without error=", async () => {
    for (const headers of [{}, { authorization: "" }] as Array<Record<string, string>>) {
      const response = await whoAmI(t, headers);
      expectRefused(response, NOT_AUTHENTICATED, challenge, false);
      expect(response.headers["www-authenticate"]).toBe(
        `Bearer authorization_uri=http://localhost:80/${admin.tenant}/oauth2/authorize, resource_id=http://localhost:80`,
      );
    }
  });

  const hostile: Array<{ name: string; authorization: () => Promise<string> | string; code: string }> = [
    {
      name: "alg none (unsigned)",
      authorization: () => `Bearer ${b64({ alg: "none", typ: "JWT" })}.${b64(claimsWithTimes(claimsOf(admin)))}.`,
      code: BAD_TOKEN,
    },
    {
      name: "alg None with the kid of the server's key and a signature part",
      authorization: () => `Bearer ${b64({ alg: "None", kid: key.kid })}.${b64(claimsWithTimes(claimsOf(admin)))}.${b64("x")}`,
      code: BAD_TOKEN,
    },
    ...(["jwk-json", "ec-point", "spki-pem", "spki-der"] as const).map((material) => ({
      name: `HS256 keyed with the issuer's published public key (${material})`,
      authorization: async () =>
        `Bearer ${await hmacWithPublishedKey(t, admin.tenant, material, claimsWithTimes(claimsOf(admin)))}`,
      code: BAD_TOKEN,
    })),
    {
      name: "an unknown kid (signed by the server's key)",
      authorization: async () => `Bearer ${await forged({}, { kid: randomUUID() })}`,
      code: BAD_TOKEN,
    },
    {
      name: "kid ../../etc/passwd",
      authorization: async () => `Bearer ${await forged({}, { kid: "../../etc/passwd" })}`,
      code: BAD_TOKEN,
    },
    { name: "kid ' OR 1=1 --", authorization: async () => `Bearer ${await forged({}, { kid: "' OR 1=1 --" })}`, code: BAD_TOKEN },
    {
      name: "a key not trusted (own ES256 key, the server's kid, same claims)",
      authorization: async () => `Bearer ${await signedByOwnKey({ kid: key.kid }, claimsOf(admin))}`,
      code: BAD_TOKEN,
    },
    {
      name: "a key not trusted, without kid, its public key embedded (jwk) and offered by URL (jku, x5u)",
      authorization: async () => {
        const own = await generateKeyPair("ES256", { extractable: true });
        const jwk = await (await import("jose")).exportJWK(own.publicKey);
        return `Bearer ${await signWith(own.privateKey, { alg: "ES256", jwk, jku: `${bait.origin}/keys`, x5u: `${bait.origin}/x5u` }, claimsOf(admin))}`;
      },
      code: BAD_TOKEN,
    },
    {
      name: `expired beyond the ${TOLERANCE} s tolerance`,
      authorization: async () =>
        `Bearer ${await forged({ iat: nowSeconds() - 3600, nbf: nowSeconds() - 3600, exp: nowSeconds() - TOLERANCE - 30 })}`,
      code: EXPIRED,
    },
    {
      name: "nbf in the future beyond the tolerance",
      authorization: async () => `Bearer ${await forged({ nbf: nowSeconds() + TOLERANCE + 60, exp: nowSeconds() + 3600 })}`,
      code: BAD_TOKEN,
    },
    { name: "no exp", authorization: async () => `Bearer ${await forged({ exp: undefined })}`, code: BAD_TOKEN },
    {
      name: "a wrong iss (another tenant of this server)",
      authorization: async () => `Bearer ${await forged({ iss: `${INJECT_BASE}/${randomUUID()}/v2.0` })}`,
      code: BAD_TOKEN,
    },
    {
      name: "a wrong iss (Entra's, for the same tenant)",
      authorization: async () => `Bearer ${await forged({ iss: `https://login.microsoftonline.com/${admin.tenant}/v2.0` })}`,
      code: BAD_TOKEN,
    },
    {
      name: "a tid not the organisation's",
      authorization: async () => `Bearer ${await forged({ tid: randomUUID() })}`,
      code: BAD_TOKEN,
    },
    { name: "no tid", authorization: async () => `Bearer ${await forged({ tid: undefined })}`, code: BAD_TOKEN },
    {
      name: "a wrong aud (another organisation's URL)",
      authorization: async () => `Bearer ${await forged({ aud: `${INJECT_BASE}/org/other` })}`,
      code: BAD_TOKEN,
    },
    { name: "no aud", authorization: async () => `Bearer ${await forged({ aud: undefined })}`, code: BAD_TOKEN },
    {
      name: "neither oid nor sub",
      authorization: async () => `Bearer ${await forged({ oid: undefined, sub: undefined })}`,
      code: BAD_TOKEN,
    },
    {
      name: "the Basic scheme",
      authorization: () => `Basic ${Buffer.from(`${admin.clientId}:${admin.clientSecret}`).toString("base64")}`,
      code: BAD_TOKEN,
    },
    { name: "the Negotiate scheme", authorization: () => "Negotiate YIIBhwYGKwYBBQUCoIIBezCCAXeg", code: BAD_TOKEN },
    { name: "a bare Bearer", authorization: () => "Bearer", code: BAD_TOKEN },
    { name: "Bearer a b", authorization: () => "Bearer a b", code: BAD_TOKEN },
    {
      name: "two valid tokens in one header",
      authorization: async () => `Bearer ${await forged()} ${await forged()}`,
      code: BAD_TOKEN,
    },
    {
      name: "two valid tokens, comma-separated",
      authorization: async () => `Bearer ${await forged()}, Bearer ${await forged()}`,
      code: BAD_TOKEN,
    },
    {
      name: "an oversized token (> 8192 characters), validly signed",
      authorization: async () => `Bearer ${await forged({ padding: "x".repeat(8200) })}`,
      code: BAD_TOKEN,
    },
    { name: "a garbage header near the header limit", authorization: () => `Bearer ${"a".repeat(15_000)}`, code: BAD_TOKEN },
    { name: "garbage: one segment", authorization: () => "Bearer abc", code: BAD_TOKEN },
    { name: "garbage: three segments", authorization: () => "Bearer a.b.c", code: BAD_TOKEN },
    { name: "garbage: empty JSON header and payload", authorization: () => `Bearer ${b64({})}.${b64({})}.`, code: BAD_TOKEN },
    {
      name: "garbage: a header that is a JSON array",
      authorization: () => `Bearer ${b64([1])}.${b64({})}.${b64("sig")}`,
      code: BAD_TOKEN,
    },
    {
      name: "a kid that is an object (signed by an own key)",
      authorization: async () => `Bearer ${await signedByOwnKey({ kid: { $ne: null } }, claimsOf(admin))}`,
      code: BAD_TOKEN,
    },
    {
      name: "a critical header parameter it does not know (signed by the server's key)",
      authorization: () =>
        `Bearer ${rawSigned(key, { alg: "ES256", kid: key.kid, crit: ["x-unknown"], "x-unknown": true }, claimsWithTimes(claimsOf(admin)))}`,
      code: BAD_TOKEN,
    },
  ];

  it.each(hostile)("refuses $name: 401 with its code and a challenge, never 500", async ({ authorization, code }) => {
    const header = await authorization();
    const response = await whoAmI(t, { authorization: header });
    expectRefused(response, code, challenge);
    // The reason says what was wrong, never the token (nor what it carried).
    const message = errorOf(response).message;
    const sent = header.replace(/^\S+ */, "").slice(0, 40);
    if (sent.length >= 8) expect(message).not.toContain(sent);
    expect(message).not.toMatch(/etc\/passwd|OR 1=1/);
  });

  it("refuses an Authorization header past the header limit with 431 in the Dataverse shape, as Node's parser would", async () => {
    const response = await whoAmI(t, { authorization: `Bearer ${"a".repeat(100_000)}` });
    expect(response.statusCode).toBe(431);
    expect(Object.keys(errorOf(response)).sort()).toEqual(["code", "message"]);
  });

  it("accepts a token expired within the tolerance, and one whose nbf is within it", async () => {
    const now = nowSeconds();
    expectWhoAmI(
      await whoAmI(t, bearer(await forged({ iat: now - 3600, nbf: now - 3600, exp: now - TOLERANCE + 20 }))),
      admin.id,
      admin.tenant,
    );
    expectWhoAmI(await whoAmI(t, bearer(await forged({ nbf: now + TOLERANCE - 20 }))), admin.id, admin.tenant);
  });

  it("never asks a URL a token names for keys (jku, x5u)", () => {
    // The hostile tokens above offered bait's URLs.
    expect(bait.requests).toEqual([]);
  });

  it("accepts the scheme in any case, as Entra's clients send it", async () => {
    const token = await forged();
    expectWhoAmI(await whoAmI(t, { authorization: `bearer ${token}` }), admin.id, admin.tenant);
    expectWhoAmI(await whoAmI(t, { authorization: `BEARER ${token}` }), admin.id, admin.tenant);
  });

  // Node keeps only the first of several Authorization headers in `headers.authorization`.
  it("refuses two Authorization headers, even with valid tokens in both", async () => {
    const first = await forged();
    const second = await forged();
    expectRefused(await whoAmI(t, { authorization: [`Bearer ${first}`, `Bearer ${second}`] }), BAD_TOKEN, challenge);
  });

  it("refuses two Authorization headers when either is not a valid token (never 500)", async () => {
    const valid = await forged();
    const response = await whoAmI(t, { authorization: ["Bearer garbage.garbage.garbage", `Bearer ${valid}`] });
    expectRefused(response, BAD_TOKEN, challenge);
  });

  it("answers a valid token of a principal that does not exist 403 0x80072560", async () => {
    const missing = randomUUID();
    const response = await whoAmI(t, bearer(await forged({ oid: missing, sub: missing })));
    expectNotAMember(response);
    expect(errorOf(response).message).toContain(missing);
  });

  it("answers a valid token whose oid is not a GUID 403, not 500 (the built-in issuer's ids are GUIDs)", async () => {
    for (const oid of ["' OR 1=1 --", "../../etc/passwd", "x".repeat(300)]) {
      expectNotAMember(await whoAmI(t, bearer(await forged({ oid, sub: oid }))));
    }
  });

  it("answers a disabled principal's token 403 at once (its cached lookup forgotten), and accepts it again once enabled", async () => {
    const adminToken = await tokenOf(t.app, admin);
    const user = await testPrincipal(t.app, ["Analyst"]);
    const token = await tokenOf(t.app, user);
    expectWhoAmI(await whoAmI(t, bearer(token)), user.id, user.tenant);

    const disable = await t.app.inject({
      method: "POST",
      url: `/api/admin/principals/${user.id}/disable`,
      headers: bearer(adminToken),
    });
    expect(disable.statusCode, disable.body).toBe(204);
    expectNotAMember(await whoAmI(t, bearer(token)));
    // Nor does it get a new token.
    const refused = await tokenRequest(t, user.tenant, clientCredentials(user));
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ error: "invalid_client" });

    const enable = await t.app.inject({
      method: "POST",
      url: `/api/admin/principals/${user.id}/enable`,
      headers: bearer(adminToken),
    });
    expect(enable.statusCode).toBe(204);
    expectWhoAmI(await whoAmI(t, bearer(token)), user.id, user.tenant);
  });

  it("checks the audience against the URL the request came through: a token for /org/default is not one for the bare host", async () => {
    const prefixed = await tokenOf(t.app, admin, `${INJECT_BASE}/org/default`);
    expect(decodeJwt(prefixed).aud).toBe(`${INJECT_BASE}/org/default`);
    expectWhoAmI(await whoAmI(t, bearer(prefixed), "/org/default"), admin.id, admin.tenant);
    expectRefused(await whoAmI(t, bearer(prefixed)), BAD_TOKEN, challenge);
    // and the other way round, with the prefixed URL's challenge
    const response = await whoAmI(t, bearer(await tokenOf(t.app, admin)), "/org/default");
    expectRefused(response, BAD_TOKEN, {
      authorizationUri: challenge.authorizationUri,
      resourceId: `${INJECT_BASE}/org/default`,
    });
  });

  it("leaves the signing keys as they were after the hostile tokens", async () => {
    const rows = await t.app.identity.store.activeSigningKeys();
    expect(rows.map((row) => row.kid)).toEqual([key.kid]);
  });

  it("answers /healthz, /readyz, the token endpoint, discovery, the JWKS and the authorize endpoint without a token", async () => {
    for (const url of ["/healthz", "/readyz"]) expect((await t.app.inject({ url })).statusCode, url).toBe(200);
    for (const tenant of [admin.tenant, "default"]) {
      const discovery = await t.app.inject({ url: `/${tenant}/v2.0/.well-known/openid-configuration` });
      expect(discovery.statusCode).toBe(200);
      expect(discovery.json()).toMatchObject({
        issuer: `${INJECT_BASE}/${admin.tenant}/v2.0`,
        token_endpoint: `${INJECT_BASE}/${admin.tenant}/oauth2/v2.0/token`,
        jwks_uri: `${INJECT_BASE}/${admin.tenant}/discovery/v2.0/keys`,
      });
      const keys = await t.app.inject({ url: `/${tenant}/discovery/v2.0/keys` });
      expect(keys.statusCode).toBe(200);
      // Public keys only.
      const published = keys.json<{ keys: JWK[] }>().keys;
      expect(published.map((k) => k.kid)).toEqual([key.kid]);
      for (const jwk of published) expect(jwk).not.toHaveProperty("d");
    }
    const token = await tokenRequest(t, admin.tenant, clientCredentials(admin));
    expect(token.statusCode).toBe(200);
    const authorize = await t.app.inject({ url: `/${admin.tenant}/oauth2/authorize` });
    expect(authorize.statusCode).toBe(400);
    expect(authorize.json()).toMatchObject({ error: "unsupported_response_type" });
  });

  it("does not refuse a CORS preflight or an OPTIONS request under /api/ for want of a token", async () => {
    const preflight = await t.app.inject({
      method: "OPTIONS",
      url: WHO_AM_I,
      headers: {
        origin: "http://localhost:5173",
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization",
      },
    });
    expect(preflight.statusCode, preflight.body).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe("http://localhost:5173");
    // Not a preflight (no Origin): whatever CORS answers, it is not a 401 challenge.
    const options = await t.app.inject({ method: "OPTIONS", url: "/api/data/v9.2/msdyn_ciproviders" });
    expect(options.statusCode).not.toBe(401);
    expect(options.headers["www-authenticate"]).toBeUndefined();
  });

  // The router matches the percent-decoded path: `/%61pi/…` is an /api/ route too.
  it("checks the token on a percent-encoded /api/ path too", async () => {
    for (const url of [
      "/%61pi/data/v9.2/$metadata",
      "/%61pi/data/v9.2/",
      "/%61pi/data/v9.2/WhoAmI()",
      "/ap%69/data/v9.2/msdyn_ciproviders",
    ]) {
      const response = await t.app.inject({ url });
      expect(response.statusCode, url).toBe(401);
    }
  });

  describe("the token endpoint", () => {
    it("issues a Bearer token in Entra's shape, with the organisation's claims, verifiable with the published keys", async () => {
      const before = nowSeconds();
      const response = await tokenRequest(t, admin.tenant, clientCredentials(admin));
      expect(response.statusCode, response.body).toBe(200);
      expect(response.headers["cache-control"]).toBe("no-store");
      const body = response.json<{ token_type: string; expires_in: number; ext_expires_in: number; access_token: string }>();
      expect(body).toEqual({ token_type: "Bearer", expires_in: 3600, ext_expires_in: 3600, access_token: expect.any(String) });

      expect(decodeProtectedHeader(body.access_token)).toMatchObject({ alg: "ES256", kid: key.kid, typ: "JWT" });
      const claims = decodeJwt(body.access_token);
      expect(claims).toMatchObject({
        iss: `http://localhost:80/${admin.tenant}/v2.0`,
        aud: "http://localhost:80",
        tid: admin.tenant,
        oid: admin.id,
        sub: admin.id,
        azp: admin.clientId,
        appid: admin.clientId,
        roles: ["Administrator"],
      });
      expect(claims.exp! - before).toBeGreaterThanOrEqual(3600 - 2);
      expect(claims.exp! - nowSeconds()).toBeLessThanOrEqual(3600 + 2);

      // A client can check it with what discovery names.
      const discovery = (await t.app.inject({ url: `/${admin.tenant}/v2.0/.well-known/openid-configuration` })).json<{
        issuer: string;
        jwks_uri: string;
      }>();
      const jwks = (await t.app.inject({ url: new URL(discovery.jwks_uri).pathname })).json<{ keys: JWK[] }>();
      const { payload } = await jwtVerify(body.access_token, createLocalJWKSet(jwks), {
        issuer: discovery.issuer,
        audience: INJECT_BASE,
        algorithms: ["ES256"],
      });
      expect(payload.oid).toBe(admin.id);
    });

    it("answers a wrong secret, an unknown client and a disabled principal alike: 401 invalid_client, one message", async () => {
      const adminToken = await tokenOf(t.app, admin);
      const disabled = await testPrincipal(t.app, ["Analyst"]);
      const off = await t.app.inject({
        method: "POST",
        url: `/api/admin/principals/${disabled.id}/disable`,
        headers: bearer(adminToken),
      });
      expect(off.statusCode).toBe(204);
      const refusals = [
        await tokenRequest(t, admin.tenant, clientCredentials(admin, { client_secret: `${admin.clientSecret.slice(0, -1)}x` })),
        await tokenRequest(t, admin.tenant, clientCredentials(admin, { client_id: randomUUID() })),
        await tokenRequest(t, admin.tenant, clientCredentials(disabled)),
      ];
      const bodies = refusals.map((response) => {
        expect(response.statusCode, response.body).toBe(401);
        return response.json<{ error: string; error_description: string }>();
      });
      for (const body of bodies) expect(body.error).toBe("invalid_client");
      expect(new Set(bodies.map((body) => body.error_description)).size).toBe(1);
      for (const response of refusals) expect(response.body).not.toContain(admin.clientSecret.slice(0, 10));
    });

    it("refuses a scope other than the organisation URL's /.default: 400 invalid_scope", async () => {
      for (const scope of [
        "https://graph.microsoft.com/.default",
        `${INJECT_BASE}/org/other/.default`,
        `${INJECT_BASE}/.default https://graph.microsoft.com/.default`,
        `${INJECT_BASE}/user_impersonation`,
      ]) {
        const response = await tokenRequest(t, admin.tenant, clientCredentials(admin, { scope }));
        expect(response.statusCode, scope).toBe(400);
        expect(response.json()).toMatchObject({ error: "invalid_scope" });
      }
    });

    it("refuses another grant type: 400 unsupported_grant_type", async () => {
      for (const grant_type of ["password", "authorization_code", ""]) {
        const response = await tokenRequest(t, admin.tenant, clientCredentials(admin, { grant_type }));
        expect(response.statusCode, grant_type).toBe(400);
        expect(response.json()).toMatchObject({ error: "unsupported_grant_type" });
      }
    });

    it("keeps the secret only as a salted scrypt hash: its text is nowhere in the control schema", async () => {
      const principal = await testPrincipal(t.app, ["Analyst"]);
      const { rows } = await t.db.pool.query<{ hash: string; hint: string }>(
        "SELECT hash, hint FROM cif_control.client_secret WHERE principal_id = $1 AND revoked_on IS NULL",
        [principal.id],
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]!.hash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
      expect(rows[0]!.hint).toBe(principal.clientSecret.slice(0, 3));
      expect(await verifySecret(principal.clientSecret, rows[0]!.hash)).toBe(true);
      expect(await verifySecret(`${principal.clientSecret}x`, rows[0]!.hash)).toBe(false);

      // Every row of every control table, as text: neither the secret nor its longer parts.
      const { rows: tables } = await t.db.pool.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'cif_control'",
      );
      expect(tables.map((table) => table.table_name)).toContain("client_secret");
      for (const { table_name } of tables) {
        for (const needle of [principal.clientSecret, principal.clientSecret.slice(0, 12), principal.clientSecret.slice(-12)]) {
          const { rows: found } = await t.db.pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM cif_control."${table_name}" AS row WHERE strpos(row::text, $1) > 0`,
            [needle],
          );
          expect(found[0]!.n, `${table_name} contains the secret`).toBe(0);
        }
      }
      // and it still works
      expect((await tokenRequest(t, principal.tenant, clientCredentials(principal))).statusCode).toBe(200);
    });
  });
});

describe("the token endpoint's per-IP rate limit", () => {
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir(), TOKEN_REQUESTS_PER_MINUTE: "3" });
  let admin: TestPrincipal;
  beforeAll(async () => {
    admin = await testPrincipal(t.app, ["Administrator"]);
  });

  it("checks no secret beyond TOKEN_REQUESTS_PER_MINUTE requests from one address, and counts each address apart", async () => {
    for (let i = 0; i < 3; i++) {
      const guess = await tokenRequest(t, admin.tenant, clientCredentials(admin, { client_secret: `guess-${i}` }), "127.0.0.7");
      expect(guess.statusCode).toBe(401);
    }
    // The right secret, once the limit is reached: no token.
    const limited = await tokenRequest(t, admin.tenant, clientCredentials(admin), "127.0.0.7");
    expect(limited.statusCode).not.toBe(200);
    expect(limited.body).not.toContain("access_token");
    // Another address is not limited by this one's requests.
    expect((await tokenRequest(t, admin.tenant, clientCredentials(admin), "127.0.0.8")).statusCode).toBe(200);
  });

  it("answers the request beyond the limit 429 with Retry-After", async () => {
    for (let i = 0; i < 3; i++)
      await tokenRequest(t, admin.tenant, clientCredentials(admin, { client_secret: "wrong" }), "127.0.0.9");
    const limited = await tokenRequest(t, admin.tenant, clientCredentials(admin), "127.0.0.9");
    expect(limited.statusCode, limited.body).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(limited.json()).toMatchObject({
      error: "temporarily_unavailable",
      error_description: expect.stringContaining("Retry after"),
    });
  });
});

describe("external OpenID Connect issuers, and tokens of one organisation at another", () => {
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir(), TOKEN_REQUESTS_PER_MINUTE: "100000" });

  /** Entra-style tenant id, in the issuer's path. */
  const TID = randomUUID();
  const CLIENT_APP = randomUUID();
  const V1_AUDIENCE = `api://${randomUUID()}`;
  /** An Entra v2 API's audience: its client id, a bare GUID. */
  const GUID_AUDIENCE = randomUUID();
  const LIAR_TID = randomUUID();

  let idp: TestIssuer;
  let rotating: TestIssuer;
  let evil: TestIssuer;
  let rsa: IssuerKey;
  let ec: IssuerKey;
  let evilKey: IssuerKey;
  let v1Issuer: string;
  let v2Issuer: string;
  let liarIssuer: string;
  let admin: TestPrincipal;
  let adminToken: string;
  const orgs: Record<string, { id: string; name: string }> = {};
  const users: Record<string, { id: string; objectId: string }> = {};

  const createOrganization = async (body: Record<string, unknown>) => {
    const response = await t.app.inject({
      method: "POST",
      url: "/api/admin/organizations",
      headers: bearer(adminToken),
      payload: body,
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<{
      organization: { id: string; name: string };
      administrator?: { id: string; clientId: string };
      clientSecret?: string;
    }>();
  };
  const externalUser = async (org: string, issuer: string) => {
    const objectId = randomUUID();
    const { principal } = await createPrincipal(t.app.identity.store, orgs[org]!.id, {
      name: `${org} user`,
      roles: ["Administrator"],
      issuer,
      objectId,
    });
    return { id: principal.id, objectId };
  };

  let second: TestPrincipal;
  const silentListeners: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    [idp, rotating, evil] = await Promise.all([startTestIssuer(), startTestIssuer(), startTestIssuer()]);
    v2Issuer = idp.addIssuer(`${idp.origin}/${TID}/v2.0`);
    v1Issuer = idp.addIssuer(`${idp.origin}/${TID}/`);
    // Its discovery document names another issuer (the configured one's neighbour).
    liarIssuer = idp.addIssuer(`${idp.origin}/${LIAR_TID}/v2.0`, v2Issuer);
    rotating.addIssuer(`${rotating.origin}/${TID}/v2.0`);
    evil.addIssuer(`${evil.origin}/${TID}/v2.0`);
    rsa = await idp.addKey("RS256");
    ec = await idp.addKey("ES256");
    evilKey = await evil.addKey("RS256");

    admin = await testPrincipal(t.app, ["Administrator"]);
    adminToken = await tokenOf(t.app, admin);
    const silent = await startSilentListener();
    silentListeners.push(silent);
    const made = await Promise.all([
      createOrganization({ name: "ext", issuer: v2Issuer }),
      createOrganization({ name: "ext-v1", issuer: v1Issuer, audience: V1_AUDIENCE }),
      createOrganization({
        name: "ext-es",
        issuer: v2Issuer,
        jwksUrl: `${idp.origin}/keys`,
        algorithms: ["ES256"],
        audience: GUID_AUDIENCE,
      }),
      createOrganization({ name: "rot", issuer: `${rotating.origin}/${TID}/v2.0` }),
      createOrganization({ name: "down", issuer: `${await closedLoopbackOrigin()}/${TID}/v2.0` }),
      createOrganization({ name: "mute", issuer: `${silent.origin}/${TID}/v2.0` }),
      createOrganization({ name: "liar", issuer: liarIssuer }),
      createOrganization({ name: "second" }),
    ]);
    for (const { organization } of made) orgs[organization.name] = organization;
    const secondOrg = made.at(-1)!;
    expect(secondOrg.clientSecret).toEqual(expect.any(String));
    second = {
      id: secondOrg.administrator!.id,
      clientId: secondOrg.administrator!.clientId,
      clientSecret: secondOrg.clientSecret!,
      tenant: secondOrg.organization.id,
    };

    users.ext = await externalUser("ext", v2Issuer);
    users["ext-v1"] = await externalUser("ext-v1", v1Issuer);
    users["ext-es"] = await externalUser("ext-es", v2Issuer);
    users.rot = await externalUser("rot", `${rotating.origin}/${TID}/v2.0`);
    users.liar = await externalUser("liar", liarIssuer);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([idp?.close(), rotating?.close(), evil?.close(), ...silentListeners.map((s) => s.close())]);
  });

  const at = (org: string) => `/org/${org}`;
  const orgUrl = (org: string) => `${INJECT_BASE}/org/${org}`;
  const externalChallenge = (org: string, origin = idp.origin): Challenge => ({
    authorizationUri: `${origin}/${TID}/oauth2/authorize`,
    resourceId: orgUrl(org),
  });
  /** Entra v2's shape: azp, iss `<authority>/<tid>/v2.0`. */
  const v2 = (org: string, overrides: JWTPayload = {}): JWTPayload => ({
    iss: v2Issuer,
    aud: orgUrl(org),
    tid: TID,
    oid: users[org]!.objectId,
    sub: randomUUID(),
    azp: CLIENT_APP,
    azpacr: "1",
    idtyp: "app",
    ver: "2.0",
    ...overrides,
  });
  /** Entra v1's shape: appid, iss `<authority>/<tid>/`. */
  const v1 = (overrides: JWTPayload = {}): JWTPayload => ({
    iss: v1Issuer,
    aud: V1_AUDIENCE,
    tid: TID,
    oid: users["ext-v1"]!.objectId,
    sub: randomUUID(),
    appid: CLIENT_APP,
    appidacr: "1",
    idtyp: "app",
    ver: "1.0",
    ...overrides,
  });

  it("challenges a request without a token with the external issuer's authority and the organisation's URL", async () => {
    expectRefused(await whoAmI(t, {}, at("ext")), NOT_AUTHENTICATED, externalChallenge("ext"), false);
  });

  it("accepts an Entra v2-shaped RS256 token (azp), fetching the keys through the issuer's discovery document", async () => {
    expectWhoAmI(await whoAmI(t, bearer(await idp.sign(rsa, v2("ext"))), at("ext")), users.ext!.id, orgs.ext!.id);
    expect(idp.requests).toContain(`GET /${TID}/v2.0/.well-known/openid-configuration`);
    expect(idp.requests).toContain("GET /keys");
  });

  it("accepts an Entra v1-shaped token (appid, iss <authority>/<tid>/) at an organisation configured with that issuer and audience", async () => {
    expectWhoAmI(await whoAmI(t, bearer(await idp.sign(rsa, v1())), at("ext-v1")), users["ext-v1"]!.id, orgs["ext-v1"]!.id);
    // Its configured audience, not the organisation's URL.
    expectRefused(
      await whoAmI(t, bearer(await idp.sign(rsa, v1({ aud: orgUrl("ext-v1") }))), at("ext-v1")),
      BAD_TOKEN,
      externalChallenge("ext-v1"),
    );
  });

  it("accepts a token for an audience that is a bare GUID (an Entra v2 API's client id), with the algorithm and JWKS URL configured", async () => {
    const token = await idp.sign(ec, v2("ext-es", { aud: GUID_AUDIENCE }));
    expectWhoAmI(await whoAmI(t, bearer(token), at("ext-es")), users["ext-es"]!.id, orgs["ext-es"]!.id);
  });

  it("pins the algorithms: an ES256 token of the same issuer, its key published, is refused where only RS256 is allowed, and RS256 where only ES256", async () => {
    expectRefused(await whoAmI(t, bearer(await idp.sign(ec, v2("ext"))), at("ext")), BAD_TOKEN, externalChallenge("ext"));
    expectRefused(
      await whoAmI(t, bearer(await idp.sign(rsa, v2("ext-es", { aud: GUID_AUDIENCE }))), at("ext-es")),
      BAD_TOKEN,
      externalChallenge("ext-es"),
    );
    // HS256 keyed with the RSA key's public modulus.
    const claims = claimsWithTimes(v2("ext"));
    const signingInput = `${b64({ alg: "HS256", kid: rsa.kid })}.${b64(claims)}`;
    const hmac = createHmac("sha256", Buffer.from(rsa.publicJwk.n!, "base64url")).update(signingInput).digest("base64url");
    expectRefused(await whoAmI(t, bearer(`${signingInput}.${hmac}`), at("ext")), BAD_TOKEN, externalChallenge("ext"));
  });

  it("refuses a tid other than the one in its issuer", async () => {
    expectRefused(
      await whoAmI(t, bearer(await idp.sign(rsa, v2("ext", { tid: randomUUID() }))), at("ext")),
      BAD_TOKEN,
      externalChallenge("ext"),
    );
    expectRefused(
      await whoAmI(t, bearer(await idp.sign(rsa, v2("ext", { tid: undefined }))), at("ext")),
      BAD_TOKEN,
      externalChallenge("ext"),
    );
  });

  it("refuses a token of the configured key whose iss names another issuer", async () => {
    for (const iss of [
      `${idp.origin}/${randomUUID()}/v2.0`,
      `${idp.origin}/${TID}/`,
      `https://login.microsoftonline.com/${TID}/v2.0`,
    ]) {
      expectRefused(
        await whoAmI(t, bearer(await idp.sign(rsa, v2("ext", { iss }))), at("ext")),
        BAD_TOKEN,
        externalChallenge("ext"),
      );
    }
  });

  it("refuses a token of an unconfigured issuer with its own JWKS, and never asks that issuer for anything", async () => {
    const claims = v2("ext", { iss: `${evil.origin}/${TID}/v2.0` });
    for (const token of [
      await evil.sign(evilKey, claims, { jku: `${evil.origin}/keys` }),
      // its key under the configured key's kid
      await evil.sign(evilKey, claims, { kid: rsa.kid, jku: `${evil.origin}/keys` }),
      await evil.sign(evilKey, v2("ext"), { kid: rsa.kid }),
    ]) {
      expectRefused(await whoAmI(t, bearer(token), at("ext")), BAD_TOKEN, externalChallenge("ext"));
    }
    expect(evil.requests).toEqual([]);
  });

  it("takes keys only from the configured issuer's documents, whatever the kid says, and refetches at most once per cooldown", async () => {
    const keyFetches = () => idp.requests.filter((r) => r === "GET /keys").length;
    const before = keyFetches();
    for (const kid of [
      "../../etc/passwd",
      "' OR 1=1 --",
      "https://evil.example/keys",
      randomUUID(),
      randomUUID(),
      randomUUID(),
    ]) {
      const response = await whoAmI(t, bearer(await idp.sign(rsa, v2("ext"), { kid })), at("ext"));
      expectRefused(response, BAD_TOKEN, externalChallenge("ext"));
      expect(errorOf(response).message).not.toMatch(/etc\/passwd|OR 1=1|evil/);
    }
    expect(keyFetches() - before).toBeLessThanOrEqual(1);
    const allowed = new Set([
      `GET /${TID}/v2.0/.well-known/openid-configuration`,
      `GET /${TID}/.well-known/openid-configuration`,
      "GET /keys",
    ]);
    for (const request of idp.requests) expect(allowed, request).toContain(request);
  });

  it("answers a valid external token of an unregistered identity 403 0x80072560 naming its application, never 500", async () => {
    for (const oid of [randomUUID(), "' OR 1=1 --", "x".repeat(300)]) {
      const response = await whoAmI(t, bearer(await idp.sign(rsa, v2("ext", { oid }))), at("ext"));
      expectNotAMember(response);
      expect(errorOf(response).message).toContain(CLIENT_APP);
    }
    // Registered in another organisation trusting the same issuer: not a user of this one.
    expectNotAMember(await whoAmI(t, bearer(await idp.sign(rsa, v2("ext", { oid: users["ext-es"]!.objectId }))), at("ext")));
  });

  it("accepts a new key after a rotation (the unknown kid refetches, once the cooldown has passed) and keeps cached keys through an issuer outage", async () => {
    // The key cache's clock is Date's; it is made on the first request to `rot`, below.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    try {
      const old = await rotating.addKey("RS256");
      const claims = () => ({ ...v2("rot"), iss: `${rotating.origin}/${TID}/v2.0` });
      const fetches = () => rotating.requests.filter((r) => r === "GET /keys").length;
      const challengeOf = externalChallenge("rot", rotating.origin);

      expectWhoAmI(await whoAmI(t, bearer(await rotating.sign(old, claims())), at("rot")), users.rot!.id, orgs.rot!.id);
      expect(fetches()).toBe(1);

      const next = await rotating.addKey("RS256");
      // Within the cooldown of the first fetch, an unknown kid fetches nothing (a flood of made-up kids costs the issuer nothing).
      for (let i = 0; i < 3; i++)
        expectRefused(await whoAmI(t, bearer(await rotating.sign(next, claims())), at("rot")), BAD_TOKEN, challengeOf);
      expect(fetches()).toBe(1);

      vi.setSystemTime(Date.now() + 31_000);
      expectWhoAmI(await whoAmI(t, bearer(await rotating.sign(next, claims())), at("rot")), users.rot!.id, orgs.rot!.id);
      expect(fetches()).toBe(2);
      // The old key is still published and still accepted, without another fetch.
      expectWhoAmI(await whoAmI(t, bearer(await rotating.sign(old, claims())), at("rot")), users.rot!.id, orgs.rot!.id);
      expect(fetches()).toBe(2);

      // The issuer goes away; the cached keys become stale, so the next token tries a refresh that fails.
      await rotating.close();
      vi.setSystemTime(Date.now() + 11 * 60_000);
      for (const signer of [old, next]) {
        expectWhoAmI(await whoAmI(t, bearer(await rotating.sign(signer, claims())), at("rot")), users.rot!.id, orgs.rot!.id);
      }
      // A key it never saw is refused (401, not 500) while the issuer is away.
      const unseen = await rotating.addKey("RS256", { publish: false });
      vi.setSystemTime(Date.now() + 31_000);
      expectRefused(await whoAmI(t, bearer(await rotating.sign(unseen, claims())), at("rot")), BAD_TOKEN, challengeOf);
    } finally {
      vi.useRealTimers();
    }
  });

  it("answers 401, not 500, when the issuer's port is closed and no key was ever fetched", async () => {
    const started = Date.now();
    const response = await whoAmI(t, bearer(await idp.sign(rsa, v2("ext"))), at("down"));
    expect(response.statusCode, response.body).toBe(401);
    expect(errorOf(response).code).toBe(BAD_TOKEN);
    expect(response.headers["www-authenticate"]).toMatch(
      /^Bearer authorization_uri=http:\/\/127\.0\.0\.1:\d+\/.+\/oauth2\/authorize, resource_id=http:\/\/localhost:80\/org\/down, error="invalid_token"$/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("answers 401 within the fetch timeout when the issuer accepts connections and never answers", async () => {
    const started = Date.now();
    const response = await whoAmI(t, bearer(await idp.sign(rsa, v2("ext"))), at("mute"));
    expect(response.statusCode, response.body).toBe(401);
    expect(errorOf(response).code).toBe(BAD_TOKEN);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 30_000);

  it("trusts no keys from a discovery document that names another issuer than the configured one", async () => {
    const token = await idp.sign(rsa, v2("liar", { iss: liarIssuer, tid: LIAR_TID }));
    const response = await whoAmI(t, bearer(token), at("liar"));
    expectRefused(response, BAD_TOKEN, {
      authorizationUri: `${idp.origin}/${LIAR_TID}/oauth2/authorize`,
      resourceId: orgUrl("liar"),
    });
    expect(idp.requests).toContain(`GET /${LIAR_TID}/v2.0/.well-known/openid-configuration`);
  });

  describe("across organisations", () => {
    it("refuses a token of the default organisation at an external one", async () => {
      expectRefused(await whoAmI(t, bearer(adminToken), at("ext")), BAD_TOKEN, externalChallenge("ext"));
      // The built-in issuer makes no token for its URL.
      const scope = await tokenRequest(t, admin.tenant, clientCredentials(admin, { scope: `${orgUrl("ext")}/.default` }));
      expect(scope.statusCode).toBe(400);
      expect(
        (await tokenRequest(t, orgs.ext!.id, clientCredentials(admin, { scope: `${orgUrl("ext")}/.default` }))).statusCode,
      ).toBe(400);
    });

    it("refuses an external organisation's token at the default organisation", async () => {
      const response = await whoAmI(t, bearer(await idp.sign(rsa, v2("ext", { aud: INJECT_BASE }))));
      expectRefused(response, BAD_TOKEN, {
        authorizationUri: `${INJECT_BASE}/${admin.tenant}/oauth2/authorize`,
        resourceId: INJECT_BASE,
      });
    });

    it("gives a second built-in organisation's first administrator a secret that works there, and its tokens are refused at the default organisation", async () => {
      const own = await tokenOf(t.app, second, orgUrl("second"));
      expectWhoAmI(await whoAmI(t, bearer(own), at("second")), second.id, orgs.second!.id);

      const defaultChallenge = { authorizationUri: `${INJECT_BASE}/${admin.tenant}/oauth2/authorize`, resourceId: INJECT_BASE };
      expectRefused(await whoAmI(t, bearer(own)), BAD_TOKEN, defaultChallenge);
      // One with the default organisation's URL as its audience: the same key signed it, its issuer and tid are the second's.
      const forDefaultUrl = await tokenOf(t.app, second, INJECT_BASE);
      expect(decodeJwt(forDefaultUrl)).toMatchObject({ aud: INJECT_BASE, tid: orgs.second!.id });
      expectRefused(await whoAmI(t, bearer(forDefaultUrl)), BAD_TOKEN, defaultChallenge);
      // and the default organisation's administrator is not one of the second's
      expectRefused(await whoAmI(t, bearer(adminToken), at("second")), BAD_TOKEN, {
        authorizationUri: `${INJECT_BASE}/${orgs.second!.id}/oauth2/authorize`,
        resourceId: orgUrl("second"),
      });
    });

    it("refuses the second organisation's client at the default organisation's token endpoint, as an unknown one", async () => {
      const response = await tokenRequest(t, admin.tenant, clientCredentials(second));
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ error: "invalid_client" });
    });
  });
});

/** iat, nbf and exp around now, for tokens built by hand. */
function claimsWithTimes(claims: JWTPayload): JWTPayload {
  const now = nowSeconds();
  return { ...claims, iat: now, nbf: now, exp: now + 600 };
}

/** A token with `claims` signed by a fresh ES256 key the server has never seen. */
async function signedByOwnKey(header: Record<string, unknown>, claims: JWTPayload): Promise<string> {
  const { privateKey } = await generateKeyPair("ES256");
  return signWith(privateKey, { alg: "ES256", ...header }, claims);
}

/** A compact JWS signed with `key` by node:crypto, for headers jose will not sign (an unknown `crit`). */
function rawSigned(key: IssuerKey, header: Record<string, unknown>, claims: JWTPayload): string {
  const signingInput = `${b64(header)}.${b64(claims)}`;
  const privateKey = KeyObject.from(key.privateKey);
  return `${signingInput}.${sign("sha256", Buffer.from(signingInput), { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
}

/** The algorithm-confusion token: HS256 with the bytes of the issuer's published public key as the secret. */
async function hmacWithPublishedKey(
  t: TestApp,
  tenant: string,
  material: "jwk-json" | "ec-point" | "spki-pem" | "spki-der",
  claims: JWTPayload,
): Promise<string> {
  const [jwk] = (await t.app.inject({ url: `/${tenant}/discovery/v2.0/keys` })).json<{ keys: JWK[] }>().keys;
  const publicKey = createPublicKey({ key: jwk as JsonWebKey, format: "jwk" });
  const secret = {
    "jwk-json": () => Buffer.from(JSON.stringify(jwk)),
    "ec-point": () => Buffer.concat([Buffer.from([4]), Buffer.from(jwk!.x!, "base64url"), Buffer.from(jwk!.y!, "base64url")]),
    "spki-pem": () => Buffer.from(publicKey.export({ type: "spki", format: "pem" })),
    "spki-der": () => publicKey.export({ type: "spki", format: "der" }),
  }[material]();
  const signingInput = `${b64({ alg: "HS256", typ: "JWT", kid: jwk!.kid })}.${b64(claims)}`;
  return `${signingInput}.${createHmac("sha256", secret).update(signingInput).digest("base64url")}`;
}
