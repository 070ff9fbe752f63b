/**
 * Collection queries over HTTP with real rows (shared/reference/dataverse-webapi.md §2–§3, §8):
 * $select, $filter, $orderby, $top, $count, {set}/$count, paging with
 * Prefer: odata.maxpagesize and $skiptoken, the 5,000 cap, $apply, $expand, formatted-value
 * annotations, and the index behind "the events of a conversation".
 */
import { randomUUID } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { beforeAll, describe, expect, it } from "vitest";
import { ANALYTICS_KPI_EVENT_DEFINITIONS, SYSTEM_KPI_EVENT_DEFINITIONS } from "../../src/model/tables.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { ODATA_JSON, ROOT, createdId, definitionId, records } from "../helpers/records.js";

const FORMATTED = "@OData.Community.Display.V1.FormattedValue";
const TOTAL = "@Microsoft.Dynamics.CRM.totalrecordcount";
const TOTAL_EXCEEDED = "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded";
const COUNT_ANNOTATIONS = `odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"`;
const SESSION_STARTED = definitionId("SessionStarted");
/** en-US, UTC: "1/10/2020 8:00 AM". */
const FORMATTED_DATE_TIME = /^\d{1,2}\/\d{1,2}\/\d{4} \d{1,2}:\d{2} (AM|PM)$/;

type Json = Record<string, unknown>;
type Query = Record<string, string>;

interface Page {
  "@odata.context": string;
  "@odata.count"?: number;
  "@odata.nextLink"?: string;
  value: Json[];
}

/** A 400 with exactly `{"error":{"code","message"}}`. */
function expectBadRequest(res: LightMyRequestResponse, ...fragments: string[]): string {
  expect(res.statusCode, res.body).toBe(400);
  expect(res.headers["content-type"]).toBe(ODATA_JSON);
  const body = res.json();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message"]);
  expect(body.error.code).toEqual(expect.any(String));
  for (const fragment of fragments) expect(body.error.message).toContain(fragment);
  return body.error.message as string;
}

/** Helpers bound to one test app. */
function client(getApp: () => TestApp) {
  const inject = (url: string, options: { query?: Query; headers?: Record<string, string> } = {}) =>
    getApp().app.inject({ method: "GET", url, query: options.query, headers: options.headers });
  return {
    /** GET {set} with the query options passed as data (so they are encoded properly). */
    query: (set: string, query: Query = {}, headers: Record<string, string> = {}) => inject(`${ROOT}/${set}`, { query, headers }),
    get: (path: string, headers: Record<string, string> = {}) => inject(`${ROOT}/${path}`, { headers }),
    /** GET an absolute @odata.nextLink through app.inject. */
    follow: (link: string, headers: Record<string, string> = {}) => {
      const url = new URL(link);
      return inject(`${url.pathname}${url.search}`, { headers });
    },
    async page(set: string, query: Query = {}, headers: Record<string, string> = {}): Promise<Page> {
      const res = await inject(`${ROOT}/${set}`, { query, headers });
      expect(res.statusCode, res.body).toBe(200);
      return res.json<Page>();
    },
    /** Follows every @odata.nextLink; returns the pages. */
    async allPages(
      set: string,
      query: Query,
      headers: Record<string, string>,
      between?: (page: number) => Promise<void>,
    ): Promise<Page[]> {
      const pages: Page[] = [];
      let res = await inject(`${ROOT}/${set}`, { query, headers });
      for (;;) {
        expect(res.statusCode, res.body).toBe(200);
        const page = res.json<Page>();
        pages.push(page);
        const next = page["@odata.nextLink"];
        if (!next) return pages;
        expect(pages.length, "too many pages").toBeLessThan(10_000);
        if (between) await between(pages.length);
        const url = new URL(next);
        res = await inject(`${url.pathname}${url.search}`, { headers });
      }
    },
  };
}

const ids = (rows: Json[], key = "msdyn_kpieventdataid") => rows.map((r) => r[key] as string);

/** Every element once. */
function expectUnique(values: readonly string[]) {
  const seen = new Set<string>();
  const duplicates: string[] = [];
  for (const value of values) {
    if (seen.has(value)) duplicates.push(value);
    seen.add(value);
  }
  expect(duplicates, "returned more than once").toEqual([]);
}

// ===========================================================================

