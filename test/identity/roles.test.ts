/**
 * The security roles (issue 11) through the HTTP API, table-driven: each role (and a
 * principal whose roles are all unknown) against each entity set, operation, unbound
 * action, `$batch` and the admin API. A refusal is Dataverse's 403 0x80040220 naming the
 * first missing privilege, with nothing written; what is allowed succeeds. Then a channel
 * provider's row scope: bound to provider P1, it neither writes into nor sees P2's
 * conversations, on any path.
 *
 * The expected grants are written out here (the spec), not read from src/identity/roles.ts.
 */
import { randomUUID } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { type TestPrincipal, testDataDir, testPrincipal, tokenOf } from "../helpers/identity.js";
import { type Body, OBJECT_DOES_NOT_EXIST, PRIVILEGE_DENIED } from "../helpers/records.js";
import {
  type ApiClient,
  apiClient,
  batchParts,
  batchRequest,
  createdIdOf,
  errorOf,
  expectOutOfScope,
  expectPrivilegeDenied,
} from "../helpers/tenancy.js";

type Verb = "Create" | "Read" | "Write" | "Delete" | "Append" | "AppendTo";
type RoleKey = "Administrator" | "Analyst" | "ChannelProvider" | "no known role";

const ROLES: RoleKey[] = ["Administrator", "Analyst", "ChannelProvider", "no known role"];
const SET_NAMES = [
  "msdyn_ciproviders",
  "msdyn_conversationsdata",
  "msdyn_sessionsdata",
  "msdyn_sessionparticipantsdata",
  "msdyn_kpieventsdata",
  "msdyn_kpieventdefinitions",
];
const CONVERSATION_TREE = ["msdyn_conversationdata", "msdyn_sessiondata", "msdyn_sessionparticipantdata", "msdyn_kpieventdata"];

/** What each role is granted: the spec of issue 11. */
const GRANTED: Record<RoleKey, (verb: Verb, table: string) => boolean> = {
  Administrator: () => true,
  Analyst: (verb) => verb === "Read",
  ChannelProvider: (verb, table) =>
    CONVERSATION_TREE.includes(table)
      ? ["Create", "Read", "Write", "Append", "AppendTo"].includes(verb)
      : table === "msdyn_kpieventdefinition" && verb === "Read",
  "no known role": () => false,
};

/** The first privilege of `needs` the role lacks (in the order they are checked), if any. */
const missing = (role: RoleKey, needs: readonly Verb[], table: string) => needs.find((verb) => !GRANTED[role](verb, table));

interface SetSpec {
  set: string;
  table: string;
  primaryKey: string;
  /** A text column every role that may write can change. */
  text: string;
  /** A valid new row (unique natural keys), a channel provider's own (under P1's conversation). */
  body(): Body;
}

interface OperationSpec {
  name: string;
  /** The privileges it needs, in the order they are checked. */
  needs: Verb[];
  /** Its status when allowed. */
  status: number;
  /** Whether it writes (a refusal must then leave the table as it was). */
  writes: boolean;
  /** Whether it needs an existing row (made by the administrator). */
  row?: boolean;
  run(client: ApiClient, spec: SetSpec, id: string): Promise<LightMyRequestResponse>;
}

const typed = (spec: SetSpec, body: Body): Body => ({ "@odata.type": `Microsoft.Dynamics.CRM.${spec.table}`, ...body });
const bulk = (client: ApiClient, spec: SetSpec, action: string, targets: Body[]) =>
  client.post(`${spec.set}/Microsoft.Dynamics.CRM.${action}`, { Targets: targets.map((target) => typed(spec, target)) });

