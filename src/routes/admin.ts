/**
 * Administration of the caller's organisation (issue 11): its principals, and, for the
 * default organisation's administrators, the organisations. Bearer token and the
 * Administrator role required; an id of another organisation is answered as if missing.
 * `npm run admin` (scripts/admin.ts) is a client of these routes.
 */
import type { FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { RequestIdentity } from "../identity/authenticate.js";
import { createPrincipal, rotateSecret, view } from "../identity/principals.js";
import { ROLE_NAMES } from "../identity/roles.js";
import { ODataError } from "../odata/errors.js";

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const PrincipalView = z.object({
  id: z.string(),
  kind: z.string(),
  name: z.string(),
  clientId: z.string().optional(),
  issuer: z.string().optional(),
  objectId: z.string().optional(),
  roles: z.array(z.string()),
  providerId: z.string().optional(),
  disabled: z.boolean(),
  createdOn: z.string(),
  secretHints: z.array(z.string()).optional(),
});

const NewPrincipal = z
  .object({
    name: z.string().min(1).max(200),
    roles: z.array(z.enum(ROLE_NAMES)).min(1),
    providerId: z.string().regex(GUID, "must be a GUID (a msdyn_ciproviderid)").optional(),
    issuer: z.string().url().optional(),
    objectId: z.string().min(1).max(200).optional(),
  })
  .strict();

const IdParams = z.object({ id: z.string().regex(GUID, "must be a GUID") });

const OrganizationView = z.object({
  id: z.string(),
  name: z.string(),
  url: z.string().optional(),
  isDefault: z.boolean(),
  issuer: z.string().optional(),
});

const NewOrganization = z
  .object({
    name: z.string(),
    url: z.string().url().optional(),
    issuer: z.string().url().optional(),
    audience: z.string().min(1).optional(),
    jwksUrl: z.string().url().optional(),
    algorithms: z
      .array(z.string().regex(/^(RS|PS|ES)(256|384|512)$|^EdDSA$/))
      .min(1)
      .optional(),
  })
  .strict();

const security = [{ bearer: [] }];

/** The administrator making the request; anyone else gets Dataverse's 403. */
export function administrator(request: FastifyRequest): RequestIdentity {
  const identity = request.identity!;
  identity.access.requireRole("Administrator", "systemuser");
  return identity;
}

const notFound = (id: string) => new ODataError(404, "0x80040217", `systemuser With Id = ${id} Does Not Exist`);

export const adminRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    "/principals",
    {
      schema: {
        tags: ["admin"],
        summary: "The organisation's principals",
        operationId: "Admin.ListPrincipals",
        security,
        response: { 200: z.object({ value: z.array(PrincipalView) }) },
      },
    },
    async (request) => {
      const { organization } = administrator(request);
      return { value: (await app.identity.store.listPrincipals(organization.id)).map(view) };
    },
  );

  app.post(
    "/principals",
    {
      schema: {
        tags: ["admin"],
        summary: "Create an application user (its client secret is in this response only) or register an external user",
        operationId: "Admin.CreatePrincipal",
        security,
        body: NewPrincipal,
        response: { 201: z.object({ principal: PrincipalView, clientSecret: z.string().optional() }) },
      },
    },
    async (request, reply) => {
      const { organization } = administrator(request);
      const created = await createPrincipal(app.identity.store, organization.id, request.body);
      return reply.code(201).header("cache-control", "no-store").send(created);
    },
  );

  for (const [action, disabled] of [
    ["disable", true],
    ["enable", false],
  ] as const) {
    app.post(
      `/principals/:id/${action}`,
      {
        schema: {
          tags: ["admin"],
          summary: `${action === "disable" ? "Disable" : "Enable"} a principal`,
          operationId: `Admin.${action === "disable" ? "Disable" : "Enable"}Principal`,
          security,
          params: IdParams,
        },
      },
      async (request, reply) => {
        const { organization } = administrator(request);
        const { count } = await app.identity.store.setPrincipalDisabled(organization.id, request.params.id, disabled);
        if (count === 0) throw notFound(request.params.id);
        app.identity.authenticator.forgetPrincipals();
        return reply.code(204).send();
      },
    );
  }

  app.post(
    "/principals/:id/secret",
    {
      schema: {
        tags: ["admin"],
        summary: "Replace an application user's client secret (the old one stops working at once)",
        operationId: "Admin.ReplacePrincipalSecret",
        security,
        params: IdParams,
        response: { 200: z.object({ clientSecret: z.string() }) },
      },
    },
    async (request, reply) => {
      const { organization } = administrator(request);
      const principal = await app.identity.store.principalById(organization.id, request.params.id);
      if (!principal || principal.kind !== "application") throw notFound(request.params.id);
      return reply
        .header("cache-control", "no-store")
        .send({ clientSecret: await rotateSecret(app.identity.store, principal.id) });
    },
  );

  app.get(
    "/organizations",
    {
      schema: {
        tags: ["admin"],
        summary: "The organisations (default organisation's administrators only)",
        operationId: "Admin.ListOrganizations",
        security,
        response: { 200: z.object({ value: z.array(OrganizationView) }) },
      },
    },
    async (request) => {
      const { organization } = administrator(request);
      if (!organization.isDefault) administratorOfDefault();
      const rows = await app.identity.store.listOrganizations();
      return {
        value: rows.map((row) => ({
          id: row.id,
          name: row.name,
          url: row.url ?? undefined,
          isDefault: row.isDefault,
          issuer: row.oidcIssuer ?? undefined,
        })),
      };
    },
  );

  app.post(
    "/organizations",
    {
      schema: {
        tags: ["admin"],
        summary: "Create an organisation: its database, migrated, and its first administrator",
        operationId: "Admin.CreateOrganization",
        security,
        body: NewOrganization,
        response: {
          201: z.object({
            organization: OrganizationView,
            administrator: PrincipalView.optional(),
            clientSecret: z.string().optional(),
          }),
        },
      },
    },
    async (request, reply) => {
      const { organization: own } = administrator(request);
      if (!own.isDefault) administratorOfDefault();
      const { name, url, issuer, audience, jwksUrl, algorithms } = request.body;
      const organization = await app.identity.organizations.create({
        name,
        url,
        external: issuer ? { issuer, audience, jwksUrl, algorithms: algorithms ?? ["RS256"] } : undefined,
      });
      const first = issuer
        ? undefined
        : await createPrincipal(app.identity.store, organization.id, { name: "Administrator", roles: ["Administrator"] });
      return reply
        .code(201)
        .header("cache-control", "no-store")
        .send({
          organization: { id: organization.id, name: organization.name, url: organization.url, isDefault: false, issuer },
          administrator: first?.principal,
          clientSecret: first?.clientSecret,
        });
    },
  );
};

function administratorOfDefault(): never {
  throw new ODataError(403, "0x80040220", "Only the default organization's administrators manage organizations.");
}
