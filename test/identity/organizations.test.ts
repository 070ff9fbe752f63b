/**
 * Organisations (issue 11): a database each, so no request of one organisation reads,
 * changes, expands to, binds to or counts another's rows. Organisation A is the default
 * one; B is created through POST /api/admin/organizations and reached through its path
 * prefix /org/<name>/ and its own URL (host). Then a fast-check property: random
 * sequences of creates, reads, updates, upserts, deletes and queries by A and by B, each
 * checked against a model of what that organisation wrote, and no organisation ever sees
 * an id that only the other created. B's database is dropped at the end.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OrganizationDirectory } from "../../src/service/organizations.js";
import { useTestApp } from "../helpers/app.js";
import { withAdminClient } from "../helpers/database.js";
import { withDatabase } from "../helpers/database-url.js";
import { type TestPrincipal, bearer, testDataDir, testPrincipal, tokenOf } from "../helpers/identity.js";
import { type Body, OBJECT_DOES_NOT_EXIST } from "../helpers/records.js";
import {
  type ApiClient,
  apiClient,
  batchParts,
  batchRequest,
  createdIdOf,
  errorOf,
  organizationResource,
} from "../helpers/tenancy.js";

type Org = "A" | "B";

const B_NAME = "tenant-b";
const B_PREFIX = `/org/${B_NAME}`;
const B_HOST = "tenant-b.localhost";

describe("organisations: one database each", () => {
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir() });
  let aAdmin: TestPrincipal;
  let bAdmin: TestPrincipal;
  /** A's administrator at A; B's administrator at B through its prefix, and through its host. */
  let a: ApiClient;
  let b: ApiClient;
  let bByHost: ApiClient;
  let aOrganization: { id: string; businessUnitId: string };
  let bOrganization: { id: string; businessUnitId: string; databaseName: string };
  let aToken: string;
  let bToken: string;
  // Kept for afterAll, which may run after the app's handle is gone.
  let directory: OrganizationDirectory | undefined;
  let bDatabase: string | undefined;

  beforeAll(async () => {
    const { app } = t;
    directory = app.identity.organizations;
    aAdmin = await testPrincipal(app, ["Administrator"]);
    aToken = await tokenOf(app, aAdmin);
    a = apiClient(t, aToken);
    const created = await a.inject("POST", "/api/admin/organizations", { name: B_NAME, url: `http://${B_HOST}` });
    expect(created.statusCode, created.body).toBe(201);
    const body = created.json<{
      organization: { id: string; name: string; url: string; isDefault: boolean };
      administrator: { id: string; clientId: string; roles: string[] };
      clientSecret: string;
    }>();
    expect(body.organization).toMatchObject({ name: B_NAME, url: `http://${B_HOST}`, isDefault: false });
    expect(body.administrator.roles).toEqual(["Administrator"]);
    const row = (await app.identity.store.organizationById(body.organization.id))!;
    bDatabase = row.databaseName!;
    bOrganization = { id: row.id, businessUnitId: row.businessUnitId, databaseName: row.databaseName! };
    aOrganization = await app.identity.organizations.defaultOrganization();
    bAdmin = {
      id: body.administrator.id,
      clientId: body.administrator.clientId,
      clientSecret: body.clientSecret,
      tenant: body.organization.id,
    };
    bToken = await tokenOf(app, bAdmin, organizationResource(B_PREFIX));
    b = apiClient(t, bToken, { prefix: B_PREFIX });
    bByHost = apiClient(t, await tokenOf(app, bAdmin, `http://${B_HOST}`), { host: B_HOST });
  });

  afterAll(async () => {
    // B's pool first (the app's close does it again, harmlessly), then its database.
    await directory?.close();
    if (!bDatabase) return;
    const name = bDatabase;
    await withAdminClient(async (client) => {
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      const { rows } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
      expect(rows, "B's database is dropped").toHaveLength(0);
    });
  });

  /** B's database, directly. */
  async function inB<T extends pg.QueryResultRow = Body>(sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: withDatabase(t.testDb.url, bOrganization.databaseName) });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }
  const inA = async <T extends pg.QueryResultRow = Body>(sql: string, params: unknown[] = []) =>
    (await t.testDb.pool.query<T>(sql, params)).rows;

  const provider = async (client: ApiClient, name = `Provider ${randomUUID()}`) =>
    createdIdOf(await client.post("msdyn_ciproviders", { msdyn_name: name }));
  const json = (res: LightMyRequestResponse) => {
    expect(res.statusCode, res.body).toBe(200);
    return res.json<Body>();
  };
  const valueOf = (res: LightMyRequestResponse) => json(res).value as Body[];
  function expectMissing(res: LightMyRequestResponse) {
    expect(res.statusCode, res.body).toBe(404);
    expect(errorOf(res).code).toBe(OBJECT_DOES_NOT_EXIST);
  }

  // -------------------------------------------------------------------------

  describe("creating an organisation", () => {
    it("creates and migrates a database of its own, and lists it", async () => {
      const { rows } = await t.db.pool.query("SELECT datname FROM pg_database WHERE datname = $1", [bOrganization.databaseName]);
      expect(rows).toHaveLength(1);
      expect(bOrganization.databaseName).not.toBe(t.testDb.name);
      expect(bOrganization.databaseName.startsWith(`${t.testDb.name}_org_`)).toBe(true);
      // Migrated, with the seeded system KPI event definitions, and no rows of A's.
      const [seeded] = await inB<{ n: number }>("SELECT count(*)::int AS n FROM msdyn_kpieventdefinition");
      const [inDefault] = await inA<{ n: number }>("SELECT count(*)::int AS n FROM msdyn_kpieventdefinition");
      expect(seeded!.n).toBeGreaterThan(0);
      expect(seeded!.n).toBeLessThanOrEqual(inDefault!.n);

      const listed = json(await a.inject("GET", "/api/admin/organizations")).value as Body[];
      expect(listed.map((o) => [o.name, o.isDefault])).toEqual(expect.arrayContaining([[B_NAME, false]]));
      expect(listed.filter((o) => o.isDefault)).toHaveLength(1);
    });

    it("refuses a second organisation of the same name, and only the default organisation's administrators create them", async () => {
      const again = await a.inject("POST", "/api/admin/organizations", { name: B_NAME });
      expect(again.statusCode, again.body).toBe(412);
      const byB = await b.inject("POST", "/api/admin/organizations", { name: "tenant-c" });
      expect(byB.statusCode, byB.body).toBe(403);
      expect(await t.app.identity.store.organizationByName("tenant-c")).toBeNull();
    });

    it("answers at its prefix and its URL as its own: WhoAmI is B's administrator in B", async () => {
      for (const client of [b, bByHost]) {
        expect(json(await client.get("WhoAmI"))).toMatchObject({
          UserId: bAdmin.id,
          BusinessUnitId: bOrganization.businessUnitId,
          OrganizationId: bOrganization.id,
        });
      }
      expect(json(await a.get("WhoAmI"))).toMatchObject({
        UserId: aAdmin.id,
        BusinessUnitId: aOrganization.businessUnitId,
        OrganizationId: aOrganization.id,
      });
      expect(bOrganization.businessUnitId).not.toBe(aOrganization.businessUnitId);
      // B's principals are B's; A's list has none of them.
      const bPrincipals = (json(await b.inject("GET", "/api/admin/principals")).value as Body[]).map((p) => p.id);
      const aPrincipals = (json(await a.inject("GET", "/api/admin/principals")).value as Body[]).map((p) => p.id);
      expect(bPrincipals).toContain(bAdmin.id);
      expect(bPrincipals).not.toContain(aAdmin.id);
      expect(aPrincipals).not.toContain(bAdmin.id);
    });

    it("an unknown prefix is a 404", async () => {
      const res = await t.app.inject({ method: "GET", url: "/org/no-such-org/api/data/v9.2/WhoAmI", headers: bearer(aToken) });
      expect(res.statusCode, res.body).toBe(404);
    });
  });

  // -------------------------------------------------------------------------

  describe("tokens are for one organisation", () => {
    const at = (token: string, options: { prefix?: string; host?: string }) => apiClient(t, token, options).get("WhoAmI");

    it("A's token at B is a 401 (audience and issuer), and B's at A", async () => {
      for (const res of [
        await at(aToken, { prefix: B_PREFIX }),
        await at(aToken, { host: B_HOST }),
        await at(bToken, {}),
        // B's token for its prefix is not one for its URL.
        await at(bToken, { host: B_HOST }),
      ]) {
        expect(res.statusCode, res.body).toBe(401);
        expect(String(res.headers["www-authenticate"])).toMatch(/^Bearer /);
      }
      // And for the admin API.
      expect((await apiClient(t, aToken, { prefix: B_PREFIX }).inject("GET", "/api/admin/principals")).statusCode).toBe(401);
    });

    it("a principal of B gets no token from A's issuer, and an A principal made for B's id is B's", async () => {
      await expect(tokenOf(t.app, { ...bAdmin, tenant: aOrganization.id })).rejects.toThrow(/answered 4\d\d/);
      const bAnalyst = await testPrincipal(t.app, ["Analyst"], { organizationId: bOrganization.id });
      const token = await tokenOf(t.app, bAnalyst, organizationResource(B_PREFIX));
      expect(json(await at(token, { prefix: B_PREFIX }))).toMatchObject({
        UserId: bAnalyst.id,
        OrganizationId: bOrganization.id,
      });
      expect((await at(token, {})).statusCode).toBe(401);
    });
  });

  // -------------------------------------------------------------------------

  describe("A cannot reach B's rows", () => {
    let bProvider: string;
    let bProviderName: string;
    /** B's conversation (natural key k), with session s-1 and participant agent-1. */
    let k: string;
    let bConversation: string;
    let bSession: string;
    /** A's own conversation with the same natural key, without sessions. */
    let aConversation: string;
    let aCountsBefore: number[];
    const SETS = ["msdyn_ciproviders", "msdyn_conversationsdata", "msdyn_sessionsdata", "msdyn_sessionparticipantsdata"];
    const counts = async (client: ApiClient) =>
      Promise.all(SETS.map(async (set) => Number((await client.get(`${set}/$count`)).body)));

    beforeAll(async () => {
      aCountsBefore = await counts(a);
      bProviderName = `B provider ${randomUUID()}`;
      bProvider = await provider(b, bProviderName);
      expect((await b.patch(`msdyn_ciproviders(${bProvider})`, { msdyn_enableanalytics: true })).statusCode).toBe(204);
      k = `c-${randomUUID()}`;
      bConversation = createdIdOf(
        await b.post("msdyn_conversationsdata", { msdyn_conversationid: k, msdyn_name: k, msdyn_providerid: bProvider }),
      );
      bSession = createdIdOf(await b.post("msdyn_sessionsdata", { msdyn_conversationid: k, msdyn_providersessionid: "s-1" }));
      createdIdOf(
        await b.post("msdyn_sessionparticipantsdata", {
          msdyn_conversationid: k,
          msdyn_providersessionid: "s-1",
          msdyn_participantid: "agent-1",
        }),
      );
      createdIdOf(
        await b.post("msdyn_kpieventsdata", {
          msdyn_conversationid: k,
          msdyn_providersessionid: "s-1",
          msdyn_participantid: "agent-1",
          msdyn_kpieventname: "SessionStarted",
        }),
      );
      aConversation = createdIdOf(await a.post("msdyn_conversationsdata", { msdyn_conversationid: k, msdyn_name: "A's own" }));
    });

    /** B's rows as B reads them, to compare before and after A's attempts. */
    const bRows = async () => [
      json(await b.get(`msdyn_ciproviders(${bProvider})`)),
      json(await b.get(`msdyn_conversationsdata(${bConversation})?$expand=msdyn_sessions`)),
      json(await b.get(`msdyn_sessionsdata(${bSession})`)),
    ];

    it("B's rows are in B's database only, written by B's principal", async () => {
      expect(await inA("SELECT 1 FROM msdyn_ciprovider WHERE msdyn_name = $1", [bProviderName])).toHaveLength(0);
      expect(await inA("SELECT 1 FROM msdyn_sessiondata WHERE msdyn_sessiondataid = $1", [bSession])).toHaveLength(0);
      expect(await inB("SELECT msdyn_ciproviderid FROM msdyn_ciprovider WHERE msdyn_name = $1", [bProviderName])).toEqual([
        { msdyn_ciproviderid: bProvider },
      ]);
      const [row] = await inB(
        "SELECT createdby, ownerid, owningbusinessunit FROM msdyn_conversationdata WHERE msdyn_conversationdataid = $1",
        [bConversation],
      );
      expect(row).toEqual({ createdby: bAdmin.id, ownerid: bAdmin.id, owningbusinessunit: bOrganization.businessUnitId });
      // The same natural key is A's own conversation in A.
      expect(
        await inA("SELECT msdyn_conversationdataid FROM msdyn_conversationdata WHERE msdyn_conversationid = $1", [k]),
      ).toEqual([{ msdyn_conversationdataid: aConversation }]);
    });

    it("by key, by alternate key and through a navigation property: 404", async () => {
      expectMissing(await a.get(`msdyn_ciproviders(${bProvider})`));
      expectMissing(await a.get(`msdyn_conversationsdata(${bConversation})`));
      expectMissing(await a.get(`msdyn_sessionsdata(${bSession})`));
      expectMissing(await a.get(`msdyn_sessionsdata(msdyn_conversationid='${k}',msdyn_providersessionid='s-1')`));
      expectMissing(await a.get(`msdyn_sessionsdata(${bSession})/msdyn_providersessionid`));
      expectMissing(await a.get(`msdyn_conversationsdata(${bConversation})/msdyn_sessions`));
      // The alternate key finds A's own conversation.
      expect(json(await a.get(`msdyn_conversationsdata(msdyn_conversationid='${k}')`)).msdyn_conversationdataid).toBe(
        aConversation,
      );
    });

    it("$filter on B's ids and names, $count, $apply and FetchXML find nothing of B's", async () => {
      const filter = (expression: string) => `$filter=${encodeURIComponent(expression)}&$count=true`;
      for (const [set, expression] of [
        ["msdyn_ciproviders", `msdyn_ciproviderid eq ${bProvider} or msdyn_name eq '${bProviderName}'`],
        ["msdyn_conversationsdata", `msdyn_conversationdataid eq ${bConversation} or msdyn_providerid eq '${bProvider}'`],
        ["msdyn_sessionsdata", `msdyn_sessiondataid eq ${bSession} or msdyn_conversationid eq '${k}'`],
        ["msdyn_sessionparticipantsdata", `msdyn_conversationid eq '${k}'`],
      ] as const) {
        expect(json(await a.get(`${set}?${filter(expression)}`)), set).toMatchObject({ value: [], "@odata.count": 0 });
        // B finds them.
        expect(valueOf(await b.get(`${set}?${filter(expression)}`)).length, set).toBeGreaterThan(0);
      }
      const aggregate = valueOf(
        await a.get(
          `msdyn_sessionsdata?$apply=${encodeURIComponent(`filter(msdyn_conversationid eq '${k}')/aggregate($count as n)`)}`,
        ),
      );
      expect(aggregate).toEqual([expect.objectContaining({ n: 0 })]);
      const fetchXml =
        `<fetch><entity name="msdyn_ciprovider"><attribute name="msdyn_name" />` +
        `<filter><condition attribute="msdyn_ciproviderid" operator="eq" value="${bProvider}" /></filter></entity></fetch>`;
      expect(valueOf(await a.get(`msdyn_ciproviders?fetchXml=${encodeURIComponent(fetchXml)}`))).toEqual([]);
      // A's counts moved only by its own conversation.
      const expected = [...aCountsBefore];
      expected[1] = expected[1]! + 1;
      expect(await counts(a)).toEqual(expected);
    });

    it("$expand from A's conversation of the same natural key has none of B's sessions", async () => {
      const mine = json(
        await a.get(`msdyn_conversationsdata(msdyn_conversationid='${k}')?$expand=msdyn_sessions,msdyn_kpievents`),
      );
      expect(mine).toMatchObject({ msdyn_conversationdataid: aConversation, msdyn_sessions: [], msdyn_kpievents: [] });
      const listed = valueOf(
        await a.get(
          `msdyn_conversationsdata?$filter=${encodeURIComponent(`msdyn_conversationid eq '${k}'`)}&$expand=msdyn_sessions`,
        ),
      );
      expect(listed).toEqual([expect.objectContaining({ msdyn_conversationdataid: aConversation, msdyn_sessions: [] })]);
      const theirs = json(await b.get(`msdyn_conversationsdata(${bConversation})?$expand=msdyn_sessions,msdyn_kpievents`));
      expect((theirs.msdyn_sessions as Body[]).map((s) => s.msdyn_sessiondataid)).toEqual([bSession]);
      expect(theirs.msdyn_kpievents).toHaveLength(1);
    });

    it("PATCH with B's id creates A's own row and leaves B's as it was; If-Match: * and DELETE are 404", async () => {
      const before = await bRows();
      const upsert = await a.patch(`msdyn_ciproviders(${bProvider})`, { msdyn_name: "A's namesake" });
      expect(upsert.statusCode, upsert.body).toBe(204);
      expect(json(await a.get(`msdyn_ciproviders(${bProvider})`))).toMatchObject({
        msdyn_ciproviderid: bProvider,
        msdyn_name: "A's namesake",
      });
      expectMissing(await a.patch(`msdyn_conversationsdata(${bConversation})`, { msdyn_channel: "A" }, { "if-match": "*" }));
      expectMissing(await a.patch(`msdyn_sessionsdata(${bSession})`, { msdyn_queuename: "A" }, { "if-match": "*" }));
      expectMissing(await a.del(`msdyn_sessionsdata(${bSession})`));
      expectMissing(await a.del(`msdyn_conversationsdata(${bConversation})`));
      const bulk = await a.post("msdyn_sessionsdata/Microsoft.Dynamics.CRM.UpdateMultiple", {
        Targets: [
          { "@odata.type": "Microsoft.Dynamics.CRM.msdyn_sessiondata", msdyn_sessiondataid: bSession, msdyn_queuename: "A" },
        ],
      });
      expect(bulk.statusCode, bulk.body).toBe(404);
      expect(await bRows()).toEqual(before);
      expect(await inB("SELECT msdyn_name FROM msdyn_ciprovider WHERE msdyn_ciproviderid = $1", [bProvider])).toEqual([
        { msdyn_name: bProviderName },
      ]);
      // Deleting A's namesake leaves B's.
      expect((await a.del(`msdyn_ciproviders(${bProvider})`)).statusCode).toBe(204);
      expect(json(await b.get(`msdyn_ciproviders(${bProvider})`)).msdyn_name).toBe(bProviderName);
    });

    it("$batch parts with B's ids are 404s, and change nothing of B's", async () => {
      const before = await bRows();
      const res = await a.batch(
        [
          batchRequest("GET", `msdyn_sessionsdata(${bSession})`),
          [batchRequest("PATCH", `msdyn_sessionsdata(${bSession})`, { msdyn_queuename: "A" }, { "If-Match": "*" })],
          batchRequest("DELETE", `msdyn_conversationsdata(${bConversation})`),
          batchRequest("GET", `msdyn_sessionsdata?$filter=${encodeURIComponent(`msdyn_conversationid eq '${k}'`)}`),
        ],
        { prefer: "odata.continue-on-error" },
      );
      expect(res.statusCode, res.body).toBe(200);
      const parts = batchParts(res);
      expect(parts.map((p) => p.status)).toEqual([404, 404, 404, 200]);
      for (const part of parts.slice(0, 3)) expect(errorOf(part).code).toBe(OBJECT_DOES_NOT_EXIST);
      expect(parts[3]!.json!.value).toEqual([]);
      expect(await bRows()).toEqual(before);
    });

    it("binding to B's rows from A finds them missing", async () => {
      // A lookup to B's provider: msdyn_providerid is no navigation property to bind.
      const c = `c-${randomUUID()}`;
      const bound = await a.post("msdyn_conversationsdata", {
        msdyn_conversationid: c,
        "msdyn_providerid@odata.bind": `/msdyn_ciproviders(${bProvider})`,
      });
      expect(bound.statusCode, bound.body).toBe(400);
      // A session under B's conversation, which A does not have.
      const kOnlyInB = `c-${randomUUID()}`;
      createdIdOf(await b.post("msdyn_conversationsdata", { msdyn_conversationid: kOnlyInB, msdyn_providerid: bProvider }));
      const orphan = await a.post("msdyn_sessionsdata", { msdyn_conversationid: kOnlyInB, msdyn_providersessionid: "s-1" });
      expect(orphan.statusCode, orphan.body).toBe(400);
      expect(errorOf(orphan).code).toBe(OBJECT_DOES_NOT_EXIST);
      // A conversation naming B's (enabled) provider: its KPI events find no such provider.
      createdIdOf(await a.post("msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_providerid: bProvider }));
      createdIdOf(await a.post("msdyn_sessionsdata", { msdyn_conversationid: c, msdyn_providersessionid: "s-1" }));
      const event = await a.post("msdyn_kpieventsdata", {
        msdyn_conversationid: c,
        msdyn_providersessionid: "s-1",
        msdyn_kpieventname: "SessionStarted",
        msdyn_ProviderId: bProvider,
      });
      expect(event.statusCode, event.body).toBe(403);
      expect(errorOf(event).message).toContain(`The provider '${bProvider}' does not exist`);
      expect(await inA("SELECT 1 FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1", [c])).toHaveLength(0);
      expect(await inA("SELECT 1 FROM msdyn_sessiondata WHERE msdyn_conversationid = $1", [kOnlyInB])).toHaveLength(0);
    });

    it("and B cannot reach A's", async () => {
      const aProviderName = `A provider ${randomUUID()}`;
      const aProvider = await provider(a, aProviderName);
      expectMissing(await b.get(`msdyn_ciproviders(${aProvider})`));
      expectMissing(await bByHost.get(`msdyn_ciproviders(${aProvider})`));
      expectMissing(await b.del(`msdyn_ciproviders(${aProvider})`));
      expectMissing(await b.patch(`msdyn_conversationsdata(${aConversation})`, { msdyn_channel: "B" }, { "if-match": "*" }));
      expect(valueOf(await b.get(`msdyn_ciproviders?$filter=${encodeURIComponent(`msdyn_name eq '${aProviderName}'`)}`))).toEqual(
        [],
      );
      // B's conversation of key k is B's, with B's session; A's namesake is not there.
      const theirs = valueOf(
        await b.get(`msdyn_conversationsdata?$filter=${encodeURIComponent(`msdyn_conversationid eq '${k}'`)}`),
      );
      expect(theirs.map((r) => r.msdyn_conversationdataid)).toEqual([bConversation]);
      expect(json(await a.get(`msdyn_ciproviders(${aProvider})`)).msdyn_name).toBe(aProviderName);
      expect(await inB("SELECT 1 FROM msdyn_ciprovider WHERE msdyn_ciproviderid = $1", [aProvider])).toHaveLength(0);
    });
  });

  // -------------------------------------------------------------------------

  describe("property: random operations by A and B", () => {
    type SetName = "msdyn_ciproviders" | "msdyn_conversationsdata";
    const PRIMARY_KEY: Record<SetName, string> = {
      msdyn_ciproviders: "msdyn_ciproviderid",
      msdyn_conversationsdata: "msdyn_conversationdataid",
    };
    type Op =
      | { kind: "create"; org: Org; set: SetName; reuseKey: number | undefined }
      | { kind: "retrieve" | "update" | "upsert" | "delete" | "alternateKey"; org: Org; pick: number }
      | { kind: "query"; org: Org; set: SetName };

    const orgArb = fc.constantFrom<Org>("A", "B");
    const setArb = fc.constantFrom<SetName>("msdyn_ciproviders", "msdyn_conversationsdata");
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant("create" as const),
          org: orgArb,
          set: setArb,
          reuseKey: fc.option(fc.nat(), { nil: undefined }),
        }),
      },
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constantFrom(
            "retrieve" as const,
            "update" as const,
            "upsert" as const,
            "delete" as const,
            "alternateKey" as const,
          ),
          org: orgArb,
          pick: fc.nat(),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("query" as const), org: orgArb, set: setArb }) },
    );
    /** Each run starts with a provider and a conversation of each organisation, for the others to aim at. */
    const SEED: Op[] = (["A", "B"] as const).flatMap((org) =>
      (["msdyn_ciproviders", "msdyn_conversationsdata"] as const).map((set) => ({
        kind: "create" as const,
        org,
        set,
        reuseKey: undefined,
      })),
    );

    interface ModelRow {
      set: SetName;
      id: string;
      name: string;
      conversationId?: string;
    }

    it("each organisation sees exactly what it wrote, and never an id only the other created", { timeout: 180_000 }, async () => {
      const clientOf = (org: Org) => (org === "A" ? a : b);
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 15 }), async (ops) => {
          const run = `prop-${randomUUID().slice(0, 8)}`;
          let counter = 0;
          const nextName = () => `${run}-${++counter}`;
          const model: Record<Org, Map<string, ModelRow>> = { A: new Map(), B: new Map() };
          const created: Record<Org, Set<string>> = { A: new Set(), B: new Set() };
          const seen: Record<Org, Set<string>> = { A: new Set(), B: new Set() };
          /** Every row any organisation created (to aim the other's requests at). */
          const pool: Array<{ set: SetName; id: string }> = [];
          const conversationIds: string[] = [];
          const keyOf = (set: SetName, id: string) => `${set}(${id})`;
          const ownConversation = (org: Org, conversationId: string) =>
            [...model[org].values()].find(
              (row) => row.set === "msdyn_conversationsdata" && row.conversationId === conversationId,
            );

          async function query(org: Org, set: SetName) {
            const pk = PRIMARY_KEY[set];
            const filter = encodeURIComponent(`startswith(msdyn_name,'${run}')`);
            const body = json(await clientOf(org).get(`${set}?$select=${pk},msdyn_name&$filter=${filter}&$count=true`));
            const rows = body.value as Body[];
            for (const row of rows) seen[org].add(row[pk] as string);
            const expected = [...model[org].values()].filter((row) => row.set === set);
            expect(rows.map((row) => [row[pk], row.msdyn_name]).sort(), `${org} queries ${set}`).toEqual(
              expected.map((row) => [row.id, row.name]).sort(),
            );
            expect(body["@odata.count"]).toBe(expected.length);
          }

          for (const op of [...SEED, ...ops]) {
            const client = clientOf(op.org);
            const own = model[op.org];
            if (op.kind === "create") {
              const name = nextName();
              let conversationId: string | undefined;
              const body: Body = { msdyn_name: name };
              if (op.set === "msdyn_conversationsdata") {
                conversationId =
                  op.reuseKey !== undefined && conversationIds.length
                    ? conversationIds[op.reuseKey % conversationIds.length]!
                    : `c-${run}-${counter}`;
                body.msdyn_conversationid = conversationId;
              }
              const res = await client.post(op.set, body);
              if (conversationId && ownConversation(op.org, conversationId)) {
                // Its own natural key again: a duplicate; the other organisation's does not count.
                expect(res.statusCode, res.body).toBe(412);
                continue;
              }
              const id = createdIdOf(res);
              own.set(keyOf(op.set, id), { set: op.set, id, name, conversationId });
              created[op.org].add(id);
              seen[op.org].add(id);
              pool.push({ set: op.set, id });
              if (conversationId && !conversationIds.includes(conversationId)) conversationIds.push(conversationId);
            } else if (op.kind === "query") {
              await query(op.org, op.set);
            } else if (op.kind === "alternateKey") {
              if (!conversationIds.length) continue;
              const conversationId = conversationIds[op.pick % conversationIds.length]!;
              const res = await client.get(
                `msdyn_conversationsdata(msdyn_conversationid='${conversationId}')?$select=msdyn_name`,
              );
              const mine = ownConversation(op.org, conversationId);
              if (!mine) {
                expectMissing(res);
                continue;
              }
              expect(json(res)).toMatchObject({ msdyn_conversationdataid: mine.id, msdyn_name: mine.name });
              seen[op.org].add(mine.id);
            } else {
              if (!pool.length) continue;
              const target = pool[op.pick % pool.length]!;
              const key = keyOf(target.set, target.id);
              const mine = own.get(key);
              const path = `${target.set}(${target.id})`;
              if (op.kind === "retrieve") {
                const res = await client.get(`${path}?$select=msdyn_name`);
                if (!mine) {
                  expectMissing(res);
                  continue;
                }
                expect(json(res)).toMatchObject({ [PRIMARY_KEY[target.set]]: target.id, msdyn_name: mine.name });
                seen[op.org].add(target.id);
              } else if (op.kind === "update") {
                const name = nextName();
                const res = await client.patch(path, { msdyn_name: name }, { "if-match": "*" });
                if (!mine) {
                  expectMissing(res);
                  continue;
                }
                expect(res.statusCode, res.body).toBe(204);
                mine.name = name;
              } else if (op.kind === "upsert") {
                const name = nextName();
                const body: Body = { msdyn_name: name };
                let conversationId = mine?.conversationId;
                if (!mine && target.set === "msdyn_conversationsdata") {
                  conversationId = `c-${run}-${counter}`;
                  body.msdyn_conversationid = conversationId;
                }
                const res = await client.patch(path, body);
                expect(res.statusCode, res.body).toBe(204);
                if (mine) mine.name = name;
                else {
                  // A row of its own with the other organisation's id: the other's is untouched.
                  own.set(key, { set: target.set, id: target.id, name, conversationId });
                  created[op.org].add(target.id);
                  if (conversationId) conversationIds.push(conversationId);
                }
              } else {
                const res = await client.del(path);
                if (!mine) {
                  expectMissing(res);
                  continue;
                }
                expect(res.statusCode, res.body).toBe(204);
                own.delete(key);
              }
            }
          }

          for (const org of ["A", "B"] as const) {
            for (const set of ["msdyn_ciproviders", "msdyn_conversationsdata"] as const) await query(org, set);
          }
          for (const [org, other] of [
            ["A", "B"],
            ["B", "A"],
          ] as const) {
            const onlyOthers = [...created[other]].filter((id) => !created[org].has(id));
            expect(
              [...seen[org]].filter((id) => onlyOthers.includes(id)),
              `ids only ${other} created that ${org} saw`,
            ).toEqual([]);
          }
        }),
        { numRuns: 20, interruptAfterTimeLimit: 120_000 },
      );
    });
  });
});
