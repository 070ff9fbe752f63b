/**
 * Hostile and random query options against GET /api/data/v9.2/msdyn_kpieventsdata, as a
 * property-based test (fast-check): whatever arrives in $filter, $orderby, $select, $apply,
 * $expand (and $top, $count, aliases), the answer is a 200 or a Dataverse-shaped 400 — never
 * a 500, never PostgreSQL's own error text — and the data survives.
 *
 * Inputs stay under 8 KB per option, as a real request line must fit Node's 16 KB header limit.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { navigationProperties } from "../../src/model/navigation.js";
import { SYSTEM_KPI_EVENT_DEFINITIONS, tableByLogicalName, TABLES } from "../../src/model/tables.js";
import { propertyName } from "../../src/model/properties.js";
import { useTestApp } from "../helpers/app.js";
import { ODATA_JSON, createdId, records } from "../helpers/records.js";

const URL_PATH = "/api/data/v9.2/msdyn_kpieventsdata";
/** Text PostgreSQL (or node-postgres) would put in an error; none of it may reach a client. */
const PG_MARKERS = [
  "syntax error at or near",
  'relation "',
  'column "',
  "invalid input syntax",
  "operator does not exist",
  "pg_",
  "out of range for type",
  "does not exist",
  "violates",
  "SQLSTATE",
  "LIKE pattern",
  "bind message",
];

const events = tableByLogicalName("msdyn_kpieventdata");
const PROPERTIES = events.columns.map(propertyName);
const TEXT_PROPERTIES = events.columns.filter((c) => c.type === "string" || c.type === "memo").map(propertyName);
const NUMBER_PROPERTIES = events.columns
  .filter((c) => ["integer", "bigint", "state", "status"].includes(c.type))
  .map(propertyName);
const DATE_PROPERTIES = events.columns.filter((c) => c.type === "datetime" || c.type === "dateonly").map(propertyName);
const NAVIGATIONS = navigationProperties(events);

type Query = Record<string, string>;

// ---------------------------------------------------------------------------
// Arbitraries

const anyText = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: fc.constantFrom(..."()'\",;=/[]@$ eqandornot01-.:TZ%_\\"), maxLength: 60 }),
);

const quoted = (s: string) => `'${s.replaceAll("'", "''")}'`;

const guid = fc.uuid().chain((g) => fc.constantFrom(g, g.toUpperCase()));
const dateText = fc.oneof(
  fc
    .date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc
    .tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }))
    .map(([y, m, d]) => `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`),
  fc.constantFrom(
    "2026-11-22T09:30:00Z",
    "2026-11-22T09:30:00.1234567+14:00",
    "2026-11-22T24:00Z",
    "2026-02-30",
    "0000-01-01",
    "9999-12-31T23:59:59-12:00",
  ),
);
const numberText = fc.oneof(
  fc.integer().map(String),
  fc.integer({ min: -1000, max: 1000 }).map(String),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => String(n)),
  fc.constantFrom(
    "0",
    "-0",
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775808",
    "1e308",
    "1e400",
    "-1e400",
    "1.5",
    "0.0000001",
  ),
);
const literal = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 20 }).map(quoted) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 12 }).map(quoted) },
  { weight: 2, arbitrary: numberText },
  { weight: 1, arbitrary: guid },
  { weight: 1, arbitrary: dateText },
  { weight: 1, arbitrary: dateText.map(quoted) },
  { weight: 1, arbitrary: fc.constantFrom("null", "true", "false", "@p1", "@p2", "@nothing", "''", "''''") },
);
const property = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...PROPERTIES) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("x", "MSDYN_NAME", "ownerid", "msdyn_session", "msdyn_session/msdyn_name", "$it", "@p1"),
  },
);
const operand = fc.oneof({ weight: 2, arbitrary: property }, { weight: 3, arbitrary: literal });
const comparisonOp = fc.constantFrom("eq", "ne", "gt", "ge", "lt", "le", "has", "like", "EQ");