const OPERATIONS: OperationSpec[] = [
  { name: "GET collection", needs: ["Read"], status: 200, writes: false, run: (c, s) => c.get(`${s.set}?$top=3`) },
  { name: "GET by key", needs: ["Read"], status: 200, writes: false, row: true, run: (c, s, id) => c.get(`${s.set}(${id})`) },
  { name: "$count", needs: ["Read"], status: 200, writes: false, run: (c, s) => c.get(`${s.set}/$count`) },
  { name: "POST", needs: ["Create"], status: 204, writes: true, run: (c, s) => c.post(s.set, s.body()) },
  {
    name: "PATCH update (If-Match: *)",
    needs: ["Write"],
    status: 204,
    writes: true,
    row: true,
    run: (c, s, id) => c.patch(`${s.set}(${id})`, { [s.text]: "changed" }, { "if-match": "*" }),
  },
  {
    name: "PATCH upsert",
    needs: ["Create", "Write"],
    status: 204,
    writes: true,
    run: (c, s) => c.patch(`${s.set}(${randomUUID()})`, s.body()),
  },
  {
    name: "PATCH create only (If-None-Match: *)",
    needs: ["Create"],
    status: 204,
    writes: true,
    run: (c, s) => c.patch(`${s.set}(${randomUUID()})`, s.body(), { "if-none-match": "*" }),
  },
  { name: "DELETE", needs: ["Delete"], status: 204, writes: true, row: true, run: (c, s, id) => c.del(`${s.set}(${id})`) },
  {
    name: "CreateMultiple",
    needs: ["Create"],
    status: 200,
    writes: true,
    run: (c, s) => bulk(c, s, "CreateMultiple", [s.body(), s.body()]),
  },
  {
    name: "UpdateMultiple",
    needs: ["Write"],
    status: 204,
    writes: true,
    row: true,
    run: (c, s, id) => bulk(c, s, "UpdateMultiple", [{ [s.primaryKey]: id, [s.text]: "changed" }]),
  },
  {
    name: "UpsertMultiple",
    needs: ["Create", "Write"],
    status: 204,
    writes: true,
    run: (c, s) => bulk(c, s, "UpsertMultiple", [{ [s.primaryKey]: randomUUID(), ...s.body() }]),
  },
];

