/**
 * The query side of the contract (DESIGN.md "The Dataverse contract"): the real npm client
 * `dynamics-web-api` (v2.5.0), unmodified, against the app listening on loopback —
 * retrieveMultiple with options and paging, retrieveAll, count, countAll, and, once the
 * $metadata route exists, retrieveCsdlMetadata and callFunction("WhoAmI")
 * (shared/reference/dataverse-webapi.md §3, §8, §9).
 */
import { testDataDir } from "../helpers/identity.js";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type { DynamicsWebApi } from "dynamics-web-api";
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { listenWithWebApi, webApiFamily } from "../helpers/web-api.js";

const HAS_METADATA_ROUTE = existsSync(new URL("../../src/routes/metadata.ts", import.meta.url));
const EVENTS = 10;

type Row = Record<string, unknown>;

describe("dynamics-web-api (v2.5.0) queries against the emulator", () => {
  // Authenticated, as users run it: a bearer token through onTokenRefresh (test/helpers/web-api.ts).
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir() });
  let serverUrl: string;
  let api: DynamicsWebApi;
  let userId: string;
  const conversationId = `c-${randomUUID()}`;
  /** Request lines the server received, for checking how the client paged. */
  const requests: string[] = [];
  const filter = `msdyn_conversationid eq '${conversationId}'`;
  /** Event ids by importsequencenumber (1…10). */
  const eventIds = new Map<number, string>();

  beforeAll(async () => {
    ({ serverUrl, api, userId } = await listenWithWebApi(t));
    t.app.server.prependListener("request", (request: IncomingMessage) => requests.push(`${request.method} ${request.url}`));
    await webApiFamily(api, conversationId);
    for (let n = 1; n <= EVENTS; n++) {
      const id = await api.create<Row, string>({
        collection: "msdyn_kpieventsdata",
        data: {
          msdyn_conversationid: conversationId,
          msdyn_providersessionid: "s-1",
          msdyn_kpieventname: n % 2 ? "SessionStarted" : "SessionClosed",
          msdyn_kpieventreason: `reason ${n}`,
          importsequencenumber: n,
        },
      });
      eventIds.set(n, id);
    }
  });

  const descending = (from: number, to: number) => Array.from({ length: from - to + 1 }, (_, i) => eventIds.get(from - i));

  it("retrieveMultiple with select, filter, orderBy, count and maxPageSize gives oDataCount and oDataNextLink; the link reads the next page", async () => {
    const request = {
      collection: "msdyn_kpieventsdata",
      select: ["msdyn_kpieventreason", "importsequencenumber"],
      filter,
      orderBy: ["importsequencenumber desc"],
      count: true,
      maxPageSize: 4,
    };
    const first = await api.retrieveMultiple<Row>(request);
    expect(first.oDataCount).toBe(EVENTS);
    expect(first.value.map((r) => r.msdyn_kpieventdataid)).toEqual(descending(10, 7));
    expect(first.value[0]).toMatchObject({ msdyn_kpieventreason: "reason 10", importsequencenumber: 10 });
    expect(first.value[0]).not.toHaveProperty("msdyn_kpieventname");
    expect(first.oDataContext).toBe(
      `${serverUrl}/api/data/v9.2/$metadata#msdyn_kpieventsdata(msdyn_kpieventreason,importsequencenumber,msdyn_kpieventdataid)`,
    );
    expect(first.oDataNextLink).toEqual(expect.any(String));
    expect(first.oDataNextLink!.startsWith(`${serverUrl}/api/data/v9.2/msdyn_kpieventsdata?`)).toBe(true);
    expect(new URL(first.oDataNextLink!).searchParams.get("$skiptoken")).toEqual(expect.any(String));

    const second = await api.retrieveMultiple<Row>(request, first.oDataNextLink);
    expect(second.value.map((r) => r.msdyn_kpieventdataid)).toEqual(descending(6, 3));
    expect(second.oDataCount).toBe(EVENTS);
    const third = await api.retrieveMultiple<Row>(request, second.oDataNextLink);
    expect(third.value.map((r) => r.msdyn_kpieventdataid)).toEqual(descending(2, 1));
    expect(third.oDataNextLink).toBeUndefined();
  });

  it("retrieveMultiple with top and a filter on a KPI name", async () => {
    const result = await api.retrieveMultiple<Row>({
      collection: "msdyn_kpieventsdata",
      select: ["importsequencenumber"],
      filter: `${filter} and msdyn_kpieventname eq 'SessionClosed'`,
      orderBy: ["importsequencenumber"],
      top: 3,
    });
    expect(result.value.map((r) => r.importsequencenumber)).toEqual([2, 4, 6]);
    expect(result.oDataNextLink).toBeUndefined();
  });

  it("retrieveAll follows the next links across several pages and returns every row once, in order", async () => {
    const before = requests.length;
    const all = await api.retrieveAll<Row>({
      collection: "msdyn_kpieventsdata",
      select: ["importsequencenumber"],
      filter,
      orderBy: ["importsequencenumber"],
      maxPageSize: 3,
    });
    expect(all.value.map((r) => r.importsequencenumber)).toEqual(Array.from({ length: EVENTS }, (_, i) => i + 1));
    expect(new Set(all.value.map((r) => r.msdyn_kpieventdataid)).size).toBe(EVENTS);
    const pages = requests.slice(before).filter((line) => line.startsWith("GET /api/data/v9.2/msdyn_kpieventsdata?"));
    expect(pages).toHaveLength(4);
    expect(pages.filter((line) => line.includes("skiptoken"))).toHaveLength(3);
  });

  it("count sends GET {set}/$count and returns the number", async () => {
    const before = requests.length;
    expect(await api.count({ collection: "msdyn_kpieventsdata" })).toBe(EVENTS);
    expect(requests.slice(before)).toContain("GET /api/data/v9.2/msdyn_kpieventsdata/$count");
    expect(await api.count({ collection: "msdyn_ciproviders" })).toBe(1);
    expect(await api.count({ collection: "msdyn_sessionsdata" })).toBe(1);
  });

  it("count with a filter uses $count=true and returns @odata.count", async () => {
    expect(await api.count({ collection: "msdyn_kpieventsdata", filter: `${filter} and importsequencenumber gt 7` })).toBe(3);
    expect(await api.count({ collection: "msdyn_kpieventsdata", filter: "msdyn_kpieventname eq 'SessionStarted'" })).toBe(5);
    expect(await api.count({ collection: "msdyn_kpieventsdata", filter: "msdyn_kpieventname eq 'NoSuchEvent'" })).toBe(0);
  });

  it("countAll retrieves the rows and counts them", async () => {
    expect(await api.countAll({ collection: "msdyn_kpieventsdata", filter, select: ["msdyn_kpieventdataid"] })).toBe(EVENTS);
  });

  it("retrieveMultiple with expand and formatted-value annotations", async () => {
    const result = await api.retrieveMultiple<Row>({
      collection: "msdyn_kpieventsdata",
      select: ["importsequencenumber", "statecode"],
      filter: `${filter} and importsequencenumber eq 1`,
      expand: [{ property: "msdyn_definition", select: ["msdyn_name", "msdyn_eventtype"] }],
      includeAnnotations: "OData.Community.Display.V1.FormattedValue",
    });
    expect(result.value).toHaveLength(1);
    expect(result.value[0]).toMatchObject({
      importsequencenumber: 1,
      statecode: 0,
      statecode_Formatted: "Active",
      msdyn_definition: { msdyn_name: "SessionStarted", msdyn_eventtype: 100000000, msdyn_eventtype_Formatted: "System" },
    });
  });

  it("a bad filter rejects with status 400 and the error's code and message", async () => {
    await expect(api.retrieveMultiple({ collection: "msdyn_kpieventsdata", filter: "x eq 1" })).rejects.toMatchObject({
      status: 400,
      message: "Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.msdyn_kpieventdata'.",
    });
  });

  it.skipIf(!HAS_METADATA_ROUTE)("retrieveCsdlMetadata returns the CSDL document", async () => {
    const csdl = await api.retrieveCsdlMetadata();
    expect(typeof csdl).toBe("string");
    expect(csdl).toMatch(/<edmx:Edmx[^>]*Version="4.0"/);
    expect(csdl).toMatch(/<EntityType Name="msdyn_kpieventdata"/);
    expect(csdl).toMatch(/<EntitySet Name="msdyn_kpieventsdata"/);
    expect(csdl).toContain("WhoAmI");
  });

  it.skipIf(!HAS_METADATA_ROUTE)(
    'callFunction("WhoAmI") returns the caller\'s user, business unit and organization',
    async () => {
      const before = requests.length;
      const whoAmI = await api.callFunction<Row>("WhoAmI");
      expect(requests.slice(before)).toContain("GET /api/data/v9.2/WhoAmI()");
      expect(whoAmI).toMatchObject({
        // The caller: the application user the token is for.
        UserId: userId,
        BusinessUnitId: t.config.BUSINESS_UNIT_ID,
        OrganizationId: t.config.ORGANIZATION_ID,
      });
    },
  );
});