const jsonValues = fc.array(
  fc.oneof(
    fc.string({ maxLength: 12 }).map((s) => JSON.stringify(s)),
    numberText,
    guid.map((g) => JSON.stringify(g)),
    dateText.map((d) => JSON.stringify(d)),
  ),
  { maxLength: 4 },
);
const QUERY_FUNCTIONS = [
  "In",
  "NotIn",
  "Between",
  "NotBetween",
  "LastXHours",
  "LastXDays",
  "OnOrAfter",
  "OnOrBefore",
  "Today",
  "EqualUserId",
  "Nope",
];
const queryFunction = fc
  .tuple(
    fc.constantFrom(...QUERY_FUNCTIONS),
    fc.oneof(fc.constantFrom(...PROPERTIES, ...DATE_PROPERTIES, ...DATE_PROPERTIES), fc.string({ maxLength: 10 })),
    fc.oneof(
      jsonValues.map((values) => `PropertyValues=[${values.join(",")}]`),
      literal.map((value) => `PropertyValue=${value}`),
      fc.constant(""),
    ),
  )
  .map(([name, prop, args]) => `Microsoft.Dynamics.CRM.${name}(PropertyName=${quoted(prop)}${args ? `,${args}` : ""})`);

const leaf = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(operand, comparisonOp, operand).map(([a, op, b]) => `${a} ${op} ${b}`) },
  { weight: 3, arbitrary: fc.tuple(property, comparisonOp, literal).map(([a, op, b]) => `${a} ${op} ${b}`) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom("contains", "startswith", "endswith", "tolower", "substringof"), operand, operand)
      .map(([fn, a, b]) => `${fn}(${a},${b})`),
  },
  { weight: 2, arbitrary: queryFunction },
);

const { filter: filterExpr } = fc.letrec<{ filter: string }>((tie) => ({
  filter: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 4, arbitrary: leaf },
    { weight: 1, arbitrary: tie("filter").map((e) => `(${e})`) },
    { weight: 1, arbitrary: tie("filter").map((e) => `not ${e}`) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(tie("filter"), fc.constantFrom("and", "or", "AND", ""), tie("filter"))
        .map(([a, op, b]) => `${a} ${op} ${b}`),
    },
  ),
}));

/** A grammar-shaped expression, sometimes damaged by a random cut or insertion. */
const damaged = (arbitrary: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 4, arbitrary },
    {
      weight: 1,
      arbitrary: fc
        .tuple(arbitrary, fc.nat(), fc.string({ unit: fc.constantFrom(..."()'\",;= /[]"), maxLength: 3 }))
        .map(([text, at, insert]) => {
          const i = text.length ? at % text.length : 0;
          return text.slice(0, i) + insert + text.slice(i + 1);
        }),
    },
  );

const orderBy = fc
  .array(
    fc.tuple(property, fc.constantFrom("", " asc", " desc", " DESC", " sideways")).map(([p, d]) => `${p}${d}`),
    { minLength: 1, maxLength: 4 },
  )
  .map((items) => items.join(","));
const select = fc
  .array(fc.oneof(property, fc.constant("*"), fc.constant("")), { minLength: 1, maxLength: 6 })
  .map((items) => items.join(","));

const aggregate = fc
  .tuple(
    fc.oneof(
      fc.constantFrom(
        ...NUMBER_PROPERTIES,
        ...TEXT_PROPERTIES,
        ...DATE_PROPERTIES,
        "msdyn_kpieventdataid",
        "_ownerid_value",
        "$count",
      ),
      property,
    ),
    fc.constantFrom("sum", "average", "min", "max", "avg", "countdistinct", "count"),
    fc.oneof(fc.constantFrom("total", "n", "count", "msdyn_name", "$count", "x y"), fc.string({ maxLength: 6 })),
  )
  .map(([p, fn, alias]) => (p === "$count" ? `$count as ${alias}` : `${p} with ${fn} as ${alias}`));