describe("security roles over the Web API", () => {
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir() });
  const principals = {} as Record<RoleKey, TestPrincipal>;
  const clients = {} as Record<RoleKey, ApiClient>;
  let admin: ApiClient;
  let organization: { id: string; businessUnitId: string };
  /** Two enabled providers; the ChannelProvider principal is bound to P1. */
  let p1: string;
  let p2: string;
  /** P1's conversation, with session s-1 and participant agent-1, made by the administrator. */
  let cP1: string;

  const SETS: SetSpec[] = [
    {
      set: "msdyn_ciproviders",
      table: "msdyn_ciprovider",
      primaryKey: "msdyn_ciproviderid",
      text: "msdyn_label",
      body: () => ({ msdyn_name: `Provider ${randomUUID()}` }),
    },
    {
      set: "msdyn_conversationsdata",
      table: "msdyn_conversationdata",
      primaryKey: "msdyn_conversationdataid",
      text: "msdyn_channel",
      body: () => {
        const c = `c-${randomUUID()}`;
        return { msdyn_conversationid: c, msdyn_name: c, msdyn_providerid: p1 };
      },
    },
    {
      set: "msdyn_sessionsdata",
      table: "msdyn_sessiondata",
      primaryKey: "msdyn_sessiondataid",
      text: "msdyn_queuename",
      body: () => ({ msdyn_conversationid: cP1, msdyn_providersessionid: `s-${randomUUID()}` }),
    },
    {
      set: "msdyn_sessionparticipantsdata",
      table: "msdyn_sessionparticipantdata",
      primaryKey: "msdyn_sessionparticipantdataid",
      text: "msdyn_participantname",
      body: () => ({ msdyn_conversationid: cP1, msdyn_providersessionid: "s-1", msdyn_participantid: `p-${randomUUID()}` }),
    },
    {
      set: "msdyn_kpieventsdata",
      table: "msdyn_kpieventdata",
      primaryKey: "msdyn_kpieventdataid",
      text: "msdyn_kpieventreason",
      body: () => ({
        msdyn_conversationid: cP1,
        msdyn_providersessionid: "s-1",
        msdyn_participantid: "agent-1",
        msdyn_kpieventname: "SessionStarted",
      }),
    },
    {
      set: "msdyn_kpieventdefinitions",
      table: "msdyn_kpieventdefinition",
      primaryKey: "msdyn_kpieventdefinitionid",
      text: "msdyn_eventdescription",
      body: () => ({ msdyn_name: `Custom-${randomUUID()}`, msdyn_eventtype: 100000001 }),
    },
  ];

  const query = async <T = Body>(sql: string, params: unknown[] = []) => (await t.testDb.pool.query(sql, params)).rows as T[];
  /** Rows and latest change of a table: what a refused write must leave as it was. */
  const fingerprint = async (table: string) =>
    (await query(`SELECT count(*)::int AS n, max(modifiedon) AS latest, max(versionnumber)::text AS version FROM ${table}`))[0];
  const countIn = async (table: string, c: string) =>
    (await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE msdyn_conversationid = $1`, [c]))[0]!.n;
  const treeCounts = async (c: string) => Promise.all(CONVERSATION_TREE.map((table) => countIn(table, c)));

  async function newProvider(): Promise<string> {
    const id = createdIdOf(await admin.post("msdyn_ciproviders", { msdyn_name: `Provider ${randomUUID()}` }));
    expect((await admin.patch(`msdyn_ciproviders(${id})`, { msdyn_enableanalytics: true })).statusCode).toBe(204);
    return id;
  }

  /** A conversation of `providerId` with session s-1 and participant agent-1, by the administrator. */
  async function tree(providerId: string): Promise<string> {
    const c = `c-${randomUUID()}`;
    createdIdOf(
      await admin.post("msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_name: c, msdyn_providerid: providerId }),
    );
    createdIdOf(await admin.post("msdyn_sessionsdata", { msdyn_conversationid: c, msdyn_providersessionid: "s-1" }));
    createdIdOf(
      await admin.post("msdyn_sessionparticipantsdata", {
        msdyn_conversationid: c,
        msdyn_providersessionid: "s-1",
        msdyn_participantid: "agent-1",
      }),
    );
    return c;
  }

  beforeAll(async () => {
    const { app } = t;
    principals.Administrator = await testPrincipal(app, ["Administrator"]);
    admin = apiClient(t, await tokenOf(app, principals.Administrator));
    p1 = await newProvider();
    p2 = await newProvider();
    cP1 = await tree(p1);
    principals.Analyst = await testPrincipal(app, ["Analyst"]);
    principals.ChannelProvider = await testPrincipal(app, ["ChannelProvider"], { providerId: p1 });
    // A principal whose only role is one this server does not know (a role since removed, say).
    principals["no known role"] = await testPrincipal(app, ["Analyst"]);
    await t.db.pool.query(`UPDATE cif_control.principal SET roles = ARRAY['Retired'] WHERE id = $1`, [
      principals["no known role"].id,
    ]);
    for (const role of ROLES) clients[role] = apiClient(t, await tokenOf(app, principals[role]));
    organization = await app.identity.organizations.defaultOrganization();
  });

  // -------------------------------------------------------------------------

  const cases = ROLES.flatMap((role) =>
    OPERATIONS.map((operation) => ({ role, operation, label: `${role}: ${operation.name}` })),
  );

  describe.each(SET_NAMES)("%s", (set) => {
    it.each(cases)("$label", async ({ role, operation }) => {
      const spec = SETS.find((s) => s.set === set)!;
      const id = operation.row ? createdIdOf(await admin.post(spec.set, spec.body())) : "";
      const before = operation.writes ? await fingerprint(spec.table) : undefined;

      const res = await operation.run(clients[role], spec, id);

      const lacking = missing(role, operation.needs, spec.table);
      if (lacking) {
        expectPrivilegeDenied(res, `prv${lacking}${spec.table}`, spec.table, principals[role].id);
        if (before) expect(await fingerprint(spec.table), "nothing written").toEqual(before);
        return;
      }
      expect(res.statusCode, res.body).toBe(operation.status);
      if (operation.name === "GET by key") expect(res.json<Body>()[spec.primaryKey]).toBe(id);
      if (operation.name === "DELETE") expect((await admin.get(`${spec.set}(${id})`)).statusCode).toBe(404);
      if (operation.name.startsWith("PATCH update") || operation.name === "UpdateMultiple") {
        expect((await admin.get(`${spec.set}(${id})?$select=${spec.text}`)).json<Body>()[spec.text]).toBe("changed");
      }
    });
  });

  // -------------------------------------------------------------------------

  describe("unbound actions and functions", () => {
    const init = (client: ApiClient, c: string, providerId = p1) =>
      client.post("msdyn_InitLogAnalytics", {
        data: {
          conversation: {
            conversationId: c,
            providerId,
            session: { providerSessionId: "s-1", participants: [{ participantId: "agent-1" }] },
          },
        },
      });
    const logEvent = (client: ApiClient, c: string) =>
      client.post("msdyn_LogAnalyticsEvent", {
        data: { conversationId: c, providerSessionId: "s-1", participantId: "agent-1", events: [{}] },
        eventName: "SessionStarted",
        correlationId: randomUUID(),
      });

    it.each(ROLES)("%s: msdyn_InitLogAnalytics", async (role) => {
      const c = `c-${randomUUID()}`;
      const res = await init(clients[role], c);
      if (missing(role, ["Create", "Write"], "msdyn_conversationdata")) {
        expectPrivilegeDenied(res, "prvCreatemsdyn_conversationdata", "msdyn_conversationdata", principals[role].id);
        expect(await treeCounts(c)).toEqual([0, 0, 0, 0]);
      } else {
        expect(res.statusCode, res.body).toBe(200);
        expect(await treeCounts(c)).toEqual([1, 1, 1, 0]);
      }
    });

    it.each(ROLES)("%s: msdyn_LogAnalyticsEvent", async (role) => {
      const before = await countIn("msdyn_kpieventdata", cP1);
      const res = await logEvent(clients[role], cP1);
      if (missing(role, ["Create"], "msdyn_kpieventdata")) {
        expectPrivilegeDenied(res, "prvCreatemsdyn_kpieventdata", "msdyn_kpieventdata", principals[role].id);
        expect(await countIn("msdyn_kpieventdata", cP1)).toBe(before);
      } else {
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json<Body>().KpiEventDataIds).toHaveLength(1);
        expect(await countIn("msdyn_kpieventdata", cP1)).toBe(before + 1);
      }
    });

    it.each(ROLES)("%s: WhoAmI answers the caller's user, the organisation's business unit and id", async (role) => {
      for (const path of ["WhoAmI", "WhoAmI()"]) {
        const res = await clients[role].get(path);
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json()).toMatchObject({
          UserId: principals[role].id,
          BusinessUnitId: organization.businessUnitId,
          OrganizationId: organization.id,
        });
      }
    });
  });

  // -------------------------------------------------------------------------

  describe("$batch", () => {
    it.each(ROLES)("%s: each part is authorized on its own; a refused part is a 403 in the response", async (role) => {
      const c = `c-${randomUUID()}`;
      const providerName = `Provider ${randomUUID()}`;
      const res = await clients[role].batch(
        [
          batchRequest("GET", "msdyn_kpieventdefinitions?$select=msdyn_name&$top=1"),
          [batchRequest("POST", "msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_providerid: p1 })],
          [batchRequest("POST", "msdyn_ciproviders", { msdyn_name: providerName })],
          batchRequest("DELETE", `msdyn_kpieventdefinitions(${randomUUID()})`),
        ],
        { prefer: "odata.continue-on-error" },
      );
      expect(res.statusCode, res.body).toBe(200);
      const parts = batchParts(res);
      expect(parts).toHaveLength(4);
      const expectPart = (index: number, verb: Verb, table: string, allowed: number) => {
        const part = parts[index]!;
        if (missing(role, [verb], table)) expectPrivilegeDenied(part, `prv${verb}${table}`, table, principals[role].id);
        else expect(part.status, JSON.stringify(part.json)).toBe(allowed);
      };
      expectPart(0, "Read", "msdyn_kpieventdefinition", 200);
      expectPart(1, "Create", "msdyn_conversationdata", 204);
      expectPart(2, "Create", "msdyn_ciprovider", 204);
      // Allowed, it finds no such row: a 404, not a 403.
      expectPart(3, "Delete", "msdyn_kpieventdefinition", 404);
      expect(await countIn("msdyn_conversationdata", c)).toBe(missing(role, ["Create"], "msdyn_conversationdata") ? 0 : 1);
      const providers = await query(`SELECT 1 FROM msdyn_ciprovider WHERE msdyn_name = $1`, [providerName]);
      expect(providers).toHaveLength(missing(role, ["Create"], "msdyn_ciprovider") ? 0 : 1);
    });

    it("a refused part of a change set rolls back the parts before it, and ends the batch without continue-on-error", async () => {
      const session = `s-${randomUUID()}`;
      const res = await clients.ChannelProvider.batch([
        [
          batchRequest("POST", "msdyn_sessionsdata", { msdyn_conversationid: cP1, msdyn_providersessionid: session }),
          batchRequest("POST", "msdyn_ciproviders", { msdyn_name: `Provider ${randomUUID()}` }),
        ],
        batchRequest("GET", "msdyn_kpieventdefinitions?$top=1"),
      ]);
      expect(res.statusCode, res.body).toBe(400);
      const parts = batchParts(res);
      expect(parts).toHaveLength(1);
      expectPrivilegeDenied(parts[0]!, "prvCreatemsdyn_ciprovider", "msdyn_ciprovider", principals.ChannelProvider.id);
      expect(await query(`SELECT 1 FROM msdyn_sessiondata WHERE msdyn_providersessionid = $1`, [session])).toHaveLength(0);
    });
  });

  // -------------------------------------------------------------------------

  describe("the admin API", () => {
    it.each(ROLES)("%s: GET and POST /api/admin/principals", async (role) => {
      const list = await clients[role].inject("GET", "/api/admin/principals");
      const name = `made by ${role} ${randomUUID()}`;
      const create = await clients[role].inject("POST", "/api/admin/principals", { name, roles: ["Analyst"] });
      const organizations = await clients[role].inject("GET", "/api/admin/organizations");
      if (role === "Administrator") {
        expect(list.statusCode, list.body).toBe(200);
        const ids = list.json<{ value: Array<{ id: string }> }>().value.map((p) => p.id);
        expect(ids).toEqual(expect.arrayContaining(ROLES.map((r) => principals[r].id)));
        expect(create.statusCode, create.body).toBe(201);
        expect(create.json()).toMatchObject({ principal: { name, roles: ["Analyst"] }, clientSecret: expect.any(String) });
        expect(organizations.statusCode, organizations.body).toBe(200);
      } else {
        for (const res of [list, create, organizations]) {
          expect(res.statusCode, res.body).toBe(403);
          expect(errorOf(res).code).toBe(PRIVILEGE_DENIED);
          expect(errorOf(res).message).toContain("is missing the Administrator role privilege");
          expect(errorOf(res).message).toContain(`Principal user (Id=${principals[role].id}, type=8`);
        }
        const names = (await t.app.identity.store.listPrincipals(organization.id)).map((p) => p.name);
        expect(names).not.toContain(name);
      }
    });
  });

  // -------------------------------------------------------------------------

  describe("the caller on the rows it writes", () => {
    it.each(["Administrator", "ChannelProvider"] as const)(
      "%s: createdby, ownerid and modifiedby of a created row are the caller's principal",
      async (role) => {
        const c = `c-${randomUUID()}`;
        const client = clients[role];
        const id = createdIdOf(await client.post("msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_providerid: p1 }));
        const row = (await client.get(`msdyn_conversationsdata(${id})`)).json<Body>();
        expect(row).toMatchObject({
          _createdby_value: principals[role].id,
          _ownerid_value: principals[role].id,
          _modifiedby_value: principals[role].id,
          _owningbusinessunit_value: organization.businessUnitId,
        });
        // The same through CreateMultiple and msdyn_InitLogAnalytics.
        const [bulkId] = (
          await client.post("msdyn_sessionsdata/Microsoft.Dynamics.CRM.CreateMultiple", {
            Targets: [
              {
                "@odata.type": "Microsoft.Dynamics.CRM.msdyn_sessiondata",
                msdyn_conversationid: c,
                msdyn_providersessionid: "s-1",
              },
            ],
          })
        ).json<{ Ids: string[] }>().Ids;
        expect((await client.get(`msdyn_sessionsdata(${bulkId})`)).json()).toMatchObject({
          _createdby_value: principals[role].id,
          _ownerid_value: principals[role].id,
        });
        const c2 = `c-${randomUUID()}`;
        const init = await client.post("msdyn_InitLogAnalytics", {
          data: { conversation: { conversationId: c2, providerId: p1, session: { providerSessionId: "s-1" } } },
        });
        expect(init.statusCode, init.body).toBe(200);
        const { ConversationDataId, SessionDataId } = init.json<{ ConversationDataId: string; SessionDataId: string }>();
        for (const path of [`msdyn_conversationsdata(${ConversationDataId})`, `msdyn_sessionsdata(${SessionDataId})`]) {
          expect((await client.get(path)).json(), path).toMatchObject({
            _createdby_value: principals[role].id,
            _ownerid_value: principals[role].id,
          });
        }
      },
    );

    it("an update records its caller as modifiedby and keeps createdby", async () => {
      const c = `c-${randomUUID()}`;
      const id = createdIdOf(await admin.post("msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_providerid: p1 }));
      const update = await clients.ChannelProvider.patch(
        `msdyn_conversationsdata(${id})`,
        { msdyn_channel: "chat" },
        { "if-match": "*" },
      );
      expect(update.statusCode, update.body).toBe(204);
      expect((await admin.get(`msdyn_conversationsdata(${id})`)).json()).toMatchObject({
        msdyn_channel: "chat",
        _createdby_value: principals.Administrator.id,
        _ownerid_value: principals.Administrator.id,
        _modifiedby_value: principals.ChannelProvider.id,
      });
    });
  });

  // -------------------------------------------------------------------------

  describe("provider confinement", () => {
    /** P2's conversation, with its session, participant and one KPI event, made by the administrator. */
    let c2: string;
    const theirs = {} as Record<string, string>;
    let asP1: ApiClient;

    beforeAll(async () => {
      asP1 = clients.ChannelProvider;
      c2 = await tree(p2);
      createdIdOf(
        await admin.post("msdyn_kpieventsdata", {
          msdyn_conversationid: c2,
          msdyn_providersessionid: "s-1",
          msdyn_participantid: "agent-1",
          msdyn_kpieventname: "SessionStarted",
        }),
      );
      for (const spec of SETS.filter((s) => CONVERSATION_TREE.includes(s.table))) {
        const row = (await query(`SELECT ${spec.primaryKey} AS id FROM ${spec.table} WHERE msdyn_conversationid = $1`, [c2]))[0]!;
        theirs[spec.table] = row.id as string;
      }
    });

    const TREE_SETS = () => SETS.filter((s) => CONVERSATION_TREE.includes(s.table));
    /** Every column of P2's tree, to compare before and after. */
    const snapshot = async () =>
      Promise.all(
        CONVERSATION_TREE.map((table) => query(`SELECT * FROM ${table} WHERE msdyn_conversationid = $1 ORDER BY 1`, [c2])),
      );

    const underC2 = (): Record<string, Body> => ({
      msdyn_sessiondata: { msdyn_conversationid: c2, msdyn_providersessionid: `s-${randomUUID()}` },
      msdyn_sessionparticipantdata: { msdyn_conversationid: c2, msdyn_providersessionid: "s-1", msdyn_participantid: "intruder" },
      msdyn_kpieventdata: {
        msdyn_conversationid: c2,
        msdyn_providersessionid: "s-1",
        msdyn_participantid: "agent-1",
        msdyn_kpieventname: "SessionStarted",
      },
    });

    async function expectRefusedAndUntouched(write: () => Promise<LightMyRequestResponse>, alsoAbsent?: () => Promise<void>) {
      const before = await snapshot();
      const res = await write();
      expectOutOfScope(res, p1);
      expect(await snapshot(), "P2's rows are as they were").toEqual(before);
      await alsoAbsent?.();
      return res;
    }

    it.each(["msdyn_sessiondata", "msdyn_sessionparticipantdata", "msdyn_kpieventdata"])(
      "POST of a %s under P2's conversation is refused",
      async (table) => {
        const spec = SETS.find((s) => s.table === table)!;
        await expectRefusedAndUntouched(() => asP1.post(spec.set, underC2()[table]));
      },
    );

    it("POST of a conversation of P2 is refused, and nothing is written", async () => {
      const c = `c-${randomUUID()}`;
      await expectRefusedAndUntouched(
        () => asP1.post("msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_providerid: p2 }),
        async () => expect(await countIn("msdyn_conversationdata", c)).toBe(0),
      );
      // In upper case too.
      await expectRefusedAndUntouched(() =>
        asP1.post("msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_providerid: p2.toUpperCase() }),
      );
      expect(await countIn("msdyn_conversationdata", c)).toBe(0);
    });

    it.each(["msdyn_conversationdata", "msdyn_sessiondata", "msdyn_sessionparticipantdata", "msdyn_kpieventdata"])(
      "PATCH upsert and PATCH update of P2's %s are refused",
      async (table) => {
        const spec = SETS.find((s) => s.table === table)!;
        await expectRefusedAndUntouched(() => asP1.patch(`${spec.set}(${theirs[table]})`, { [spec.text]: "P1 was here" }));
        await expectRefusedAndUntouched(() =>
          asP1.patch(`${spec.set}(${theirs[table]})`, { [spec.text]: "P1 was here" }, { "if-match": "*" }),
        );
      },
    );

    it("PATCH upsert of P2's conversation by its alternate key, and moving it to P1, are refused", async () => {
      await expectRefusedAndUntouched(() =>
        asP1.patch(`msdyn_conversationsdata(msdyn_conversationid='${c2}')`, { msdyn_channel: "P1 was here" }),
      );
      await expectRefusedAndUntouched(() =>
        asP1.patch(`msdyn_conversationsdata(${theirs.msdyn_conversationdata})`, { msdyn_providerid: p1 }),
      );
      // Its own session moved under P2's conversation.
      const own = createdIdOf(
        await asP1.post("msdyn_sessionsdata", { msdyn_conversationid: cP1, msdyn_providersessionid: `s-${randomUUID()}` }),
      );
      await expectRefusedAndUntouched(() => asP1.patch(`msdyn_sessionsdata(${own})`, { msdyn_conversationid: c2 }));
      expect(
        (await query(`SELECT msdyn_conversationid FROM msdyn_sessiondata WHERE msdyn_sessiondataid = $1`, [own]))[0],
      ).toEqual({
        msdyn_conversationid: cP1,
      });
    });

    it("a $batch change set with a write into P2's conversation is refused whole", async () => {
      const ownSession = `s-${randomUUID()}`;
      const before = await snapshot();
      const res = await asP1.batch([
        [
          batchRequest("POST", "msdyn_sessionsdata", { msdyn_conversationid: cP1, msdyn_providersessionid: ownSession }),
          batchRequest("POST", "msdyn_sessionsdata", underC2().msdyn_sessiondata),
        ],
      ]);
      expect(res.statusCode, res.body).toBe(400);
      const parts = batchParts(res);
      expect(parts).toHaveLength(1);
      expectOutOfScope(parts[0]!, p1);
      expect(await snapshot()).toEqual(before);
      expect(await query(`SELECT 1 FROM msdyn_sessiondata WHERE msdyn_providersessionid = $1`, [ownSession])).toHaveLength(0);
    });

    it("a $batch PATCH of P2's conversation and a PATCH upsert in a change set are refused", async () => {
      const before = await snapshot();
      const res = await asP1.batch(
        [
          batchRequest("PATCH", `msdyn_conversationsdata(${theirs.msdyn_conversationdata})`, { msdyn_channel: "P1" }),
          [batchRequest("PATCH", `msdyn_sessionsdata(${theirs.msdyn_sessiondata})`, { msdyn_queuename: "P1" })],
        ],
        { prefer: "odata.continue-on-error" },
      );
      const parts = batchParts(res);
      expect(parts).toHaveLength(2);
      for (const part of parts) expectOutOfScope(part, p1);
      expect(await snapshot()).toEqual(before);
    });

    it.each([
      ["msdyn_sessiondata", "sessions"],
      ["msdyn_sessionparticipantdata", "participants"],
      ["msdyn_kpieventdata", "KPI events"],
    ])("CreateMultiple of %s with one under P2's conversation writes none", async (table) => {
      const spec = SETS.find((s) => s.table === table)!;
      const ownBefore = await countIn(table, cP1);
      await expectRefusedAndUntouched(() => bulk(asP1, spec, "CreateMultiple", [spec.body(), underC2()[table]!]));
      expect(await countIn(table, cP1), "its own target is not written either").toBe(ownBefore);
    });

    it("CreateMultiple of conversations with one of P2 writes none", async () => {
      const [own, foreign] = [`c-${randomUUID()}`, `c-${randomUUID()}`];
      const spec = SETS.find((s) => s.table === "msdyn_conversationdata")!;
      await expectRefusedAndUntouched(() =>
        bulk(asP1, spec, "CreateMultiple", [
          { msdyn_conversationid: own, msdyn_providerid: p1 },
          { msdyn_conversationid: foreign, msdyn_providerid: p2 },
        ]),
      );
      expect([await countIn("msdyn_conversationdata", own), await countIn("msdyn_conversationdata", foreign)]).toEqual([0, 0]);
    });

    it("UpsertMultiple and UpdateMultiple of P2's rows, or of new rows under its conversation, are refused", async () => {
      const conversation = SETS.find((s) => s.table === "msdyn_conversationdata")!;
      const session = SETS.find((s) => s.table === "msdyn_sessiondata")!;
      await expectRefusedAndUntouched(() =>
        bulk(asP1, conversation, "UpsertMultiple", [
          { msdyn_conversationdataid: theirs.msdyn_conversationdata, msdyn_channel: "P1" },
        ]),
      );
      await expectRefusedAndUntouched(() =>
        bulk(asP1, conversation, "UpsertMultiple", [{ msdyn_conversationid: `c-${randomUUID()}`, msdyn_providerid: p2 }]),
      );
      await expectRefusedAndUntouched(() => bulk(asP1, session, "UpsertMultiple", [underC2().msdyn_sessiondata!]));
      await expectRefusedAndUntouched(() =>
        bulk(asP1, session, "UpsertMultiple", [{ msdyn_sessiondataid: randomUUID(), ...underC2().msdyn_sessiondata }]),
      );
      await expectRefusedAndUntouched(() =>
        bulk(asP1, session, "UpdateMultiple", [{ msdyn_sessiondataid: theirs.msdyn_sessiondata, msdyn_queuename: "P1" }]),
      );
    });

    it("msdyn_InitLogAnalytics into P2's conversation, or for a new conversation of P2, is refused", async () => {
      await expectRefusedAndUntouched(() =>
        asP1.post("msdyn_InitLogAnalytics", {
          data: {
            conversation: {
              conversationId: c2,
              channel: "P1 was here",
              session: { providerSessionId: "s-1", queueName: "P1", participants: [{ participantId: "intruder" }] },
            },
          },
        }),
      );
      await expectRefusedAndUntouched(() =>
        asP1.post("msdyn_InitLogAnalytics", {
          data: { conversation: { conversationId: c2, providerId: p2, session: { providerSessionId: "s-new" } } },
        }),
      );
      const c = `c-${randomUUID()}`;
      await expectRefusedAndUntouched(
        () =>
          asP1.post("msdyn_InitLogAnalytics", {
            data: { conversation: { conversationId: c, providerId: p2, session: { providerSessionId: "s-1" } } },
          }),
        async () => expect(await treeCounts(c)).toEqual([0, 0, 0, 0]),
      );
    });

    it("msdyn_LogAnalyticsEvent into P2's conversation is refused, and logs nothing (nor an event of its own naming P2)", async () => {
      await expectRefusedAndUntouched(() =>
        asP1.post("msdyn_LogAnalyticsEvent", {
          data: { conversationId: c2, providerSessionId: "s-1", participantId: "agent-1", events: [{}, {}] },
          eventName: "SessionStarted",
          correlationId: randomUUID(),
        }),
      );
      // Nor a KPI event in its own conversation naming P2 as its provider.
      const ownBefore = await countIn("msdyn_kpieventdata", cP1);
      const res = await asP1.post("msdyn_kpieventsdata", {
        msdyn_conversationid: cP1,
        msdyn_providersessionid: "s-1",
        msdyn_participantid: "agent-1",
        msdyn_kpieventname: "SessionStarted",
        msdyn_ProviderId: p2,
      });
      expectOutOfScope(res, p1);
      expect(await countIn("msdyn_kpieventdata", cP1)).toBe(ownBefore);
    });

    it("P2's rows are not there for P1: collections, filters, counts, FetchXML and keys", async () => {
      for (const spec of TREE_SETS()) {
        const id = theirs[spec.table]!;
        // The administrator sees them: the checks below would see a leak.
        expect((await admin.get(`${spec.set}(${id})`)).statusCode).toBe(200);

        const byKey = await asP1.get(`${spec.set}(${id})`);
        expect(byKey.statusCode, byKey.body).toBe(404);
        expect(errorOf(byKey).code).toBe(OBJECT_DOES_NOT_EXIST);

        const all = await asP1.get(`${spec.set}?$select=${spec.primaryKey},msdyn_conversationid`);
        expect(all.statusCode, all.body).toBe(200);
        const rows = all.json<{ value: Body[] }>().value;
        expect(all.json<Body>()["@odata.nextLink"]).toBeUndefined();
        expect(rows.length).toBeGreaterThan(0);
        expect(rows.map((r) => r[spec.primaryKey])).not.toContain(id);
        expect(rows.map((r) => r.msdyn_conversationid)).not.toContain(c2);

        const filtered = await asP1.get(
          `${spec.set}?$filter=${encodeURIComponent(`msdyn_conversationid eq '${c2}' or ${spec.primaryKey} eq ${id}`)}&$count=true`,
        );
        expect(filtered.json()).toMatchObject({ value: [], "@odata.count": 0 });

        const count = await asP1.get(`${spec.set}/$count`);
        const adminCount = await admin.get(`${spec.set}/$count`);
        expect(Number(count.body)).toBeLessThan(Number(adminCount.body));
        expect(Number(count.body)).toBe(rows.length);

        const fetchXml =
          `<fetch><entity name="${spec.table}"><attribute name="${spec.primaryKey}" />` +
          `<filter><condition attribute="msdyn_conversationid" operator="eq" value="${c2}" /></filter></entity></fetch>`;
        const fetched = await asP1.get(`${spec.set}?fetchXml=${encodeURIComponent(fetchXml)}`);
        expect(fetched.statusCode, fetched.body).toBe(200);
        expect(fetched.json<Body>().value).toEqual([]);
      }
      const byAlternateKey = await asP1.get(`msdyn_conversationsdata(msdyn_conversationid='${c2}')`);
      expect(byAlternateKey.statusCode).toBe(404);
      const expanded = await asP1.get(`msdyn_conversationsdata(${theirs.msdyn_conversationdata})?$expand=msdyn_sessions`);
      expect(expanded.statusCode).toBe(404);
    });

    it("its own tree stays its own: P1's writes and reads of it succeed", async () => {
      const c = `c-${randomUUID()}`;
      createdIdOf(await asP1.post("msdyn_conversationsdata", { msdyn_conversationid: c }));
      createdIdOf(await asP1.post("msdyn_sessionsdata", { msdyn_conversationid: c, msdyn_providersessionid: "s-1" }));
      const row = await asP1.get(
        `msdyn_conversationsdata(msdyn_conversationid='${c}')?$expand=msdyn_sessions($select=msdyn_providersessionid)`,
      );
      expect(row.statusCode, row.body).toBe(200);
      expect(row.json()).toMatchObject({ msdyn_providerid: p1, msdyn_sessions: [{ msdyn_providersessionid: "s-1" }] });
    });
  });
});