describe("collection queries", () => {
  const t = useTestApp();
  const api = client(() => t);
  const { post, setAnalytics } = records(t);

  // The fixture: two providers, two conversations, sessions, participants and labelled events.
  let providerOn: string;
  let providerOff: string;
  const cA = `qa-${randomUUID()}`;
  const cB = `qb-${randomUUID()}`;
  const sessionIds: Record<string, string> = {};
  const participantIds: Record<string, string> = {};
  /** Label (e1…e7) → msdyn_kpieventdataid, and back. */
  const eventIds: Record<string, string> = {};
  const labelOf = new Map<string, string>();
  const recent = new Date(Date.now() - 1000).toISOString();
  const threeDaysAgo = new Date(Date.now() - 3 * 24 * 3600 * 1000).toISOString();

  interface EventSpec {
    label: string;
    c: string;
    s: string;
    p?: string;
    name: string;
    reason: string | null;
    ts: string | null;
    seq: number | null;
  }
  const EVENTS: EventSpec[] = [
    { label: "e1", c: cA, s: "s-1", p: "agent-1", name: "SessionStarted", reason: "Alpha", ts: "2020-01-10T08:00:00Z", seq: 10 },
    {
      label: "e2",
      c: cA,
      s: "s-1",
      p: "agent-1",
      name: "SessionClosed",
      reason: "alpha beta",
      ts: "2020-01-11T09:00:00Z",
      seq: 20,
    },
    { label: "e3", c: cA, s: "s-1", name: "NotificationReceived", reason: "O'Brien", ts: "2020-01-12T10:00:00Z", seq: 30 },
    { label: "e4", c: cA, s: "s-2", p: "agent-3", name: "NotificationAccepted", reason: null, ts: null, seq: null },
    { label: "e5", c: cA, s: "s-2", p: "agent-3", name: "SessionStarted", reason: "Gamma_%", ts: recent, seq: 40 },
    { label: "e6", c: cA, s: "s-2", name: "CifSessionStart", reason: "ALPHA", ts: threeDaysAgo, seq: 50 },
    { label: "e7", c: cB, s: "s-1", name: "SessionStarted", reason: "beta", ts: "2020-01-11T12:00:00Z", seq: 60 },
  ];

  const create = async (set: string, body: Json): Promise<string> => createdId(await post(set, body));

  beforeAll(async () => {
    providerOn = await create("msdyn_ciproviders", { msdyn_name: "Fixture Enabled", msdyn_sortorder: 10 });
    await setAnalytics(providerOn, true);
    providerOff = await create("msdyn_ciproviders", { msdyn_name: "Fixture Disabled", msdyn_sortorder: 20 });

    await create("msdyn_conversationsdata", {
      msdyn_conversationid: cA,
      msdyn_name: "Conversation A",
      msdyn_channel: "chat",
      msdyn_providerid: providerOn,
    });
    await create("msdyn_conversationsdata", {
      msdyn_conversationid: cB,
      msdyn_name: "Conversation B",
      msdyn_channel: "voice",
      msdyn_providerid: providerOn,
    });
    for (const [c, s] of [
      [cA, "s-1"],
      [cA, "s-2"],
      [cB, "s-1"],
    ] as const) {
      sessionIds[`${c}/${s}`] = await create("msdyn_sessionsdata", {
        msdyn_conversationid: c,
        msdyn_providersessionid: s,
        msdyn_name: `${s} of ${c}`,
      });
    }
    for (const [s, p] of [
      ["s-1", "agent-1"],
      ["s-1", "agent-2"],
      ["s-2", "agent-3"],
    ] as const) {
      participantIds[p] = await create("msdyn_sessionparticipantsdata", {
        msdyn_conversationid: cA,
        msdyn_providersessionid: s,
        msdyn_participantid: p,
        msdyn_name: p,
      });
    }
    for (const e of EVENTS) {
      const body: Json = {
        msdyn_conversationid: e.c,
        msdyn_providersessionid: e.s,
        msdyn_kpieventname: e.name,
        msdyn_kpieventreason: e.reason,
        msdyn_eventtimestamp: e.ts,
        importsequencenumber: e.seq,
      };
      if (e.p) body.msdyn_participantid = e.p;
      const id = await create("msdyn_kpieventsdata", body);
      eventIds[e.label] = id;
      labelOf.set(id, e.label);
    }
  });

  /** The labels of the events of conversation A (B too with `both`) matching `filter`, in answer order. */
  async function labels(filter: string, extra: Query = {}, both = false): Promise<string[]> {
    const scope = both
      ? `(msdyn_conversationid eq '${cA}' or msdyn_conversationid eq '${cB}')`
      : `msdyn_conversationid eq '${cA}'`;
    const page = await api.page("msdyn_kpieventsdata", { $filter: `${scope} and (${filter})`, ...extra });
    return page.value.map((row) => labelOf.get(row.msdyn_kpieventdataid as string) ?? "?");
  }
  const sorted = async (filter: string, extra: Query = {}, both = false) => (await labels(filter, extra, both)).sort();

  // -------------------------------------------------------------------------

  describe("$select", () => {
    it("returns the selected properties, the primary key and the etag, and names them in the context", async () => {
      const res = await api.query("msdyn_kpieventsdata", {
        $select: "msdyn_kpieventname,msdyn_eventtimestamp,_ownerid_value",
        $filter: `msdyn_kpieventdataid eq ${eventIds.e1}`,
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers["content-type"]).toBe(ODATA_JSON);
      const body = res.json();
      expect(body["@odata.context"]).toBe(
        "http://localhost:80/api/data/v9.2/$metadata#msdyn_kpieventsdata(msdyn_kpieventname,msdyn_eventtimestamp,_ownerid_value,msdyn_kpieventdataid)",
      );
      expect(Object.keys(body)).toEqual(["@odata.context", "value"]);
      expect(body.value).toHaveLength(1);
      expect(Object.keys(body.value[0]).sort()).toEqual(
        ["@odata.etag", "_ownerid_value", "msdyn_eventtimestamp", "msdyn_kpieventdataid", "msdyn_kpieventname"].sort(),
      );
      expect(body.value[0]).toMatchObject({
        msdyn_kpieventdataid: eventIds.e1,
        msdyn_kpieventname: "SessionStarted",
        msdyn_eventtimestamp: "2020-01-10T08:00:00Z",
        _ownerid_value: t.config.CALLER_USER_ID,
        "@odata.etag": expect.stringMatching(/^W\/"\d+"$/),
      });
    });

    it("without $select every column comes back, nulls included", async () => {
      const page = await api.page("msdyn_kpieventsdata", { $filter: `msdyn_kpieventdataid eq ${eventIds.e4}` });
      expect(page["@odata.context"]).toBe("http://localhost:80/api/data/v9.2/$metadata#msdyn_kpieventsdata");
      expect(page.value[0]).toMatchObject({
        msdyn_kpieventreason: null,
        msdyn_eventtimestamp: null,
        importsequencenumber: null,
        msdyn_customattribute1: null,
      });
      expect(page.value[0]).toHaveProperty("_ownerid_value");
    });

    it("refuses an unknown property", async () => {
      const message = expectBadRequest(await api.query("msdyn_kpieventsdata", { $select: "msdyn_name,x" }));
      expect(message).toBe("Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.msdyn_kpieventdata'.");
    });
  });

  // -------------------------------------------------------------------------

  describe("$filter", () => {
    it.each([
      ["eq", ["e2"]],
      ["ne", ["e1", "e3", "e5", "e6"]],
      ["gt", ["e3", "e5", "e6"]],
      ["ge", ["e2", "e3", "e5", "e6"]],
      ["lt", ["e1"]],
      ["le", ["e1", "e2"]],
    ])("importsequencenumber %s 20", async (op, expected) => {
      expect(await sorted(`importsequencenumber ${op} 20`)).toEqual(expected);
    });

    it("a value on the left is the same comparison turned round", async () => {
      expect(await sorted("20 lt importsequencenumber")).toEqual(["e3", "e5", "e6"]);
      expect(await sorted("20 ge importsequencenumber")).toEqual(["e1", "e2"]);
    });

    it("eq null and ne null", async () => {
      expect(await sorted("msdyn_kpieventreason eq null")).toEqual(["e4"]);
      expect(await sorted("msdyn_eventtimestamp ne null")).toEqual(["e1", "e2", "e3", "e5", "e6"]);
      expect(await sorted("msdyn_participantid eq null")).toEqual(["e3", "e6"]);
    });

    it("ne on a column without nulls", async () => {
      expect(await sorted("msdyn_kpieventname ne 'SessionStarted'")).toEqual(["e2", "e3", "e4", "e6"]);
    });

    it("string literals with a doubled quote", async () => {
      expect(await sorted("msdyn_kpieventreason eq 'O''Brien'")).toEqual(["e3"]);
    });

    it("contains, startswith and endswith are case-insensitive", async () => {
      expect(await sorted("contains(msdyn_kpieventreason,'LPH')")).toEqual(["e1", "e2", "e6"]);
      expect(await sorted("startswith(msdyn_kpieventreason,'alpha')")).toEqual(["e1", "e2", "e6"]);
      expect(await sorted("endswith(msdyn_kpieventreason,'BETA')", {}, true)).toEqual(["e2", "e7"]);
      expect(await sorted("endswith(msdyn_kpieventreason,'brien')")).toEqual(["e3"]);
      expect(await sorted("contains(msdyn_kpieventreason,'''')")).toEqual(["e3"]);
    });

    it("not negates a string function; nulls are not matched either way", async () => {
      expect(await sorted("not contains(msdyn_kpieventreason,'alpha')")).toEqual(["e3", "e4", "e5"]);
    });

    // A documented difference from Dataverse: eq compares text exactly, so that the keys
    // (msdyn_conversationid…) are found through their indexes; contains/startswith/endswith ignore case.
    it("eq on text compares exactly; contains ignores case", async () => {
      expect(await sorted("msdyn_kpieventreason eq 'alpha'")).toEqual([]);
      expect(await sorted("msdyn_kpieventreason eq 'Alpha'")).toHaveLength(1);
      expect(await sorted("contains(msdyn_kpieventreason,'alpha')")).toEqual(["e1", "e2", "e6"]);
    });

    it("and, or, not and parentheses", async () => {
      expect(
        await sorted(
          "msdyn_providersessionid eq 's-1' and importsequencenumber gt 10 or msdyn_kpieventname eq 'CifSessionStart'",
        ),
      ).toEqual(["e2", "e3", "e6"]);
      expect(
        await sorted(
          "msdyn_providersessionid eq 's-1' and (importsequencenumber gt 10 or msdyn_kpieventname eq 'CifSessionStart')",
        ),
      ).toEqual(["e2", "e3"]);
      expect(await sorted("not (msdyn_providersessionid eq 's-1') and importsequencenumber ne null")).toEqual(["e5", "e6"]);
      expect(await sorted("not msdyn_providersessionid eq 's-1'")).toEqual(["e4", "e5", "e6"]);
    });

    it("unquoted GUIDs, in any case", async () => {
      expect(await sorted(`msdyn_kpieventid eq ${SESSION_STARTED.toUpperCase()}`)).toEqual(["e1", "e5"]);
      expect(await sorted(`_ownerid_value eq ${t.config.CALLER_USER_ID}`)).toHaveLength(6);
      expect(await sorted(`msdyn_kpieventdataid eq ${eventIds.e3}`)).toEqual(["e3"]);
    });

    it("date-time literals", async () => {
      expect(await sorted("msdyn_eventtimestamp lt 2020-01-11T00:00:00Z")).toEqual(["e1"]);
      expect(await sorted("msdyn_eventtimestamp gt 2020-01-11T09:00:00Z")).toEqual(["e3", "e5", "e6"]);
      expect(await sorted("msdyn_eventtimestamp ge 2020-01-11T09:00:00Z and msdyn_eventtimestamp le 2020-01-12")).toEqual(["e2"]);
      expect(await sorted("msdyn_eventtimestamp eq 2020-01-11T11:00:00+02:00")).toEqual(["e2"]);
    });

    it("booleans", async () => {
      const on = await api.page("msdyn_ciproviders", { $filter: "msdyn_enableanalytics eq true", $select: "msdyn_name" });
      expect(ids(on.value, "msdyn_ciproviderid")).toEqual([providerOn]);
      const off = await api.page("msdyn_ciproviders", { $filter: "msdyn_enableanalytics eq false and msdyn_clicktoact ne true" });
      expect(ids(off.value, "msdyn_ciproviderid")).toEqual([providerOff]);
    });

    it("Microsoft.Dynamics.CRM.In and NotIn", async () => {
      expect(
        await sorted(
          `Microsoft.Dynamics.CRM.In(PropertyName='msdyn_kpieventname',PropertyValues=["SessionStarted","SessionClosed"])`,
        ),
      ).toEqual(["e1", "e2", "e5"]);
      expect(
        await sorted(
          `Microsoft.Dynamics.CRM.NotIn(PropertyName='msdyn_kpieventname',PropertyValues=["SessionStarted","SessionClosed"])`,
        ),
      ).toEqual(["e3", "e4", "e6"]);
      expect(await sorted(`Microsoft.Dynamics.CRM.In(PropertyName='msdyn_kpieventreason',PropertyValues=["O'Brien"])`)).toEqual([
        "e3",
      ]);
      expect(await sorted(`Microsoft.Dynamics.CRM.In(PropertyName='importsequencenumber',PropertyValues=["10","30"])`)).toEqual([
        "e1",
        "e3",
      ]);
    });

    it("Microsoft.Dynamics.CRM.Between and NotBetween", async () => {
      expect(
        await sorted(`Microsoft.Dynamics.CRM.Between(PropertyName='importsequencenumber',PropertyValues=["15","35"])`),
      ).toEqual(["e2", "e3"]);
      expect(
        await sorted(`Microsoft.Dynamics.CRM.NotBetween(PropertyName='importsequencenumber',PropertyValues=["15","35"])`),
      ).toEqual(["e1", "e5", "e6"]);
      expect(
        await sorted(
          `Microsoft.Dynamics.CRM.Between(PropertyName='msdyn_eventtimestamp',PropertyValues=["2020-01-10T12:00:00Z","2020-01-12T12:00:00Z"])`,
        ),
      ).toEqual(["e2", "e3"]);
    });

    it("Microsoft.Dynamics.CRM date functions", async () => {
      const fn = (name: string, value?: string) =>
        `Microsoft.Dynamics.CRM.${name}(PropertyName='msdyn_eventtimestamp'${value === undefined ? "" : `,PropertyValue=${value}`})`;
      expect(await sorted(fn("LastXHours", "1"))).toEqual(["e5"]);
      expect(await sorted(fn("LastXHours", "100"))).toEqual(["e5", "e6"]);
      expect(await sorted(fn("LastXDays", "2"))).toEqual(["e5"]);
      expect(await sorted(fn("LastXDays", "7"))).toEqual(["e5", "e6"]);
      expect(await sorted(fn("Today"))).toEqual(["e5"]);
      expect(await sorted(fn("OnOrAfter", "'2020-01-11'"))).toEqual(["e2", "e3", "e5", "e6"]);
      expect(await sorted(fn("OnOrBefore", "'2020-01-11'"))).toEqual(["e1", "e2"]);
      expect(await sorted(fn("OnOrBefore", "2020-01-11"))).toEqual(["e1", "e2"]);
    });

    it("parameter aliases, for values and properties; an alias without a value is null", async () => {
      expect(await sorted("msdyn_kpieventreason eq @p1", { "@p1": "'O''Brien'" })).toEqual(["e3"]);
      expect(await sorted("@p1 ge @p3", { "@p1": "importsequencenumber", "@p3": "40" })).toEqual(["e5", "e6"]);
      expect(await sorted("msdyn_kpieventreason eq @nothing")).toEqual(["e4"]);
      expect(
        await sorted('Microsoft.Dynamics.CRM.In(PropertyName=@prop,PropertyValues=["s-2"])', {
          "@prop": "'msdyn_providersessionid'",
        }),
      ).toEqual(["e4", "e5", "e6"]);
      expect(await labels("importsequencenumber ne null", { $orderby: "@p2 desc", "@p2": "importsequencenumber" })).toEqual([
        "e6",
        "e5",
        "e3",
        "e2",
        "e1",
      ]);
    });

    it("a property compared with another of the same type", async () => {
      expect(await sorted("modifiedon ge createdon")).toHaveLength(6);
      expectBadRequest(
        await api.query("msdyn_kpieventsdata", { $filter: "msdyn_name eq importsequencenumber" }),
        "different types",
      );
    });

    it("refuses an unknown property with Dataverse's message", async () => {
      const message = expectBadRequest(await api.query("msdyn_kpieventsdata", { $filter: "x eq 1" }));
      expect(message).toBe("Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.msdyn_kpieventdata'.");
    });

    it("refuses syntax errors, naming the position", async () => {
      expect(expectBadRequest(await api.query("msdyn_kpieventsdata", { $filter: "msdyn_name eq 'abc" }))).toBe(
        "There is an unterminated literal at position 14 in 'msdyn_name eq 'abc'.",
      );
      expectBadRequest(
        await api.query("msdyn_kpieventsdata", { $filter: "msdyn_name 'abc'" }),
        "position 11",
        "comparison operator",
      );
      expectBadRequest(await api.query("msdyn_kpieventsdata", { $filter: "(msdyn_name eq 'a'" }), "position 18", "expected ')'");
    });

    it("refuses not before a query function", async () => {
      const message = expectBadRequest(
        await api.query("msdyn_kpieventsdata", {
          $filter: `not Microsoft.Dynamics.CRM.In(PropertyName='msdyn_name',PropertyValues=["a"])`,
        }),
      );
      expect(message).toBe("Not operator along with the Custom Named Condition operators is not allowed.");
    });

    it("refuses a value of the wrong type", async () => {
      expectBadRequest(
        await api.query("msdyn_kpieventsdata", { $filter: "importsequencenumber eq 'ten'" }),
        "cannot be compared",
      );
      expectBadRequest(
        await api.query("msdyn_kpieventsdata", { $filter: "msdyn_kpieventid eq 'not-a-guid'" }),
        "cannot be compared",
      );
      expectBadRequest(
        await api.query("msdyn_kpieventsdata", { $filter: "msdyn_eventtimestamp gt 'yesterday'" }),
        "'yesterday' at position 24 is not an ISO 8601 date-time",
      );
    });

    it.each(["$skip", "$search", "$format"])("%s is not supported", async (name) => {
      const message = expectBadRequest(await api.query("msdyn_kpieventsdata", { [name]: name === "$format" ? "json" : "1" }));
      expect(message).toBe(`The query parameter ${name} is not supported.`);
    });
  });

  // -------------------------------------------------------------------------

  describe("$orderby and $top", () => {
    it("orders ascending by default, or descending", async () => {
      expect(await labels("importsequencenumber ne null", { $orderby: "importsequencenumber" })).toEqual([
        "e1",
        "e2",
        "e3",
        "e5",
        "e6",
      ]);
      expect(await labels("importsequencenumber ne null", { $orderby: "importsequencenumber asc" })).toEqual([
        "e1",
        "e2",
        "e3",
        "e5",
        "e6",
      ]);
      expect(await labels("importsequencenumber ne null", { $orderby: "importsequencenumber desc" })).toEqual([
        "e6",
        "e5",
        "e3",
        "e2",
        "e1",
      ]);
      expect(await labels("msdyn_eventtimestamp ne null", { $orderby: "msdyn_eventtimestamp desc" })).toEqual([
        "e5",
        "e6",
        "e3",
        "e2",
        "e1",
      ]);
    });

    it("orders by several keys", async () => {
      expect(
        await labels("importsequencenumber ne null", { $orderby: "msdyn_providersessionid desc,importsequencenumber asc" }),
      ).toEqual(["e5", "e6", "e1", "e2", "e3"]);
      expect(
        await labels("importsequencenumber ne null", { $orderby: "msdyn_kpieventname asc,importsequencenumber desc" }),
      ).toEqual(["e6", "e3", "e2", "e5", "e1"]);
    });

    it("$top limits the rows, after ordering", async () => {
      expect(await labels("importsequencenumber ne null", { $orderby: "importsequencenumber desc", $top: "2" })).toEqual([
        "e6",
        "e5",
      ]);
      expect(await labels("importsequencenumber ne null", { $top: "0" })).toEqual([]);
      const page = await api.page("msdyn_kpieventsdata", { $filter: `msdyn_conversationid eq '${cA}'`, $top: "3" });
      expect(page.value).toHaveLength(3);
      expect(page["@odata.nextLink"]).toBeUndefined();
    });

    it("refuses unknown properties and bad directions", async () => {
      expect(expectBadRequest(await api.query("msdyn_kpieventsdata", { $orderby: "x desc" }))).toBe(
        "Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.msdyn_kpieventdata'.",
      );
      expectBadRequest(await api.query("msdyn_kpieventsdata", { $orderby: "msdyn_name sideways" }), "asc or desc");
      expectBadRequest(await api.query("msdyn_kpieventsdata", { $top: "5001" }), "5000");
      expectBadRequest(await api.query("msdyn_kpieventsdata", { $top: "-1" }));
    });
  });

  // -------------------------------------------------------------------------

  describe("$count", () => {
    it("$count=true puts @odata.count before value", async () => {
      const res = await api.query("msdyn_kpieventsdata", {
        $filter: `msdyn_conversationid eq '${cA}'`,
        $count: "true",
        $select: "msdyn_name",
      });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(Object.keys(body)).toEqual(["@odata.context", "@odata.count", "value"]);
      expect(body["@odata.count"]).toBe(6);
      expect(body.value).toHaveLength(6);
    });

    it("counts every matching row, not the page", async () => {
      const page = await api.page(
        "msdyn_kpieventsdata",
        { $filter: `msdyn_conversationid eq '${cA}'`, $count: "true" },
        { prefer: "odata.maxpagesize=2" },
      );
      expect(page.value).toHaveLength(2);
      expect(page["@odata.count"]).toBe(6);
      expect(Object.keys(page)).toEqual(["@odata.context", "@odata.count", "value", "@odata.nextLink"]);
    });

    it("$count=false adds no count", async () => {
      const body = await api.page("msdyn_kpieventsdata", { $filter: `msdyn_conversationid eq '${cA}'`, $count: "false" });
      expect(body).not.toHaveProperty("@odata.count");
    });

    it("with the Prefer count annotations, also totalrecordcount and totalrecordcountlimitexceeded", async () => {
      const res = await api.query(
        "msdyn_kpieventsdata",
        { $filter: `msdyn_conversationid eq '${cA}'`, $count: "true" },
        { prefer: COUNT_ANNOTATIONS },
      );
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers["preference-applied"]).toBe(COUNT_ANNOTATIONS);
      const body = res.json();
      expect(Object.keys(body)).toEqual(["@odata.context", "@odata.count", TOTAL, TOTAL_EXCEEDED, "value"]);
      expect(body[TOTAL]).toBe(6);
      expect(body[TOTAL_EXCEEDED]).toBe(false);
    });

    it("without $count, totalrecordcount is -1", async () => {
      const body = await api.page(
        "msdyn_kpieventsdata",
        { $filter: `msdyn_conversationid eq '${cA}'` },
        { prefer: COUNT_ANNOTATIONS },
      );
      expect(body).not.toHaveProperty("@odata.count");
      expect(body).toMatchObject({ [TOTAL]: -1, [TOTAL_EXCEEDED]: false });
    });

    it("GET {set}/$count answers the number as text/plain", async () => {
      const res = await api.get("msdyn_ciproviders/$count");
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers["content-type"]).toMatch(/^text\/plain/);
      expect(res.body.replace(/^\uFEFF/, "")).toBe("2");
      const sessions = await api.get("msdyn_sessionsdata/$count");
      expect(Number(sessions.body.replace(/^\uFEFF/, ""))).toBe(3);
      const definitions = await api.get("msdyn_kpieventdefinitions/$count");
      expect(Number(definitions.body.replace(/^\uFEFF/, ""))).toBe(
        SYSTEM_KPI_EVENT_DEFINITIONS.length + ANALYTICS_KPI_EVENT_DEFINITIONS.length,
      );
    });

    it("refuses $count values other than true and false", async () => {
      expectBadRequest(await api.query("msdyn_kpieventsdata", { $count: "yes" }), "$count");
    });
  });

  // -------------------------------------------------------------------------

  describe("paging with Prefer: odata.maxpagesize", () => {
    // Rows inserted with SQL: 30 events whose reasons repeat and include nulls.
    const cP = `qp-${randomUUID()}`;
    const scope = `msdyn_conversationid eq '${cP}'`;
    let seeded: string[];

    async function insertEvents(count: number, first: number): Promise<string[]> {
      const { rows } = await t.testDb.pool.query<{ id: string }>(
        `INSERT INTO msdyn_kpieventdata
           (msdyn_kpieventid, msdyn_kpieventname, msdyn_conversationid, msdyn_providersessionid,
            msdyn_kpieventreason, importsequencenumber, msdyn_eventtimestamp, ownerid)
         SELECT $1::uuid, 'SessionStarted', $2, 's-1',
                CASE g % 5 WHEN 0 THEN NULL WHEN 1 THEN 'a' WHEN 2 THEN 'a' WHEN 3 THEN 'b' ELSE 'c' END,
                CASE WHEN g % 7 = 0 THEN NULL ELSE g % 4 END,
                CASE WHEN g % 3 = 0 THEN NULL ELSE timestamptz '2024-05-01T00:00:00Z' + (g % 6) * interval '1 hour' END,
                $3::uuid
           FROM generate_series($4::int, $5::int) g
         RETURNING msdyn_kpieventdataid AS id`,
        [SESSION_STARTED, cP, t.config.CALLER_USER_ID, first, first + count - 1],
      );
      return rows.map((r) => r.id);
    }

    beforeAll(async () => {
      await t.testDb.pool.query(`INSERT INTO msdyn_conversationdata (msdyn_conversationid, ownerid) VALUES ($1, $2)`, [
        cP,
        t.config.CALLER_USER_ID,
      ]);
      await t.testDb.pool.query(
        `INSERT INTO msdyn_sessiondata (msdyn_conversationid, msdyn_providersessionid, ownerid) VALUES ($1, 's-1', $2)`,
        [cP, t.config.CALLER_USER_ID],
      );
      seeded = await insertEvents(30, 1);
    });

    it("pages of N rows with Preference-Applied and absolute next links; following them returns every row once", async () => {
      const headers = { prefer: "odata.maxpagesize=7" };
      const query = { $filter: scope, $select: "msdyn_kpieventreason", $count: "true" };
      const first = await api.query("msdyn_kpieventsdata", query, headers);
      expect(first.statusCode, first.body).toBe(200);
      expect(first.headers["preference-applied"]).toBe("odata.maxpagesize=7");

      const pages = await api.allPages("msdyn_kpieventsdata", query, headers);
      expect(pages.map((p) => p.value.length)).toEqual([7, 7, 7, 7, 2]);
      for (const page of pages) {
        expect(page["@odata.count"]).toBe(30);
        expect(page["@odata.context"]).toBe(
          "http://localhost:80/api/data/v9.2/$metadata#msdyn_kpieventsdata(msdyn_kpieventreason,msdyn_kpieventdataid)",
        );
        for (const row of page.value)
          expect(Object.keys(row).sort()).toEqual(["@odata.etag", "msdyn_kpieventdataid", "msdyn_kpieventreason"]);
      }
      for (const page of pages.slice(0, -1)) {
        const link = page["@odata.nextLink"]!;
        expect(link).toMatch(/^http:\/\/localhost:80\/api\/data\/v9\.2\/msdyn_kpieventsdata\?/);
        // The same query options, plus a $skiptoken.
        const params = new URL(link).searchParams;
        expect(params.get("$filter")).toBe(scope);
        expect(params.get("$select")).toBe("msdyn_kpieventreason");
        expect(params.get("$count")).toBe("true");
        expect(params.get("$skiptoken")).toEqual(expect.any(String));
      }
      expect(pages.at(-1)).not.toHaveProperty("@odata.nextLink");
      const all = pages.flatMap((p) => ids(p.value));
      expectUnique(all);
      expect([...all].sort()).toEqual([...seeded].sort());
    });

    it("each page request echoes Preference-Applied", async () => {
      const headers = { prefer: "odata.maxpagesize=10" };
      const first = await api.query("msdyn_kpieventsdata", { $filter: scope }, headers);
      const next = await api.follow(first.json()["@odata.nextLink"], headers);
      expect(next.statusCode, next.body).toBe(200);
      expect(next.headers["preference-applied"]).toBe("odata.maxpagesize=10");
      expect(next.json().value).toHaveLength(10);
    });

    it("the next link is on the base of the request: its host and API version", async () => {
      const headers = { prefer: "odata.maxpagesize=5", host: "emulator.example:8443" };
      const res = await t.app.inject({
        method: "GET",
        url: "/api/data/v9.1/msdyn_kpieventsdata",
        query: { $filter: scope, $orderby: "importsequencenumber desc" },
        headers,
      });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body["@odata.context"]).toBe("http://emulator.example:8443/api/data/v9.1/$metadata#msdyn_kpieventsdata");
      const link: string = body["@odata.nextLink"];
      expect(link.startsWith("http://emulator.example:8443/api/data/v9.1/msdyn_kpieventsdata?")).toBe(true);
      const params = new URL(link).searchParams;
      expect(params.get("$orderby")).toBe("importsequencenumber desc");
      const next = await api.follow(link, headers);
      expect(next.statusCode, next.body).toBe(200);
      expect(next.json().value).toHaveLength(5);
    });

    it("rows inserted between page requests do not make rows repeat or go missing", async () => {
      const headers = { prefer: "odata.maxpagesize=7" };
      let next = 1000;
      const inserted: string[] = [];
      const pages = await api.allPages("msdyn_kpieventsdata", { $filter: scope, $select: "msdyn_name" }, headers, async () => {
        inserted.push(...(await insertEvents(4, next)));
        next += 4;
      });
      expect(inserted.length).toBeGreaterThan(0);
      const all = pages.flatMap((p) => ids(p.value));
      expectUnique(all);
      // Every row that existed before the first page comes back; rows added meanwhile may or may not.
      for (const id of seeded) expect(all, `row ${id}`).toContain(id);
      for (const id of all) expect([...seeded, ...inserted]).toContain(id);
      await t.testDb.pool.query(
        `DELETE FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1 AND msdyn_kpieventdataid = ANY($2::uuid[])`,
        [cP, inserted],
      );
    });

    it.each([
      "msdyn_kpieventreason",
      "msdyn_kpieventreason desc",
      "importsequencenumber desc,msdyn_kpieventreason",
      "msdyn_kpieventreason desc,importsequencenumber asc",
      "msdyn_eventtimestamp,importsequencenumber desc",
      "msdyn_eventtimestamp desc",
    ])("$orderby=%s over NULLs and duplicates: paged answers are the unpaged answer, in order", async (orderby) => {
      const query = {
        $filter: scope,
        $orderby: orderby,
        $select: "msdyn_kpieventreason,importsequencenumber,msdyn_eventtimestamp",
      };
      const unpaged = (await api.page("msdyn_kpieventsdata", query)).value;
      expect(unpaged).toHaveLength(30);
      for (const size of [1, 4, 7]) {
        const pages = await api.allPages("msdyn_kpieventsdata", query, { prefer: `odata.maxpagesize=${size}` });
        const all = pages.flatMap((p) => p.value);
        expectUnique(ids(all));
        expect(ids(all), `page size ${size}`).toEqual(ids(unpaged));
      }
      // The first key groups equal values together (nulls included).
      const firstKey = orderby.split(",")[0]!.split(" ")[0]!;
      const runs = unpaged.map((row) => JSON.stringify(row[firstKey])).filter((v, i, all) => i === 0 || v !== all[i - 1]);
      expect(new Set(runs).size, `values of ${firstKey} form one run each`).toBe(runs.length);
    });

    it.each([
      ["msdyn_kpieventreason", "first"],
      ["msdyn_kpieventreason desc", "last"],
      ["msdyn_eventtimestamp", "first"],
      ["msdyn_eventtimestamp desc", "last"],
    ])("$orderby=%s puts nulls %s, as OData and Dataverse do, and paging returns each row once", async (orderby, where) => {
      const column = orderby.split(" ")[0]!;
      const query = { $filter: scope, $orderby: orderby, $select: column };
      for (const size of [1, 4, 30]) {
        const pages = await api.allPages("msdyn_kpieventsdata", query, { prefer: `odata.maxpagesize=${size}` });
        const rows = pages.flatMap((p) => p.value);
        expectUnique(ids(rows));
        expect(rows).toHaveLength(30);
        const nulls = rows.map((r) => r[column] === null);
        const count = nulls.filter(Boolean).length;
        expect(count).toBeGreaterThan(0);
        const expected =
          where === "first"
            ? [...Array(count).fill(true), ...Array(30 - count).fill(false)]
            : [...Array(30 - count).fill(false), ...Array(count).fill(true)];
        expect(nulls, `page size ${size}`).toEqual(expected);
      }
    });

    it("numbers sort as numbers, date-times as date-times", async () => {
      const byNumber = (
        await api.page("msdyn_kpieventsdata", {
          $filter: `${scope} and importsequencenumber ne null`,
          $orderby: "importsequencenumber desc",
        })
      ).value;
      const numbers = byNumber.map((r) => r.importsequencenumber as number);
      expect(numbers).toEqual([...numbers].sort((a, b) => b - a));
      const byTime = (
        await api.page("msdyn_kpieventsdata", {
          $filter: `${scope} and msdyn_eventtimestamp ne null`,
          $orderby: "msdyn_eventtimestamp",
        })
      ).value;
      const times = byTime.map((r) => Date.parse(r.msdyn_eventtimestamp as string));
      expect(times).toEqual([...times].sort((a, b) => a - b));
    });

    async function firstToken(orderby: string): Promise<string> {
      const first = await api.page(
        "msdyn_kpieventsdata",
        { $filter: scope, $orderby: orderby },
        { prefer: "odata.maxpagesize=5" },
      );
      return new URL(first["@odata.nextLink"]!).searchParams.get("$skiptoken")!;
    }
    const withToken = (skiptoken: string, orderby?: string) =>
      api.query(
        "msdyn_kpieventsdata",
        { $filter: scope, ...(orderby ? { $orderby: orderby } : {}), $skiptoken: skiptoken },
        { prefer: "odata.maxpagesize=5" },
      );
    const forge = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

    it("a tampered, malformed or foreign $skiptoken is refused with 400", async () => {
      const token = await firstToken("msdyn_eventtimestamp");
      expect((await withToken(token, "msdyn_eventtimestamp")).statusCode).toBe(200);
      expectBadRequest(await withToken(token.slice(0, -6), "msdyn_eventtimestamp"), "$skiptoken");
      expectBadRequest(await withToken("not a token!", "msdyn_eventtimestamp"), "$skiptoken");
      expectBadRequest(await withToken(`x${token}`, "msdyn_eventtimestamp"), "$skiptoken");
      // A token of another sort, or of the default sort.
      expectBadRequest(await withToken(token, "msdyn_eventtimestamp desc"), "$skiptoken");
      expectBadRequest(await withToken(token, "importsequencenumber"), "$skiptoken");
      expectBadRequest(await withToken(token), "$skiptoken");
      expectBadRequest(await withToken(forge({ v: [], o: "msdyn_kpieventdataid asc" })), "$skiptoken");
      expectBadRequest(await withToken(forge(null)), "$skiptoken");
      expectBadRequest(await withToken(forge("text")), "$skiptoken");
    });

    it.each([
      [
        "a date-time sort key that is not a date-time",
        "msdyn_eventtimestamp",
        ["not-a-date", "00000000-0000-0000-0000-000000000000"],
      ],
      ["a primary key that is not a GUID", undefined, ["x'; DROP TABLE msdyn_kpieventdata; --"]],
      ["a primary key that is a boolean", undefined, [true]],
      ["values that are objects and arrays", "msdyn_eventtimestamp", [{ a: 1 }, [1, 2]]],
      ["a number sort key that is text", "importsequencenumber", ["ten", "00000000-0000-0000-0000-000000000000"]],
      ["a number sort key beyond its type", "importsequencenumber", [1e20, "00000000-0000-0000-0000-000000000000"]],
    ])("a well-formed $skiptoken with %s is refused with 400, not a database error", async (_, orderby, values) => {
      const keys = orderby ? `${orderby} asc,msdyn_kpieventdataid asc` : "msdyn_kpieventdataid asc";
      expectBadRequest(await withToken(forge({ v: values, o: keys }), orderby));
      const { rows } = await t.testDb.pool.query(
        `SELECT count(*)::int AS n FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1`,
        [cP],
      );
      expect(rows[0].n).toBe(30);
    });
  });

  // -------------------------------------------------------------------------

  describe("$apply", () => {
    const inA = `msdyn_conversationid eq '${cA}'`;

    it("groupby with $count", async () => {
      const res = await api.query("msdyn_kpieventsdata", {
        $apply: `filter(${inA})/groupby((msdyn_kpieventname),aggregate($count as count))`,
      });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body["@odata.context"]).toMatch(/^http:\/\/localhost:80\/api\/data\/v9\.2\/\$metadata#msdyn_kpieventsdata/);
      expect(body.value).toEqual([
        { msdyn_kpieventname: "CifSessionStart", count: 1 },
        { msdyn_kpieventname: "NotificationAccepted", count: 1 },
        { msdyn_kpieventname: "NotificationReceived", count: 1 },
        { msdyn_kpieventname: "SessionClosed", count: 1 },
        { msdyn_kpieventname: "SessionStarted", count: 2 },
      ]);
    });

    it("a dashboard counts events per KPI name with one request", async () => {
      const both = `Microsoft.Dynamics.CRM.In(PropertyName='msdyn_conversationid',PropertyValues=["${cA}","${cB}"])`;
      const res = await api.query("msdyn_kpieventsdata", {
        $apply: `filter(${both})/groupby((msdyn_kpieventname),aggregate($count as events))`,
      });
      expect(res.statusCode, res.body).toBe(200);
      const perName = Object.fromEntries((res.json().value as Json[]).map((row) => [row.msdyn_kpieventname, row.events]));
      const expected: Record<string, number> = {};
      for (const e of EVENTS) expected[e.name] = (expected[e.name] ?? 0) + 1;
      expect(perName).toEqual(expected);
    });

    it("groupby alone gives the distinct values; several properties group together", async () => {
      expect(
        (await api.page("msdyn_kpieventsdata", { $apply: `filter(${inA})/groupby((msdyn_providersessionid))` })).value,
      ).toEqual([{ msdyn_providersessionid: "s-1" }, { msdyn_providersessionid: "s-2" }]);
      const pairs = (
        await api.page("msdyn_kpieventsdata", {
          $apply: `filter(${inA})/groupby((msdyn_providersessionid,msdyn_participantid),aggregate($count as n))`,
        })
      ).value;
      expect(pairs).toHaveLength(4);
      expect(pairs).toContainEqual({ msdyn_providersessionid: "s-1", msdyn_participantid: "agent-1", n: 2 });
      expect(pairs).toContainEqual({ msdyn_providersessionid: "s-2", msdyn_participantid: null, n: 1 });
    });

    it("sum, average, min and max", async () => {
      const res = await api.query("msdyn_kpieventsdata", {
        $apply:
          `filter(${inA})/aggregate(importsequencenumber with sum as total,importsequencenumber with average as mean,` +
          `importsequencenumber with min as lowest,importsequencenumber with max as highest,msdyn_eventtimestamp with min as first)`,
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().value).toEqual([{ total: 150, mean: 30, lowest: 10, highest: 50, first: "2020-01-10T08:00:00Z" }]);
    });

    it("aggregates per group", async () => {
      const value = (
        await api.page("msdyn_kpieventsdata", {
          $apply: `filter(${inA})/groupby((msdyn_providersessionid),aggregate(importsequencenumber with sum as total,$count as n,importsequencenumber with max as top))`,
        })
      ).value;
      expect(value).toEqual([
        { msdyn_providersessionid: "s-1", total: 60, n: 3, top: 30 },
        { msdyn_providersessionid: "s-2", total: 90, n: 3, top: 50 },
      ]);
    });

    it("a leading filter(...) with aliases, and $filter alongside", async () => {
      const value = (
        await api.page("msdyn_kpieventsdata", {
          $apply: `filter(${inA} and importsequencenumber ge @min)/aggregate($count as n)`,
          "@min": "30",
        })
      ).value;
      expect(value).toEqual([{ n: 3 }]);
      const withFilter = (
        await api.page("msdyn_kpieventsdata", {
          $apply: "aggregate($count as n)",
          $filter: `${inA} and msdyn_participantid eq null`,
        })
      ).value;
      expect(withFilter).toEqual([{ n: 2 }]);
    });

    it("works on other sets", async () => {
      const value = (
        await api.page("msdyn_ciproviders", {
          $apply: "groupby((msdyn_enableanalytics),aggregate(msdyn_sortorder with sum as total))",
        })
      ).value;
      expect(value).toEqual([
        { msdyn_enableanalytics: false, total: 20 },
        { msdyn_enableanalytics: true, total: 10 },
      ]);
    });

    it("refuses unknown properties, text sums and unknown aggregations", async () => {
      expectBadRequest(
        await api.query("msdyn_kpieventsdata", { $apply: "groupby((nope))" }),
        "Could not find a property named 'nope'",
      );
      expectBadRequest(
        await api.query("msdyn_kpieventsdata", { $apply: "aggregate(msdyn_name with sum as total)" }),
        "not numeric",
      );
      expectBadRequest(
        await api.query("msdyn_kpieventsdata", { $apply: "aggregate(importsequencenumber with avg as a)" }),
        "avg",
      );
      expectBadRequest(await api.query("msdyn_kpieventsdata", { $apply: "groupby((msdyn_name)" }));
    });
  });

  // -------------------------------------------------------------------------

  describe("$expand", () => {
    it("a conversation's msdyn_sessions and msdyn_kpievents, with $select, $filter, $orderby and $top inside", async () => {
      const res = await api.query("msdyn_conversationsdata", {
        $filter: `msdyn_conversationid eq '${cA}'`,
        $select: "msdyn_name",
        $expand:
          "msdyn_sessions($select=msdyn_providersessionid;$orderby=msdyn_providersessionid desc)," +
          "msdyn_kpievents($select=msdyn_kpieventname,importsequencenumber;$filter=msdyn_providersessionid eq 's-1';$orderby=importsequencenumber desc;$top=2)",
      });
      expect(res.statusCode, res.body).toBe(200);
      const [conversation] = res.json().value as Json[];
      expect(conversation).toMatchObject({ msdyn_name: "Conversation A" });
      const sessions = conversation!.msdyn_sessions as Json[];
      expect(sessions.map((s) => s.msdyn_providersessionid)).toEqual(["s-2", "s-1"]);
      expect(sessions.map((s) => s.msdyn_sessiondataid)).toEqual([sessionIds[`${cA}/s-2`], sessionIds[`${cA}/s-1`]]);
      for (const s of sessions)
        expect(Object.keys(s).sort()).toEqual(["@odata.etag", "msdyn_providersessionid", "msdyn_sessiondataid"]);
      const events = conversation!.msdyn_kpievents as Json[];
      expect(events.map((e) => labelOf.get(e.msdyn_kpieventdataid as string))).toEqual(["e3", "e2"]);
      expect(events[0]).toEqual({
        "@odata.etag": expect.stringMatching(/^W\/"\d+"$/),
        msdyn_kpieventname: "NotificationReceived",
        importsequencenumber: 30,
        msdyn_kpieventdataid: eventIds.e3,
      });
    });

    it("expands every row of a collection, each with its own children", async () => {
      const page = await api.page("msdyn_conversationsdata", {
        $filter: `msdyn_conversationid eq '${cA}' or msdyn_conversationid eq '${cB}'`,
        $orderby: "msdyn_name",
        $expand: "msdyn_kpievents($select=msdyn_name)",
      });
      expect(page.value.map((c) => (c.msdyn_kpievents as Json[]).length)).toEqual([6, 1]);
      expect(ids(page.value[1]!.msdyn_kpievents as Json[])).toEqual([eventIds.e7]);
    });

    it("a session's msdyn_participants and msdyn_kpievents", async () => {
      const page = await api.page("msdyn_sessionsdata", {
        $filter: `msdyn_conversationid eq '${cA}'`,
        $orderby: "msdyn_providersessionid",
        $expand:
          "msdyn_participants($select=msdyn_participantid;$orderby=msdyn_participantid)," +
          "msdyn_kpievents($select=importsequencenumber;$filter=importsequencenumber ne null;$orderby=importsequencenumber)",
      });
      expect(page.value.map((s) => s.msdyn_providersessionid)).toEqual(["s-1", "s-2"]);
      const [s1, s2] = page.value;
      expect((s1!.msdyn_participants as Json[]).map((p) => p.msdyn_participantid)).toEqual(["agent-1", "agent-2"]);
      expect((s1!.msdyn_participants as Json[]).map((p) => p.msdyn_sessionparticipantdataid)).toEqual([
        participantIds["agent-1"],
        participantIds["agent-2"],
      ]);
      expect((s2!.msdyn_participants as Json[]).map((p) => p.msdyn_participantid)).toEqual(["agent-3"]);
      expect((s1!.msdyn_kpievents as Json[]).map((e) => e.importsequencenumber)).toEqual([10, 20, 30]);
      expect((s2!.msdyn_kpievents as Json[]).map((e) => e.importsequencenumber)).toEqual([40, 50]);
    });

    it("an event's msdyn_conversation, msdyn_session, msdyn_definition and msdyn_participant", async () => {
      const page = await api.page("msdyn_kpieventsdata", {
        $filter: `msdyn_kpieventdataid eq ${eventIds.e1} or msdyn_kpieventdataid eq ${eventIds.e3}`,
        $orderby: "importsequencenumber",
        $select: "msdyn_kpieventname",
        $expand:
          "msdyn_conversation($select=msdyn_conversationid,msdyn_channel),msdyn_session($select=msdyn_providersessionid)," +
          "msdyn_definition($select=msdyn_name,msdyn_eventtype),msdyn_participant($select=msdyn_participantid)",
      });
      const [e1, e3] = page.value;
      expect(e1).toMatchObject({
        msdyn_kpieventname: "SessionStarted",
        msdyn_conversation: { msdyn_conversationid: cA, msdyn_channel: "chat", msdyn_conversationdataid: expect.any(String) },
        msdyn_session: { msdyn_providersessionid: "s-1", msdyn_sessiondataid: sessionIds[`${cA}/s-1`] },
        msdyn_definition: {
          msdyn_name: "SessionStarted",
          msdyn_eventtype: 100000000,
          msdyn_kpieventdefinitionid: SESSION_STARTED,
        },
        msdyn_participant: { msdyn_participantid: "agent-1", msdyn_sessionparticipantdataid: participantIds["agent-1"] },
      });
      expect(Object.keys(e1!.msdyn_session as Json).sort()).toEqual([
        "@odata.etag",
        "msdyn_providersessionid",
        "msdyn_sessiondataid",
      ]);
      // No participant: null.
      expect(e3).toMatchObject({ msdyn_participant: null, msdyn_session: { msdyn_providersessionid: "s-1" } });
    });

    it("without $select inside, the related rows come whole", async () => {
      const page = await api.page("msdyn_kpieventsdata", {
        $filter: `msdyn_kpieventdataid eq ${eventIds.e7}`,
        $expand: "msdyn_conversation",
      });
      expect(page.value[0]!.msdyn_conversation).toMatchObject({
        msdyn_conversationid: cB,
        msdyn_name: "Conversation B",
        msdyn_channel: "voice",
        msdyn_accountid: null,
      });
    });

    it("on GET {set}(<id>)", async () => {
      const event = await api.get(
        `msdyn_kpieventsdata(${eventIds.e2})?$select=msdyn_kpieventname&$expand=msdyn_definition($select=msdyn_name),msdyn_session`,
      );
      expect(event.statusCode, event.body).toBe(200);
      expect(event.json()).toMatchObject({
        msdyn_kpieventname: "SessionClosed",
        msdyn_definition: { msdyn_name: "SessionClosed" },
        msdyn_session: { msdyn_providersessionid: "s-1", msdyn_conversationid: cA },
      });
      const conversationId = (await api.page("msdyn_conversationsdata", { $filter: `msdyn_conversationid eq '${cA}'` })).value[0]!
        .msdyn_conversationdataid;
      const conversation = await api.get(
        `msdyn_conversationsdata(${String(conversationId)})?$expand=${encodeURIComponent("msdyn_sessions($select=msdyn_name;$orderby=msdyn_providersessionid)")}`,
      );
      expect(conversation.statusCode, conversation.body).toBe(200);
      expect((conversation.json().msdyn_sessions as Json[]).map((s) => s.msdyn_name)).toEqual([`s-1 of ${cA}`, `s-2 of ${cA}`]);
    });

    it("a row without related rows gets an empty collection", async () => {
      const page = await api.page("msdyn_sessionsdata", {
        $filter: `msdyn_conversationid eq '${cB}'`,
        $expand: "msdyn_participants",
      });
      expect(page.value[0]!.msdyn_participants).toEqual([]);
    });

    it("refuses an unknown navigation property", async () => {
      const message = expectBadRequest(await api.query("msdyn_kpieventsdata", { $expand: "msdyn_nope" }));
      expect(message).toContain("msdyn_nope");
      expectBadRequest(await api.get(`msdyn_kpieventsdata(${eventIds.e1})?$expand=msdyn_sessions`), "msdyn_sessions");
    });

    it("refuses $filter, $orderby and $top inside a single-valued navigation property", async () => {
      expectBadRequest(await api.query("msdyn_kpieventsdata", { $expand: "msdyn_session($filter=msdyn_name eq 'x')" }));
      expectBadRequest(await api.query("msdyn_kpieventsdata", { $expand: "msdyn_conversation($orderby=msdyn_name)" }));
      expectBadRequest(await api.query("msdyn_kpieventsdata", { $expand: "msdyn_definition($top=1)" }));
    });

    it("refuses unknown properties and options inside", async () => {
      expectBadRequest(await api.query("msdyn_conversationsdata", { $expand: "msdyn_sessions($select=nope)" }), "nope");
      expectBadRequest(await api.query("msdyn_conversationsdata", { $expand: "msdyn_sessions($filter=nope eq 1)" }), "nope");
      expectBadRequest(await api.query("msdyn_conversationsdata", { $expand: "msdyn_sessions($skip=1)" }));
      expectBadRequest(await api.query("msdyn_conversationsdata", { $expand: "msdyn_sessions($count=true)" }));
    });
  });

  // -------------------------------------------------------------------------

  describe("annotations", () => {
    /** The annotation key comes just before the property it describes. */
    function expectFormatted(row: Json, property: string, text: string | RegExp) {
      const key = `${property}${FORMATTED}`;
      if (typeof text === "string") expect(row[key], key).toBe(text);
      else expect(row[key], key).toMatch(text);
      const keys = Object.keys(row);
      expect(keys.indexOf(key), `${key} precedes ${property}`).toBe(keys.indexOf(property) - 1);
    }

    it('Prefer: odata.include-annotations="*" adds formatted values for state, status, yes/no and date-times', async () => {
      const res = await api.query(
        "msdyn_ciproviders",
        { $orderby: "msdyn_sortorder" },
        { prefer: 'odata.include-annotations="*"' },
      );
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers["preference-applied"]).toBe('odata.include-annotations="*"');
      const [on, off] = res.json().value as Json[];
      expect(on!.msdyn_ciproviderid).toBe(providerOn);
      expectFormatted(on!, "statecode", "Active");
      expectFormatted(on!, "statuscode", "Active");
      expectFormatted(on!, "msdyn_enableanalytics", "Yes");
      expectFormatted(off!, "msdyn_enableanalytics", "No");
      expectFormatted(on!, "msdyn_clicktoact", "No");
      expectFormatted(on!, "createdon", FORMATTED_DATE_TIME);
      expectFormatted(on!, "modifiedon", FORMATTED_DATE_TIME);
      // The values themselves are unchanged.
      expect(on).toMatchObject({ statecode: 0, statuscode: 1, msdyn_enableanalytics: true });
      // Nulls get no annotation.
      expect(on).not.toHaveProperty(`msdyn_label${FORMATTED}`);
      expect(on).not.toHaveProperty(`overriddencreatedon${FORMATTED}`);
    });

    it("picklists: a system KPI event definition's msdyn_eventtype is System", async () => {
      const page = await api.page(
        "msdyn_kpieventdefinitions",
        { $filter: "msdyn_name eq 'SessionStarted'", $select: "msdyn_eventtype,statecode" },
        { prefer: 'odata.include-annotations="*"' },
      );
      expectFormatted(page.value[0]!, "msdyn_eventtype", "System");
      expectFormatted(page.value[0]!, "statecode", "Active");
    });

    it("date-times are formatted in UTC, en-US", async () => {
      const page = await api.page(
        "msdyn_kpieventsdata",
        { $filter: `msdyn_kpieventdataid eq ${eventIds.e1}`, $select: "msdyn_eventtimestamp" },
        { prefer: 'odata.include-annotations="*"' },
      );
      expectFormatted(page.value[0]!, "msdyn_eventtimestamp", "1/10/2020 8:00 AM");
    });

    it("apply to single GETs and to expanded rows", async () => {
      const single = await api.get(`msdyn_ciproviders(${providerOn})?$select=msdyn_enableanalytics`, {
        prefer: 'odata.include-annotations="*"',
      });
      expect(single.statusCode, single.body).toBe(200);
      expect(single.headers["preference-applied"]).toBe('odata.include-annotations="*"');
      expectFormatted(single.json(), "msdyn_enableanalytics", "Yes");

      const page = await api.page(
        "msdyn_kpieventsdata",
        {
          $filter: `msdyn_kpieventdataid eq ${eventIds.e1}`,
          $select: "msdyn_name",
          $expand: "msdyn_definition($select=msdyn_eventtype)",
        },
        { prefer: 'odata.include-annotations="*"' },
      );
      expectFormatted(page.value[0]!.msdyn_definition as Json, "msdyn_eventtype", "System");
    });

    it("the formatted-value annotation by name or namespace wildcard; other names give none", async () => {
      const named = await api.page(
        "msdyn_ciproviders",
        { $select: "statecode" },
        { prefer: 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"' },
      );
      expectFormatted(named.value[0]!, "statecode", "Active");
      const wildcard = await api.page(
        "msdyn_ciproviders",
        { $select: "statecode" },
        { prefer: 'odata.include-annotations="OData.Community.Display.V1.*"' },
      );
      expectFormatted(wildcard.value[0]!, "statecode", "Active");
      const other = await api.page(
        "msdyn_ciproviders",
        { $select: "statecode" },
        { prefer: 'odata.include-annotations="Microsoft.Dynamics.CRM.*"' },
      );
      expect(JSON.stringify(other)).not.toContain(FORMATTED);
    });

    it("without the Prefer header there are none", async () => {
      const res = await api.query("msdyn_ciproviders", {});
      expect(res.statusCode).toBe(200);
      expect(res.headers["preference-applied"]).toBeUndefined();
      expect(res.body).not.toContain("@OData.Community");
      expect(res.body).not.toContain("@Microsoft.Dynamics.CRM");
      const events = await api.query("msdyn_kpieventsdata", {
        $filter: `msdyn_conversationid eq '${cA}'`,
        $expand: "msdyn_definition",
      });
      expect(events.body).not.toContain("FormattedValue");
    });
  });
});

