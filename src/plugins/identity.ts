/**
 * Every caller authenticated (issue 11). Under `/api/` (the Web API, and every later API),
 * an `onRequest` hook, before the body is read, finds the organisation (path prefix
 * `/org/<name>/`, else the host, else the default one), checks the bearer token, and puts
 * the caller on the request (`request.identity`) and in its observations; the request's
 * record operations (`request.odata`) are then its caller's, on its organisation's
 * database. Open without a token: /healthz, /readyz, /docs, the token endpoint and the
 * discovery documents, and CORS preflights.
 *
 * The services are made on first use, so building the app (for the OpenAPI document)
 * needs no database; `app.identity.ready()` runs the first-start bootstrap.
 */
import type { IncomingMessage } from "node:http";
import type { FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { Access } from "../identity/access.js";
import { Authenticator, type RequestIdentity } from "../identity/authenticate.js";
import { bootstrapIdentity } from "../identity/bootstrap.js";
import { BuiltinIssuer } from "../identity/builtin-issuer.js";
import { ORGANIZATION_PATH_PREFIX, type Organization, type RequestPlace } from "../identity/organizations.js";
import { ControlStore } from "../identity/store/control-store.js";
import { resourceNotFound } from "../odata/errors.js";
import { OrganizationDirectory } from "../service/organizations.js";
import { RequestContexts } from "../service/request-contexts.js";

export interface IdentityServices {
  store: ControlStore;
  issuer: BuiltinIssuer;
  authenticator: Authenticator;
  organizations: OrganizationDirectory;
  /** Loads the signing keys and, on first start, makes the default organisation and its administrator. */
  ready(): Promise<void>;
}

declare module "fastify" {
  interface FastifyInstance {
    identity: IdentityServices;
  }
  interface FastifyRequest {
    /** The caller, its organisation and what it may do; set on every request under /api/. */
    identity?: RequestIdentity;
    /** The caller's record operations on its organisation's database (requests under /api/). */
    odata: RequestContexts;
  }
}

const PREFIX_NAME = /^\/org\/([a-z][a-z0-9-]{1,39})(?=\/)/;
const organizationPrefixes = new WeakMap<IncomingMessage, string>();

/**
 * Fastify's `rewriteUrl`: `/org/<name>/api/…` is routed as `/api/…`, the name kept for
 * the identity hook, so every route serves every organisation.
 */
export function rewriteOrganizationPrefix(raw: IncomingMessage): string {
  const url = raw.url ?? "/";
  const match = PREFIX_NAME.exec(url);
  if (!match) return url;
  organizationPrefixes.set(raw, match[1]!);
  return url.slice(match[0].length);
}

/** The path prefix a request came through, if any (`/org/contoso`). */
export const organizationPrefixOf = (request: FastifyRequest): string | undefined => {
  const name = organizationPrefixes.get(request.raw);
  return name === undefined ? undefined : `${ORGANIZATION_PATH_PREFIX}${name}`;
};

/** Where the request reached the service: its base URL and prefix. */
export function requestPlace(request: FastifyRequest, publicUrl: string | undefined): RequestPlace {
  return { base: publicUrl ?? `${request.protocol}://${request.host}`, prefix: organizationPrefixOf(request) };
}

/** The built-in issuer's token endpoint (routes/oauth.ts): audited like the API. */
export const TOKEN_ROUTE = "/:tenant/oauth2/v2.0/token";
/** Its stable operation name in the audit log, refused before the route ran (429) or not. */
export const TOKEN_OPERATION = "oauth2.Token";

export const isTokenRequest = (request: FastifyRequest) => request.routeOptions.url === TOKEN_ROUTE;

/**
 * By the route matched as well as the URL: the router decodes the path, so `/%61pi/…`
 * reaches the /api/ routes too.
 */
export const isApiRequest = (request: FastifyRequest) =>
  request.url.startsWith("/api/") || request.routeOptions.url?.startsWith("/api/") === true;

const requiresIdentity = (request: FastifyRequest) => request.method !== "OPTIONS" && isApiRequest(request);

/**
 * Every Authorization header sent: Node keeps only the first in `headers.authorization`,
 * and a request with two must be refused, not judged by one of them.
 */
function authorizationHeaders(raw: IncomingMessage): string | string[] | undefined {
  const values: string[] = [];
  for (let i = 0; i < raw.rawHeaders.length; i += 2) {
    if (raw.rawHeaders[i]!.toLowerCase() === "authorization") values.push(raw.rawHeaders[i + 1]!);
  }
  return values.length > 1 ? values : values[0];
}

export const identityPlugin = fp(
  async (app) => {
    let services: IdentityServices | undefined;
    app.decorate("identity", {
      getter(): IdentityServices {
        if (!services) {
          const { config, db } = app;
          const store = new ControlStore(db.pool);
          const issuer = new BuiltinIssuer(store, config.TOKEN_LIFETIME_SECONDS);
          const authenticator = new Authenticator(store, issuer, { clockToleranceSeconds: config.AUTH_CLOCK_TOLERANCE_SECONDS });
          const organizations = new OrganizationDirectory(store, db, config);
          let started: Promise<void> | undefined;
          services = {
            store,
            issuer,
            authenticator,
            organizations,
            ready: () =>
              (started ??= (async () => {
                await bootstrapIdentity(store, config, app.log);
                await issuer.start();
              })().catch((error: unknown) => {
                started = undefined;
                throw error;
              })),
          };
        }
        return services;
      },
    });
    app.decorateRequest("identity", undefined);
    app.decorateRequest("odata", null as unknown as RequestContexts);

    app.addHook("onRequest", async (request) => {
      if (!requiresIdentity(request)) return;
      const { config } = app;
      const identityServices = app.identity;
      await identityServices.ready();
      const place = requestPlace(request, config.PUBLIC_URL);
      const prefixName = organizationPrefixes.get(request.raw);
      const organization = await identityServices.organizations.resolve(`${request.protocol}://${request.host}`, prefixName);
      // An unknown prefix is a path that does not exist.
      if (!organization) throw resourceNotFound(prefixName ?? request.host);
      request.observe({ kind: "organization", id: organization.id, name: organization.name });
      const identity =
        config.AUTH_MODE === "none"
          ? openIdentity(organization, config.CALLER_USER_ID)
          : await identityServices.authenticator.authenticate(authorizationHeaders(request.raw), organization, place);
      request.identity = identity;
      request.observe({
        kind: "caller",
        caller: identity.caller,
        principalId: identity.principalId,
        roles: identity.access.roles,
        organization: organization.name,
        claims: identity.claims,
      });
      const database = await identityServices.organizations.databaseOf(organization);
      request.odata = new RequestContexts(
        database.records.as(identity.caller),
        database.pool,
        app.operations,
        identity.access,
        request.audit,
      );
    });

    app.addHook("onClose", async () => {
      if (!services) return;
      await services.organizations.close();
      await services.store.close();
    });
  },
  { name: "identity", dependencies: ["database", "observation", "odata-service"] },
);

/** AUTH_MODE=none: every request is the configured administrator's, in the organisation it reached. */
function openIdentity(organization: Organization, userId: string): RequestIdentity {
  return {
    organization,
    principalId: userId,
    principalName: "AUTH_MODE=none",
    caller: { userId, businessUnitId: organization.businessUnitId, organizationId: organization.id },
    access: new Access(userId, ["Administrator"]),
  };
}
