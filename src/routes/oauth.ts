/**
 * The built-in issuer's endpoints, laid out as Entra's so a client can find one from the
 * other (issue 11): `POST /{tenant}/oauth2/v2.0/token` (client credentials, form-encoded),
 * `GET /{tenant}/v2.0/.well-known/openid-configuration` and `GET /{tenant}/discovery/v2.0/keys`.
 * `{tenant}` is the organisation's id (its `tid`) or name. Open without a token; the token
 * endpoint is limited per client IP address against secret guessing.
 */
import formBody from "@fastify/formbody";
import rateLimit from "@fastify/rate-limit";
import type { JWTPayload } from "jose";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { BUILTIN_ALGORITHM, TokenRequestError } from "../identity/builtin-issuer.js";
import {
  type Organization,
  builtinAuthorizeEndpoint,
  builtinIssuer,
  builtinTokenEndpoint,
  organizationUrl,
  toOrganization,
} from "../identity/organizations.js";
import { TOKEN_OPERATION, TOKEN_ROUTE, requestPlace } from "../plugins/identity.js";

const TenantParams = z.object({ tenant: z.string().max(100).describe("The organisation's id (tid) or name") });

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const TokenError = z.object({ error: z.string(), error_description: z.string(), timestamp: z.string() });

export const oauthRoutes: FastifyPluginAsyncZod = async (app) => {
  await app.register(formBody, { bodyLimit: 16 * 1024 });
  // Beyond the limit, an OAuth error body as every other refusal here (the plugin has set Retry-After).
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      new TokenRequestError(
        429,
        "temporarily_unavailable",
        `Too many token requests from this address: at most ${context.max} a minute. Retry after ${Math.ceil(context.ttl / 1000)} seconds.`,
      ),
  });
  app.setErrorHandler(async (error, request, reply) => {
    if (!(error instanceof TokenRequestError)) throw error;
    return reply.code(error.status).send(error.toBody());
  });

  async function organizationOf(tenant: string): Promise<Organization | undefined> {
    await app.identity.ready();
    const { store } = app.identity;
    const row = GUID.test(tenant) ? await store.organizationById(tenant.toLowerCase()) : await store.organizationByName(tenant);
    // An organisation trusting an external issuer gets its tokens there.
    return row && !row.oidcIssuer ? toOrganization(row) : undefined;
  }

  const unknownTenant = (reply: FastifyReply, tenant: string) =>
    reply
      .code(400)
      .send(
        new TokenRequestError(
          400,
          "invalid_request",
          `Tenant '${tenant.slice(0, 100)}' is not an organisation of this server's built-in issuer.`,
        ).toBody(),
      );

  const base = (request: FastifyRequest) => requestPlace(request, app.config.PUBLIC_URL).base;

  app.post(
    TOKEN_ROUTE,
    {
      config: { rateLimit: { max: app.config.TOKEN_REQUESTS_PER_MINUTE, timeWindow: 60_000 } },
      schema: {
        tags: ["identity"],
        security: [],
        summary: "Token endpoint of the built-in issuer (client-credentials grant, as Entra's)",
        operationId: "Identity.Token",
        description:
          "Form fields `grant_type=client_credentials`, `client_id`, `client_secret`, `scope=<organisation URL>/.default`.",
        params: TenantParams,
        consumes: ["application/x-www-form-urlencoded"],
        body: z.record(z.string(), z.unknown()).optional(),
        response: {
          200: z.object({
            token_type: z.literal("Bearer"),
            expires_in: z.number(),
            ext_expires_in: z.number(),
            access_token: z.string(),
          }),
          400: TokenError,
          401: TokenError,
          429: TokenError,
        },
      },
    },
    async (request, reply) => {
      const { tenant } = request.params;
      // Audited as an Audit record (a POST), without the form: it holds the secret.
      request.observe({ kind: "operation", name: TOKEN_OPERATION });
      const organization = await organizationOf(tenant);
      if (!organization) return unknownTenant(reply, tenant);
      request.observe({ kind: "organization", id: organization.id, name: organization.name });
      const form = request.body ?? {};
      // The scope names the organisation URL; through a path prefix it is `<server>/org/<name>`.
      const scope = typeof form.scope === "string" ? form.scope : "";
      const prefixed = `${base(request)}/org/${organization.name}`;
      const place = { base: base(request), prefix: scope.startsWith(`${prefixed}/`) ? `/org/${organization.name}` : undefined };
      try {
        const { response, claims } = await app.identity.issuer.issue(
          form,
          organization,
          organizationUrl(organization, place),
          base(request),
        );
        observeClient(request, claims, organization);
        return reply.header("cache-control", "no-store").header("pragma", "no-cache").send(response);
      } catch (error) {
        if (!(error instanceof TokenRequestError)) throw error;
        request.log.info({ tenant: organization.name, error: error.error }, "token request refused");
        request.errorCode = error.error;
        return reply.code(error.status as 400 | 401).send(error.toBody());
      }
    },
  );

  app.get(
    "/:tenant/v2.0/.well-known/openid-configuration",
    {
      schema: {
        tags: ["identity"],
        security: [],
        summary: "OpenID Connect discovery document of the built-in issuer",
        operationId: "Identity.OpenIdConfiguration",
        params: TenantParams,
        // 400: an id or name that is no organisation's.
        response: { 200: z.looseObject({}), 400: TokenError },
      },
    },
    async (request, reply) => {
      const organization = await organizationOf(request.params.tenant);
      if (!organization) return unknownTenant(reply, request.params.tenant);
      const server = base(request);
      return {
        issuer: builtinIssuer(server, organization),
        token_endpoint: builtinTokenEndpoint(server, organization),
        authorization_endpoint: builtinAuthorizeEndpoint(server, organization),
        jwks_uri: `${server}/${organization.id}/discovery/v2.0/keys`,
        grant_types_supported: ["client_credentials"],
        response_types_supported: ["token"],
        token_endpoint_auth_methods_supported: ["client_secret_post"],
        id_token_signing_alg_values_supported: [BUILTIN_ALGORITHM],
        subject_types_supported: ["pairwise"],
        tenant_region_scope: null,
      };
    },
  );

  app.get(
    "/:tenant/discovery/v2.0/keys",
    {
      schema: {
        tags: ["identity"],
        security: [],
        summary: "The built-in issuer's public signing keys (JWKS)",
        operationId: "Identity.Keys",
        params: TenantParams,
        // 400: an id or name that is no organisation's.
        response: { 200: z.looseObject({}), 400: TokenError },
      },
    },
    async (request, reply) => {
      const organization = await organizationOf(request.params.tenant);
      if (!organization) return unknownTenant(reply, request.params.tenant);
      return reply.header("cache-control", "public, max-age=3600").send({ ...app.identity.issuer.jwks() });
    },
  );

  app.get(
    "/:tenant/oauth2/authorize",
    {
      schema: {
        tags: ["identity"],
        security: [],
        summary: "Named by 401 challenges; the built-in issuer has no interactive sign-in",
        operationId: "Identity.Authorize",
        params: TenantParams,
        // 400: an id or name that is no organisation's.
        response: { 400: TokenError },
      },
    },
    async (request, reply) => {
      const organization = await organizationOf(request.params.tenant);
      if (!organization) return unknownTenant(reply, request.params.tenant);
      return reply
        .code(400)
        .send(
          new TokenRequestError(
            400,
            "unsupported_response_type",
            `The built-in issuer has no interactive sign-in; get a token with the client-credentials grant at ${builtinTokenEndpoint(base(request), organization)}.`,
          ).toBody(),
        );
    },
  );
};

/** The client a token was issued to, from the claims the issuer signed. */
function observeClient(request: FastifyRequest, claims: JWTPayload, organization: Organization): void {
  const principalId = typeof claims.oid === "string" ? claims.oid : undefined;
  if (!principalId) return;
  const roles = Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === "string") : [];
  request.observe({
    kind: "caller",
    caller: { userId: principalId, businessUnitId: organization.businessUnitId, organizationId: organization.id },
    principalId,
    roles,
    organization: organization.name,
    claims,
  });
}