// ===========================================================================

describe("5,000 rows and more", () => {
  const t = useTestApp();
  const api = client(() => t);
  const CONVERSATIONS = 400;
  const EVENTS = 20_000;
  const conversation = (n: number) => `bulk-c-${n}`;

  beforeAll(async () => {
    const pool = t.testDb.pool;
    const owner = t.config.CALLER_USER_ID;
    await pool.query(
      `INSERT INTO msdyn_conversationdata (msdyn_conversationid, ownerid) SELECT 'bulk-c-' || g, $1::uuid FROM generate_series(1, $2::int) g`,
      [owner, CONVERSATIONS],
    );
    await pool.query(
      `INSERT INTO msdyn_sessiondata (msdyn_conversationid, msdyn_providersessionid, ownerid) SELECT 'bulk-c-' || g, 's-1', $1::uuid FROM generate_series(1, $2::int) g`,
      [owner, CONVERSATIONS],
    );
    await pool.query(
      `INSERT INTO msdyn_kpieventdata (msdyn_kpieventid, msdyn_kpieventname, msdyn_conversationid, msdyn_providersessionid, importsequencenumber, ownerid)
       SELECT $1::uuid, 'SessionStarted', 'bulk-c-' || (g % $3::int + 1), 's-1', g, $2::uuid FROM generate_series(1, $4::int) g`,
      [SESSION_STARTED, owner, CONVERSATIONS, EVENTS],
    );
    await pool.query("ANALYZE");
  }, 120_000);

  it("@odata.count stops at 5,000, and the annotations say the limit was exceeded", async () => {
    const res = await api.query("msdyn_kpieventsdata", { $count: "true", $select: "msdyn_name" }, { prefer: COUNT_ANNOTATIONS });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["@odata.context", "@odata.count", TOTAL, TOTAL_EXCEEDED, "value", "@odata.nextLink"]);
    expect(body["@odata.count"]).toBe(5000);
    expect(body[TOTAL]).toBe(5000);
    expect(body[TOTAL_EXCEEDED]).toBe(true);
    expect(body.value).toHaveLength(5000);
  });

  it("a filtered count under the cap is exact", async () => {
    const body = await api.page(
      "msdyn_kpieventsdata",
      { $count: "true", $filter: `msdyn_conversationid eq '${conversation(7)}'` },
      { prefer: COUNT_ANNOTATIONS },
    );
    expect(body["@odata.count"]).toBe(EVENTS / CONVERSATIONS);
    expect(body).toMatchObject({ [TOTAL]: EVENTS / CONVERSATIONS, [TOTAL_EXCEEDED]: false });
    expect(body.value).toHaveLength(EVENTS / CONVERSATIONS);
  });

  it("GET {set}/$count stops at 5,000", async () => {
    const res = await api.get("msdyn_kpieventsdata/$count");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    expect(res.body.replace(/^\uFEFF/, "")).toBe("5000");
    expect((await api.get("msdyn_conversationsdata/$count")).body.replace(/^\uFEFF/, "")).toBe(String(CONVERSATIONS));
  });

  it("a page holds at most 5,000 rows; a larger maxpagesize is applied as 5,000", async () => {
    const res = await api.query("msdyn_kpieventsdata", { $select: "msdyn_name" }, { prefer: "odata.maxpagesize=10000" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["preference-applied"]).toBe("odata.maxpagesize=5000");
    expect(res.json().value).toHaveLength(5000);
    expect(res.json()["@odata.nextLink"]).toEqual(expect.any(String));
    expectBadRequest(await api.query("msdyn_kpieventsdata", { $top: "5001" }));
  });

  it("following the next links returns all 20,000 rows once, in pages of 5,000", async () => {
    const pages = await api.allPages("msdyn_kpieventsdata", { $select: "importsequencenumber" }, {});
    expect(pages.map((p) => p.value.length)).toEqual([5000, 5000, 5000, 5000]);
    const all = pages.flatMap((p) => ids(p.value));
    expectUnique(all);
    expect(all).toHaveLength(EVENTS);
    const numbers = new Set(pages.flatMap((p) => p.value.map((r) => r.importsequencenumber as number)));
    expect(numbers.size).toBe(EVENTS);
  });

  it("$apply aggregates over all rows", async () => {
    const value = (
      await api.page("msdyn_kpieventsdata", {
        $apply: "groupby((msdyn_kpieventname),aggregate($count as n,importsequencenumber with max as last))",
      })
    ).value;
    expect(value).toEqual([{ msdyn_kpieventname: "SessionStarted", n: EVENTS, last: EVENTS }]);
  });

  it("the events of a conversation are read through ix_msdyn_kpieventdata_conversationid, not a sequential scan", async () => {
    interface PlanNode {
      "Node Type": string;
      "Index Name"?: string;
      "Relation Name"?: string;
      Plans?: PlanNode[];
    }
    const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];
    for (const conversationId of ["x", conversation(7)]) {
      const { rows } = await t.testDb.pool.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(
        `EXPLAIN (FORMAT JSON) SELECT * FROM msdyn_kpieventdata WHERE msdyn_conversationid = '${conversationId}' ORDER BY msdyn_kpieventdataid LIMIT 5001`,
      );
      const plan = nodes(rows[0]!["QUERY PLAN"][0]!.Plan);
      const described = JSON.stringify(plan.map((n) => [n["Node Type"], n["Index Name"] ?? n["Relation Name"]]));
      expect(
        plan.some(
          (n) =>
            ["Index Scan", "Bitmap Index Scan", "Index Only Scan"].includes(n["Node Type"]) &&
            ["ix_msdyn_kpieventdata_conversationid", "ix_msdyn_kpieventdata_conversationid_eventtimestamp"].includes(
              n["Index Name"] ?? "",
            ),
        ),
        described,
      ).toBe(true);
      expect(
        plan.some((n) => n["Node Type"] === "Seq Scan"),
        described,
      ).toBe(false);
    }
    // "A conversation's events, newest first" (README): one scan of (conversation, time), no sort.
    const { rows } = await t.testDb.pool.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (FORMAT JSON) SELECT * FROM msdyn_kpieventdata WHERE msdyn_conversationid = '${conversation(7)}' ORDER BY msdyn_eventtimestamp DESC, msdyn_kpieventdataid DESC LIMIT 101`,
    );
    const plan = nodes(rows[0]!["QUERY PLAN"][0]!.Plan);
    const described = JSON.stringify(plan.map((n) => [n["Node Type"], n["Index Name"] ?? n["Relation Name"]]));
    expect(
      plan.some((n) => n["Index Name"] === "ix_msdyn_kpieventdata_conversationid_eventtimestamp"),
      described,
    ).toBe(true);
  });
});
