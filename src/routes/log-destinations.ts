/**
 * The organisation's log destinations (issue 12), as Customer Insights' System >
 * Diagnostics: add one (a name, a resource type, its settings, the categories it takes),
 * list them with their status and backlog, remove one. Administrators only; another
 * organisation's destination is answered as missing. Settings are checked when added and
 * never listed back (a secret-free description is).
 */
import { randomUUID } from "node:crypto";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { resourceIdOf } from "../audit/api-event.js";
import { LOG_CATEGORIES } from "../audit/azure-monitor.js";
import { DESTINATION_TYPES, openDestination, validateSettings } from "../audit/destinations/index.js";
import { initialCursor } from "../audit/forwarder.js";
import type { Prisma } from "../identity/store/control-store.js";
import { LOG_TABLES } from "../model/tables.js";
import { ODataError, badRequest } from "../odata/errors.js";
import { administrator } from "./admin.js";

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const security = [{ bearer: [] }];

const NewDestination = z
  .object({
    name: z.string().min(1).max(100),
    resourceType: z.enum(DESTINATION_TYPES),
    settings: z.record(z.string(), z.unknown()),
    categories: z
      .array(z.enum(LOG_CATEGORIES as ["Audit", "Operational"]))
      .min(1)
      .refine((list) => new Set(list).size === list.length, "each category once"),
  })
  .strict();

const CategoryStatus = z.object({
  category: z.string(),
  forwarded: z.number(),
  /** Records in the log after the cursor (counted up to 1,000,000). */
  backlog: z.number(),
  lastSuccessOn: z.string().optional(),
  failingSince: z.string().optional(),
  lastError: z.string().optional(),
});

const DestinationView = z.object({
  id: z.string(),
  name: z.string(),
  resourceType: z.string(),
  categories: z.array(z.string()),
  target: z.record(z.string(), z.unknown()),
  createdOn: z.string(),
  status: z.enum(["Pending", "Healthy", "Failing"]).optional(),
  forwarding: z.array(CategoryStatus).optional(),
});

const IdParams = z.object({ id: z.string().regex(GUID, "must be a GUID") });

const notFound = (id: string) => new ODataError(404, "0x80040217", `log destination With Id = ${id} Does Not Exist`);

/** What a destination points at, without secrets. */
async function describeTarget(resourceType: (typeof DESTINATION_TYPES)[number], settings: unknown) {
  const destination = openDestination(resourceType, settings as Record<string, unknown>);
  try {
    return destination.describe();
  } finally {
    await destination.close().catch(() => {});
  }
}

export const logDestinationRoutes: FastifyPluginAsyncZod = async (app) => {
  const prisma = () => app.identity.store.prisma;

  app.post(
    "/",
    {
      schema: {
        tags: ["admin"],
        summary: "Add a destination for the organisation's audit and operational logs",
        operationId: "Admin.CreateLogDestination",
        description:
          "resourceType AzureStorage: settings {connectionString, containers?, retry?, timeoutMs?} (append blobs in insight-logs-audit / insight-logs-operational); " +
          "JetStream: settings {servers, streams?, subjectPrefix?, duplicateWindowSeconds?, user?/pass? or token?, timeoutMs?}. " +
          "Forwarding starts at the log's end.",
        security,
        body: NewDestination,
        response: { 201: DestinationView },
      },
    },
    async (request, reply) => {
      const { organization } = administrator(request);
      const { name, resourceType, categories } = request.body;
      let settings: Record<string, unknown>;
      try {
        settings = validateSettings(
          resourceType,
          request.body.settings,
          resourceIdOf(app.config.AUDIT_RESOURCE_ID, organization.id),
        );
      } catch (error) {
        throw badRequest(`settings: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (
        await prisma().logDestination.findUnique({ where: { organizationId_name: { organizationId: organization.id, name } } })
      ) {
        throw new ODataError(409, "0x80040237", `A log destination named '${name}' exists already.`);
      }
      const { pool } = await app.identity.organizations.databaseOf(organization);
      const start = await initialCursor(pool);
      const row = await prisma().logDestination.create({
        data: {
          id: randomUUID(),
          organizationId: organization.id,
          name,
          resourceType,
          settings: settings as Prisma.InputJsonObject,
          categories,
          cursors: {
            create: categories.map((category) => ({
              category,
              transactionId: BigInt(start.transactionId),
              versionNumber: BigInt(start.versionNumber),
            })),
          },
        },
      });
      return reply.code(201).send({
        id: row.id,
        name: row.name,
        resourceType: row.resourceType,
        categories: row.categories,
        target: await describeTarget(resourceType, settings),
        createdOn: row.createdOn.toISOString(),
      });
    },
  );

  app.get(
    "/",
    {
      schema: {
        tags: ["admin"],
        summary: "The organisation's log destinations, with their status and backlog",
        operationId: "Admin.ListLogDestinations",
        security,
        response: { 200: z.object({ value: z.array(DestinationView) }) },
      },
    },
    async (request) => {
      const { organization } = administrator(request);
      const rows = await prisma().logDestination.findMany({
        where: { organizationId: organization.id },
        include: { cursors: true },
        orderBy: { createdOn: "asc" },
      });
      const { pool } = await app.identity.organizations.databaseOf(organization);
      const value = [];
      for (const row of rows) {
        const forwarding = [];
        for (const cursor of row.cursors) {
          const table = LOG_TABLES[cursor.category as keyof typeof LOG_TABLES];
          const { rows: counted } = await pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${table.logicalName}
              WHERE (transactionid, versionnumber) > ($1::bigint, $2::bigint) LIMIT 1000000) backlog`,
            [cursor.transactionId.toString(), cursor.versionNumber.toString()],
          );
          forwarding.push({
            category: cursor.category,
            forwarded: Number(cursor.forwarded),
            backlog: counted[0]!.n,
            lastSuccessOn: cursor.lastSuccessOn?.toISOString(),
            failingSince: cursor.failingSince?.toISOString(),
            lastError: cursor.lastError ?? undefined,
          });
        }
        const status = forwarding.some((f) => f.failingSince)
          ? ("Failing" as const)
          : forwarding.some((f) => f.lastSuccessOn)
            ? ("Healthy" as const)
            : ("Pending" as const);
        value.push({
          id: row.id,
          name: row.name,
          resourceType: row.resourceType,
          categories: row.categories,
          target: await describeTarget(row.resourceType as (typeof DESTINATION_TYPES)[number], row.settings),
          createdOn: row.createdOn.toISOString(),
          status,
          forwarding,
        });
      }
      return { value };
    },
  );

  app.delete(
    "/:id",
    {
      schema: {
        tags: ["admin"],
        summary: "Remove a destination: forwarding to it stops (what it holds stays there)",
        operationId: "Admin.DeleteLogDestination",
        security,
        params: IdParams,
      },
    },
    async (request, reply) => {
      const { organization } = administrator(request);
      const { count } = await prisma().logDestination.deleteMany({
        where: { id: request.params.id, organizationId: organization.id },
      });
      if (count === 0) throw notFound(request.params.id);
      return reply.code(204).send();
    },
  );
};