const aggregates = fc.array(aggregate, { minLength: 1, maxLength: 3 }).map((items) => `aggregate(${items.join(",")})`);
const groupBy = fc
  .tuple(fc.array(property, { minLength: 1, maxLength: 3 }), fc.option(aggregates, { nil: undefined }))
  .map(([props, agg]) => `groupby((${props.join(",")})${agg ? `,${agg}` : ""})`);
const apply = damaged(
  fc
    .tuple(
      fc.option(
        filterExpr.map((f) => `filter(${f})`),
        { nil: undefined },
      ),
      fc.oneof(groupBy, aggregates, fc.constant("topcount(2,importsequencenumber)")),
    )
    .map(([f, step]) => (f ? `${f}/${step}` : step)),
);

const expandItem = fc
  .tuple(
    fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(...NAVIGATIONS.map((n) => n.name)) },
      { weight: 1, arbitrary: fc.constantFrom("msdyn_sessions", "nope", "msdyn_session/$ref", "*") },
    ),
    fc.array(
      fc.oneof(
        select.map((s) => `$select=${s}`),
        filterExpr.map((f) => `$filter=${f}`),
        orderBy.map((o) => `$orderby=${o}`),
        fc.oneof(fc.nat(6000), fc.integer()).map((n) => `$top=${n}`),
        fc.constantFrom("$skip=1", "$count=true", "$expand=msdyn_definition", "$levels=2", "junk"),
      ),
      { maxLength: 3 },
    ),
  )
  .map(([nav, options]) => (options.length ? `${nav}(${options.join(";")})` : nav));
const expand = damaged(fc.array(expandItem, { minLength: 1, maxLength: 4 }).map((items) => items.join(",")));

const aliases = fc.record({ "@p1": literal, "@p2": fc.oneof(property, literal) }, { requiredKeys: [] });

// ---------------------------------------------------------------------------

describe("hostile and random query options never reach the database as errors", () => {
  const t = useTestApp();
  let snapshot: Record<string, unknown>;
  const runs = { total: 0, ok: 0, badRequest: 0 };

  async function tableSnapshot(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    // The audit log grows with every request, as it should: the data tables must not.
    for (const table of TABLES.filter((t) => t.webApi && !t.readOnly)) {
      const { rows } = await t.testDb.pool.query(
        `SELECT count(*)::int AS n, max(versionnumber)::text AS v FROM "${table.logicalName}"`,
      );
      out[table.logicalName] = rows[0];
    }
    return out;
  }

  const fixtures = records(t);
  const post = async (set: string, body: Record<string, unknown>) => createdId(await fixtures.post(set, body));

  beforeAll(async () => {
    const provider = await fixtures.provider({ name: "Fuzz", enabled: true });
    for (let c = 1; c <= 3; c++) {
      const conversation = `fuzz-${c}-${randomUUID()}`;
      await post("msdyn_conversationsdata", {
        msdyn_conversationid: conversation,
        msdyn_providerid: provider,
        msdyn_name: `Fuzz ${c}`,
      });
      await post("msdyn_sessionsdata", { msdyn_conversationid: conversation, msdyn_providersessionid: "s-1" });
      await post("msdyn_sessionparticipantsdata", {
        msdyn_conversationid: conversation,
        msdyn_providersessionid: "s-1",
        msdyn_participantid: "agent-1",
      });
      for (const [i, definition] of SYSTEM_KPI_EVENT_DEFINITIONS.slice(0, 4).entries()) {
        await post("msdyn_kpieventsdata", {
          msdyn_conversationid: conversation,
          msdyn_providersessionid: "s-1",
          msdyn_participantid: i % 2 ? "agent-1" : null,
          msdyn_kpieventid: definition.id,
          msdyn_kpieventreason: i === 0 ? null : `Reason ${i} Ü`,
          msdyn_eventtimestamp: i === 1 ? null : new Date(Date.UTC(2026, 0, c, i)).toISOString(),
          importsequencenumber: i === 2 ? null : c * 10 + i,
        });
      }
    }
    snapshot = await tableSnapshot();
  });

  /** One request; throws (with the query) unless it is a 200 or a clean 400. */
  async function check(query: Query): Promise<void> {
    const res = await t.app.inject({ method: "GET", url: URL_PATH, query });
    runs.total++;
    const context = `${JSON.stringify(query)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
    expect([200, 400], context).toContain(res.statusCode);
    expect(res.headers["content-type"], context).toBe(ODATA_JSON);
    const body = res.json<Record<string, unknown>>();
    if (res.statusCode === 400) {
      runs.badRequest++;
      expect(Object.keys(body), context).toEqual(["error"]);
      const error = body.error as Record<string, unknown>;
      expect(Object.keys(error).sort(), context).toEqual(["code", "message"]);
      expect(typeof error.code, context).toBe("string");
      expect(typeof error.message, context).toBe("string");
      expect((error.message as string).length, context).toBeGreaterThan(0);
    } else {
      runs.ok++;
      expect(Array.isArray(body.value), context).toBe(true);
    }
    // PostgreSQL's words never reach the client (unless the request itself carried them and is echoed).
    const input = Object.entries(query).flat().join("\n").toLowerCase();
    const text = res.body.toLowerCase();
    for (const marker of PG_MARKERS) {
      if (!input.includes(marker.toLowerCase()))
        expect(text, `${context}\ncontains "${marker}"`).not.toContain(marker.toLowerCase());
    }
  }

  const requestProperty = (arbitrary: fc.Arbitrary<Query>) => fc.asyncProperty(arbitrary, async (query) => check(query));

  // -------------------------------------------------------------------------
  // Known hostile inputs, one by one (so each failure is reported on its own).

  const INJECTIONS = [
    "'; DROP TABLE msdyn_kpieventdata; --",
    '") OR 1=1 --',
    "' OR '1'='1",
    "msdyn_name eq ''; DROP TABLE msdyn_kpieventdata; --'",
    "msdyn_name eq 'x' or 1 eq 1",
    "msdyn_name eq 'x'' OR ''1''=''1'",
    "msdyn_name eq 'a'; DELETE FROM msdyn_kpieventdata",
    "msdyn_name) OR (1=1",
    "\"msdyn_name\" eq 'x'",
    "msdyn_name eq $1",
    "msdyn_name eq 'a' union select * from pg_user --",
    "msdyn_kpieventdataid eq 00000000-0000-0000-0000-000000000000; --",
    "pg_sleep(10) eq 1",
    "msdyn_name eq 'x' /* comment */",
    "msdyn_name eq E'\\x27'",
    "msdyn_name eq U&'\\0027'",
    "msdyn_name eq $$x$$",
  ];

  it.each(
    INJECTIONS.flatMap((text) =>
      ["$filter", "$orderby", "$select", "$apply", "$expand"].map((option) => [option, text] as const),
    ),
  )("%s=%s", async (option, text) => {
    await check({ [option]: text });
  });

  const KNOWN: Array<[string, Query]> = [
    ["deeply nested parentheses", { $filter: `${"(".repeat(1000)}msdyn_name eq 'x'${")".repeat(1000)}` }],
    ["unbalanced parentheses", { $filter: `${"(".repeat(50)}msdyn_name eq 'x'` }],
    ["a long chain of not", { $filter: `${"not ".repeat(2000)}msdyn_name eq 'x'` }],
    ["more than 500 conditions", { $filter: Array.from({ length: 600 }, (_, i) => `importsequencenumber eq ${i}`).join(" or ") }],
    [
      "an In with 1,500 values",
      {
        $filter: `Microsoft.Dynamics.CRM.In(PropertyName='importsequencenumber',PropertyValues=[${Array.from({ length: 1500 }, (_, i) => `"${i}"`).join(",")}])`,
      },
    ],
    ["a run of quotes", { $filter: `msdyn_name eq ${"'".repeat(101)}` }],
    ["an integer beyond Int32", { $filter: "importsequencenumber eq 99999999999999999999" }],
    ["an integer just beyond Int32", { $filter: "importsequencenumber gt 2147483648" }],
    ["a decimal for an integer column", { $filter: "importsequencenumber eq 1.5" }],
    ["an exponent that overflows to Infinity", { $filter: "importsequencenumber lt -1e400" }],
    ["a bigint beyond Int64", { $filter: "versionnumber gt 9223372036854775808" }],
    [
      "an In value beyond Int32",
      { $filter: `Microsoft.Dynamics.CRM.In(PropertyName='importsequencenumber',PropertyValues=["99999999999"])` },
    ],
    [
      "a Between value that is a decimal",
      { $filter: `Microsoft.Dynamics.CRM.Between(PropertyName='importsequencenumber',PropertyValues=["1.5","2"])` },
    ],
    ["a NUL character in a string", { $filter: "msdyn_name eq 'a\u0000b'" }],
    ["a NUL character in contains", { $filter: "contains(msdyn_name,'\u0000')" }],
    ["endswith a backslash", { $filter: "endswith(msdyn_name,'\\')" }],
    ["contains a backslash", { $filter: "contains(msdyn_kpieventreason,'\\')" }],
    ["startswith a backslash", { $filter: "startswith(msdyn_kpieventreason,'\\')" }],
    ["LIKE wildcards", { $filter: "contains(msdyn_name,'%_[^a]%')" }],
    ["year 0", { $filter: "createdon gt 0000-01-01" }],
    ["a date-time string the JavaScript Date stretches to year 99999", { $filter: "createdon gt '99999'" }],
    ["a date-time that is past year 9999 in UTC", { $filter: "createdon lt 9999-12-31T23:59:59-12:00" }],
    ["a date-time string that is past year 9999 in UTC", { $filter: "createdon eq '9999-12-31T23:59:59-12:00'" }],
    ["a date-time with +14:00", { $filter: "createdon gt 2026-11-22T09:30:00.1234567+14:00" }],
    ["an impossible date", { $filter: "createdon gt 2026-13-45" }],
    [
      "LastXDays beyond Int32",
      { $filter: "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=99999999999)" },
    ],
    [
      "LastXDays past the calendar",
      { $filter: "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=2000000000)" },
    ],
    [
      "LastXHours beyond Int32",
      { $filter: "Microsoft.Dynamics.CRM.LastXHours(PropertyName='createdon',PropertyValue=99999999999)" },
    ],
    [
      "LastXHours past the calendar",
      { $filter: "Microsoft.Dynamics.CRM.LastXHours(PropertyName='createdon',PropertyValue=2000000000)" },
    ],
    ["OnOrAfter year 0", { $filter: "Microsoft.Dynamics.CRM.OnOrAfter(PropertyName='createdon',PropertyValue='0000-01-01')" }],
    ["a GUID for a number", { $filter: "importsequencenumber eq 00000000-0000-0000-0000-000000000000" }],
    ["unicode everywhere", { $filter: "msdyn_name eq '日本語 🙂 \u202e ̈'", $orderby: "msdyn_name", $select: "msdyn_name" }],
    ["unicode property names", { $filter: "msdyn_nämé eq 'x'" }],
    ["min of a GUID", { $apply: "aggregate(msdyn_kpieventdataid with min as m)" }],
    ["max of a lookup", { $apply: "aggregate(_ownerid_value with max as m)" }],
    ["groupby the same property twice", { $apply: "groupby((msdyn_name,msdyn_name),aggregate($count as n))" }],
    ["an alias that shadows a group", { $apply: "groupby((msdyn_name),aggregate($count as msdyn_name))" }],
    ["an alias with a quote", { $apply: 'aggregate($count as a"b)' }],
    ["$apply with a $filter", { $apply: "aggregate($count as n)", $filter: "importsequencenumber gt 2147483648" }],
    [
      "$apply with nested parentheses",
      { $apply: `filter(${"(".repeat(200)}msdyn_name eq 'x'${")".repeat(200)})/aggregate($count as n)` },
    ],
    [
      "$expand with a hostile inner filter",
      { $expand: "msdyn_conversation($select=msdyn_name),msdyn_session($select=x'; DROP TABLE msdyn_sessiondata; --)" },
    ],
    [
      "an integer overflow in $filter alongside $expand",
      { $expand: "msdyn_definition", $filter: "importsequencenumber ne 99999999999" },
    ],
    ["$expand of every navigation property", { $expand: NAVIGATIONS.map((n) => n.name).join(",") }],
    ["$top beyond Int64", { $top: "99999999999999999999999" }],
    ["an empty alias", { $filter: "msdyn_name eq @p1", "@p1": "" }],
    ["an alias that is an expression", { $filter: "msdyn_name eq @p1", "@p1": "'a' or 1 eq 1" }],
    ["an alias that names itself", { $filter: "@p1 eq 1", "@p1": "@p1" }],
    ["a $skiptoken of garbage", { $skiptoken: "'; DROP TABLE msdyn_kpieventdata; --" }],
  ];

  it.each(KNOWN)("%s", async (_, query) => {
    await check(query);
  });

  // -------------------------------------------------------------------------
  // Random: 2,000 runs in all.

  it("random text in every option (400 runs)", { timeout: 60_000 }, async () => {
    await fc.assert(
      requestProperty(
        fc.record(
          {
            $filter: anyText,
            $orderby: anyText,
            $select: anyText,
            $apply: anyText,
            $expand: anyText,
            $top: anyText,
            "@p1": anyText,
          },
          { requiredKeys: [] },
        ),
      ),
      { numRuns: 400 },
    );
  });

  it(
    "grammar-shaped $filter expressions from real properties, operators and literals (700 runs)",
    { timeout: 60_000 },
    async () => {
      await fc.assert(
        requestProperty(
          fc.tuple(damaged(filterExpr), aliases, fc.option(orderBy, { nil: undefined })).map(([filter, a, o]) => ({
            $filter: filter,
            ...a,
            ...(o ? { $orderby: o } : {}),
          })),
        ),
        { numRuns: 700 },
      );
    },
  );

  it("grammar-shaped $select, $orderby, $top and $count (300 runs)", { timeout: 60_000 }, async () => {
    await fc.assert(
      requestProperty(
        fc.record(
          {
            $select: select,
            $orderby: orderBy,
            $top: fc.oneof(fc.nat(6000).map(String), numberText),
            $count: fc.constantFrom("true", "false", "TRUE", "1"),
            "@p2": fc.constantFrom(...PROPERTIES),
          },
          { requiredKeys: [] },
        ),
      ),
      { numRuns: 300 },
    );
  });

  it("grammar-shaped $apply (300 runs)", { timeout: 60_000 }, async () => {
    await fc.assert(requestProperty(fc.tuple(apply, aliases).map(([a, al]) => ({ $apply: a, ...al }))), { numRuns: 300 });
  });

  it("grammar-shaped $expand (300 runs)", { timeout: 60_000 }, async () => {
    await fc.assert(
      requestProperty(
        fc.tuple(expand, fc.option(select, { nil: undefined })).map(([e, s]) => ({ $expand: e, ...(s ? { $select: s } : {}) })),
      ),
      { numRuns: 300 },
    );
  });

  // -------------------------------------------------------------------------

  it("afterwards every table still exists and holds exactly its rows, unchanged", async () => {
    expect(runs.total).toBeGreaterThan(0);
    expect(await tableSnapshot()).toEqual(snapshot);
    const { rows } = await t.testDb.pool.query(
      `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY($1::text[])`,
      [TABLES.map((table) => table.logicalName)],
    );
    expect(rows[0].n).toBe(TABLES.length);
    // And the API still answers.
    const res = await t.app.inject({ method: "GET", url: URL_PATH, query: { $count: "true", $select: "msdyn_name" } });
    expect(res.statusCode).toBe(200);
    expect(res.json()["@odata.count"]).toBe((snapshot.msdyn_kpieventdata as { n: number }).n);
  });
});
