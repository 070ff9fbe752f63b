/**
 * The OData query grammar as pure functions (shared/reference/dataverse-webapi.md §3):
 * `tokenize` and `parseFilter` (src/odata/filter-parser.ts), and `parseCollectionQuery`,
 * `parseOrderBy` and `parseApply` (src/odata/query-options.ts). Names are checked against
 * the table when the AST becomes SQL, so unknown properties in `$filter` are tested through
 * `filterToSql`.
 */
import { describe, expect, it } from "vitest";
import { SqlParams } from "../../src/db/sql.js";
import { ODataError } from "../../src/odata/errors.js";
import { tableByLogicalName } from "../../src/model/tables.js";
import { type FilterExpr, type Literal, parseFilter, tokenize } from "../../src/odata/filter-parser.js";
import { filterToSql } from "../../src/channel-analytics/store/filter-sql.js";
import { parseApply, parseCollectionQuery, parseOrderBy } from "../../src/odata/query-options.js";

const events = tableByLogicalName("msdyn_kpieventdata");
const providers = tableByLogicalName("msdyn_ciprovider");

/** The ODataError `fn` throws; fails the test when it throws nothing or something else. */
function failure(fn: () => unknown): ODataError {
  try {
    fn();
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(ODataError);
    return error as ODataError;
  }
  throw new Error("expected an ODataError, but nothing was thrown");
}

/** A 400 whose message is exactly `message`, or contains every fragment when `message` is a list. */
function expectBadRequest(fn: () => unknown, message: string | string[]): ODataError {
  const error = failure(fn);
  expect(error.status).toBe(400);
  if (typeof message === "string") expect(error.message).toBe(message);
  else for (const fragment of message) expect(error.message).toContain(fragment);
  expect(error.toBody()).toEqual({ error: { code: expect.any(String), message: error.message } });
  return error;
}

// Builders for expected ASTs (positions ignored through expect.any).
const prop = (name: string) => ({ kind: "property", name, position: expect.any(Number) });
const lit = (type: Literal["type"], value: Literal["value"]) => ({ kind: "literal", type, value, position: expect.any(Number) });
const cmp = (left: unknown, op: string, right: unknown) => ({ kind: "compare", op, left, right, position: expect.any(Number) });
const eq = (name: string, value: number) => cmp(prop(name), "eq", lit("number", value));
const and = (left: unknown, right: unknown) => ({ kind: "and", left, right });
const or = (left: unknown, right: unknown) => ({ kind: "or", left, right });
const not = (operand: unknown) => ({ kind: "not", operand, position: expect.any(Number) });

/** The comparison at the root of a parsed filter. */
function comparison(text: string, aliases = {}): Extract<FilterExpr, { kind: "compare" }> {
  const expr = parseFilter(text, aliases);
  expect(expr.kind).toBe("compare");
  return expr as Extract<FilterExpr, { kind: "compare" }>;
}

describe("tokenize", () => {
  it("splits an expression into typed tokens with 0-based positions", () => {
    const tokens = tokenize("msdyn_name eq 'O''Brien' and (importsequencenumber ge -7)");
    expect(tokens.map((t) => [t.type, t.text, t.position])).toEqual([
      ["word", "msdyn_name", 0],
      ["word", "eq", 11],
      ["string", "'O''Brien'", 14],
      ["word", "and", 25],
      ["(", "(", 29],
      ["word", "importsequencenumber", 30],
      ["word", "ge", 51],
      ["number", "-7", 54],
      [")", ")", 56],
    ]);
    expect(tokens[2]!.value).toBe("O'Brien");
    expect(tokens[7]!.value).toBe(-7);
  });

  it("recognises GUIDs, date-times, numbers, aliases, JSON strings and punctuation", () => {
    const text = `1D30A3CB-1BD9-E911-A838-000D3A375590 2026-11-22T09:30:00Z 2026-11-22 3.25 1e3 @p1 ["a\\"b"] , = /`;
    expect(tokenize(text).map((t) => [t.type, t.text])).toEqual([
      ["guid", "1D30A3CB-1BD9-E911-A838-000D3A375590"],
      ["datetime", "2026-11-22T09:30:00Z"],
      ["datetime", "2026-11-22"],
      ["number", "3.25"],
      ["number", "1e3"],
      ["alias", "@p1"],
      ["[", "["],
      ["jsonString", '"a\\"b"'],
      ["]", "]"],
      [",", ","],
      ["=", "="],
      ["/", "/"],
    ]);
    expect(tokenize(`"a\\"b"`)[0]!.value).toBe('a"b');
  });

  it("refuses an unterminated string literal, naming its position and the text", () => {
    expectBadRequest(
      () => tokenize("msdyn_name eq 'abc"),
      "There is an unterminated literal at position 14 in 'msdyn_name eq 'abc'.",
    );
    // A doubled quote at the very end does not close the literal.
    expectBadRequest(
      () => tokenize("msdyn_name eq 'abc''"),
      "There is an unterminated literal at position 14 in 'msdyn_name eq 'abc'''.",
    );
    expectBadRequest(() => tokenize('x eq ["abc'), "There is an unterminated literal at position 6 in 'x eq [\"abc'.");
  });

  it("refuses a character that starts no token, with its position", () => {
    expectBadRequest(() => tokenize("msdyn_name eq #1"), ["position 14", "'#'"]);
    expectBadRequest(() => tokenize("a ; b"), ["position 2", "';'"]);
  });
});

describe("parseFilter", () => {
  describe("precedence and grouping", () => {
    it("'and' binds tighter than 'or'", () => {
      expect(parseFilter("a eq 1 or b eq 2 and c eq 3")).toEqual(or(eq("a", 1), and(eq("b", 2), eq("c", 3))));
      expect(parseFilter("a eq 1 and b eq 2 or c eq 3")).toEqual(or(and(eq("a", 1), eq("b", 2)), eq("c", 3)));
    });

    it("parentheses override precedence", () => {
      expect(parseFilter("(a eq 1 or b eq 2) and c eq 3")).toEqual(and(or(eq("a", 1), eq("b", 2)), eq("c", 3)));
      expect(parseFilter("a eq 1 and (b eq 2 or c eq 3)")).toEqual(and(eq("a", 1), or(eq("b", 2), eq("c", 3))));
      expect(parseFilter("((((a eq 1))))")).toEqual(eq("a", 1));
    });

    it("'and' and 'or' associate to the left", () => {
      expect(parseFilter("a eq 1 and b eq 2 and c eq 3")).toEqual(and(and(eq("a", 1), eq("b", 2)), eq("c", 3)));
      expect(parseFilter("a eq 1 or b eq 2 or c eq 3")).toEqual(or(or(eq("a", 1), eq("b", 2)), eq("c", 3)));
    });

    it("'not' binds tighter than 'and' and 'or' and may repeat", () => {
      expect(parseFilter("not a eq 1 and b eq 2")).toEqual(and(not(eq("a", 1)), eq("b", 2)));
      expect(parseFilter("a eq 1 or not b eq 2")).toEqual(or(eq("a", 1), not(eq("b", 2))));
      expect(parseFilter("not (a eq 1 or b eq 2)")).toEqual(not(or(eq("a", 1), eq("b", 2))));
      expect(parseFilter("not not a eq 1")).toEqual(not(not(eq("a", 1))));
    });

    it("keeps the position of each operator", () => {
      expect(parseFilter("a eq 1 and not b lt 2")).toMatchObject({
        kind: "and",
        left: { kind: "compare", op: "eq", position: 2 },
        right: { kind: "not", position: 11, operand: { kind: "compare", op: "lt", position: 17 } },
      });
    });
  });

  describe("comparisons and literals", () => {
    it.each(["eq", "ne", "gt", "ge", "lt", "le"])("the operator %s", (op) => {
      expect(parseFilter(`importsequencenumber ${op} 5`)).toEqual(cmp(prop("importsequencenumber"), op, lit("number", 5)));
    });

    it("null", () => {
      expect(parseFilter("msdyn_participantid eq null")).toEqual(cmp(prop("msdyn_participantid"), "eq", lit("null", null)));
      expect(parseFilter("msdyn_participantid ne null")).toEqual(cmp(prop("msdyn_participantid"), "ne", lit("null", null)));
    });

    it("string literals, with a quote written twice", () => {
      expect(comparison("msdyn_name eq 'O''Bryan'").right).toEqual(lit("string", "O'Bryan"));
      expect(comparison("msdyn_name eq ''''").right).toEqual(lit("string", "'"));
      expect(comparison("msdyn_name eq ''").right).toEqual(lit("string", ""));
      expect(comparison("msdyn_name eq 'a and b or not c eq d'").right).toEqual(lit("string", "a and b or not c eq d"));
      expect(comparison("msdyn_name eq 'Zoë 日本 🙂'").right).toEqual(lit("string", "Zoë 日本 🙂"));
    });

    it("unquoted GUIDs, lower-cased", () => {
      expect(comparison("msdyn_kpieventid eq 1D30A3CB-1BD9-E911-A838-000D3A375590").right).toEqual(
        lit("guid", "1d30a3cb-1bd9-e911-a838-000d3a375590"),
      );
      // A GUID starting with letters is not a property name.
      expect(comparison("msdyn_kpieventid eq cd3526ab-ac21-4bd5-aace-15c84f9ca29d").right).toEqual(
        lit("guid", "cd3526ab-ac21-4bd5-aace-15c84f9ca29d"),
      );
    });

    it("date-time and date literals", () => {
      expect(comparison("createdon gt 2026-11-22T09:30:00Z").right).toEqual(lit("datetime", "2026-11-22T09:30:00Z"));
      expect(comparison("createdon gt 2026-11-22T09:30:00.1234567+02:00").right).toEqual(
        lit("datetime", "2026-11-22T09:30:00.1234567+02:00"),
      );
      expect(comparison("createdon gt 2026-11-22T09:30-05:00").right).toEqual(lit("datetime", "2026-11-22T09:30-05:00"));
      expect(comparison("createdon ge 2026-11-22").right).toEqual(lit("datetime", "2026-11-22"));
    });

    it("numbers: integers, negatives, decimals, exponents", () => {
      expect(comparison("importsequencenumber eq 0").right).toEqual(lit("number", 0));
      expect(comparison("importsequencenumber eq -42").right).toEqual(lit("number", -42));
      expect(comparison("importsequencenumber eq 2.5").right).toEqual(lit("number", 2.5));
      expect(comparison("importsequencenumber eq 1E3").right).toEqual(lit("number", 1000));
    });

    it("booleans", () => {
      expect(comparison("msdyn_enableanalytics eq true").right).toEqual(lit("boolean", true));
      expect(comparison("msdyn_enableanalytics ne false").right).toEqual(lit("boolean", false));
    });

    it("property to property, and a value on the left", () => {
      expect(parseFilter("createdon eq modifiedon")).toEqual(cmp(prop("createdon"), "eq", prop("modifiedon")));
      expect(parseFilter("5 lt importsequencenumber")).toEqual(cmp(lit("number", 5), "lt", prop("importsequencenumber")));
    });

    it("ignores whitespace between tokens", () => {
      expect(parseFilter("  a   eq\t1\nand(b eq 2)  ")).toEqual(and(eq("a", 1), eq("b", 2)));
    });
  });

  describe("string functions", () => {
    it.each(["contains", "startswith", "endswith"])("%s(property,'text')", (name) => {
      expect(parseFilter(`${name}(msdyn_name,'ab''c')`)).toEqual({
        kind: "stringFunction",
        name,
        target: prop("msdyn_name"),
        value: lit("string", "ab'c"),
        position: 0,
      });
    });

    it("can be negated and combined", () => {
      expect(parseFilter("not contains(msdyn_name,'x') and startswith(msdyn_name, 'y')")).toMatchObject({
        kind: "and",
        left: { kind: "not", operand: { kind: "stringFunction", name: "contains" } },
        right: { kind: "stringFunction", name: "startswith", value: { value: "y" } },
      });
    });

    it("refuses other functions by name and position", () => {
      expectBadRequest(() => parseFilter("a eq 1 and tolower(msdyn_name) eq 'x'"), ["Unknown function 'tolower'", "position 11"]);
    });

    it("refuses a missing argument or parenthesis", () => {
      expectBadRequest(() => parseFilter("contains(msdyn_name)"), ["position 19", "expected ','"]);
      expectBadRequest(
        () => parseFilter("contains(msdyn_name,'x'"),
        ["position 23", "expected ')'", "the end of the expression"],
      );
    });
  });

  describe("Dataverse query functions", () => {
    const fn = (name: string, args: Record<string, unknown>) => ({ kind: "queryFunction", name, args, position: 0 });

    it("In and NotIn with PropertyName='…' and PropertyValues=[…]", () => {
      expect(
        parseFilter(
          `Microsoft.Dynamics.CRM.In(PropertyName='msdyn_kpieventname',PropertyValues=["SessionStarted","SessionClosed"])`,
        ),
      ).toEqual(
        fn("In", {
          PropertyName: lit("string", "msdyn_kpieventname"),
          PropertyValues: [lit("string", "SessionStarted"), lit("string", "SessionClosed")],
        }),
      );
      expect(
        parseFilter(`Microsoft.Dynamics.CRM.NotIn(PropertyName='msdyn_name',PropertyValues=["O'Brian","a\\"b", "x"])`),
      ).toEqual(
        fn("NotIn", {
          PropertyName: lit("string", "msdyn_name"),
          PropertyValues: [lit("string", "O'Brian"), lit("string", 'a"b'), lit("string", "x")],
        }),
      );
    });

    it("Between and NotBetween; numbers in PropertyValues become strings", () => {
      expect(
        parseFilter(`Microsoft.Dynamics.CRM.Between(PropertyName='importsequencenumber',PropertyValues=["5","2000"])`),
      ).toEqual(
        fn("Between", {
          PropertyName: lit("string", "importsequencenumber"),
          PropertyValues: [lit("string", "5"), lit("string", "2000")],
        }),
      );
      expect(
        parseFilter(`Microsoft.Dynamics.CRM.NotBetween(PropertyName='importsequencenumber',PropertyValues=[5,2000])`),
      ).toEqual(
        fn("NotBetween", {
          PropertyName: lit("string", "importsequencenumber"),
          PropertyValues: [lit("string", "5"), lit("string", "2000")],
        }),
      );
    });

    it("LastXHours, LastXDays, OnOrAfter, OnOrBefore with PropertyValue=…, and Today", () => {
      expect(parseFilter(`Microsoft.Dynamics.CRM.LastXHours(PropertyName='createdon',PropertyValue=12)`)).toEqual(
        fn("LastXHours", { PropertyName: lit("string", "createdon"), PropertyValue: lit("number", 12) }),
      );
      expect(parseFilter(`Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=7)`)).toEqual(
        fn("LastXDays", { PropertyName: lit("string", "createdon"), PropertyValue: lit("number", 7) }),
      );
      expect(
        parseFilter(`Microsoft.Dynamics.CRM.OnOrAfter(PropertyName='msdyn_eventtimestamp',PropertyValue='2026-01-01')`),
      ).toEqual(
        fn("OnOrAfter", { PropertyName: lit("string", "msdyn_eventtimestamp"), PropertyValue: lit("string", "2026-01-01") }),
      );
      expect(
        parseFilter(`Microsoft.Dynamics.CRM.OnOrBefore(PropertyName='msdyn_eventtimestamp',PropertyValue=2026-01-31)`),
      ).toEqual(
        fn("OnOrBefore", { PropertyName: lit("string", "msdyn_eventtimestamp"), PropertyValue: lit("datetime", "2026-01-31") }),
      );
      expect(parseFilter(`Microsoft.Dynamics.CRM.Today(PropertyName='createdon')`)).toEqual(
        fn("Today", { PropertyName: lit("string", "createdon") }),
      );
    });

    it("combine with the other conditions", () => {
      expect(
        parseFilter(`msdyn_conversationid eq 'c-1' and Microsoft.Dynamics.CRM.Today(PropertyName='createdon') or a eq 1`),
      ).toMatchObject({
        kind: "or",
        left: { kind: "and", right: { kind: "queryFunction", name: "Today" } },
        right: { kind: "compare" },
      });
    });

    it("cannot be preceded by 'not', even in parentheses", () => {
      const message = "Not operator along with the Custom Named Condition operators is not allowed.";
      expectBadRequest(
        () => parseFilter(`not Microsoft.Dynamics.CRM.In(PropertyName='msdyn_name',PropertyValues=["a"])`),
        message,
      );
      expectBadRequest(() => parseFilter(`a eq 1 and not (Microsoft.Dynamics.CRM.Today(PropertyName='createdon'))`), message);
    });

    it("refuses a PropertyValues array that is not an array of strings", () => {
      expectBadRequest(
        () => parseFilter(`Microsoft.Dynamics.CRM.In(PropertyName='msdyn_name',PropertyValues=['a'])`),
        ["PropertyValues", "position 68"],
      );
      expectBadRequest(
        () => parseFilter(`Microsoft.Dynamics.CRM.In(PropertyName='msdyn_name',PropertyValues=["a" "b"])`),
        ["expected ',' or ']'"],
      );
    });

    it("refuses a property where a value is expected", () => {
      expectBadRequest(
        () => parseFilter(`Microsoft.Dynamics.CRM.Today(PropertyName=createdon)`),
        ["Expected a value", "'createdon'"],
      );
    });
  });

  describe("parameter aliases", () => {
    it("take their value from the query; the text is parsed as an operand", () => {
      expect(comparison("msdyn_name eq @p1", { "@p1": "'O''Brien'" }).right).toEqual(lit("string", "O'Brien"));
      expect(comparison("importsequencenumber gt @n", { "@n": "10" }).right).toEqual(lit("number", 10));
      expect(comparison("msdyn_kpieventid eq @id", { "@id": "1D30A3CB-1BD9-E911-A838-000D3A375590" }).right).toEqual(
        lit("guid", "1d30a3cb-1bd9-e911-a838-000d3a375590"),
      );
    });

    it("can name a property on either side", () => {
      expect(parseFilter("@p1 ne @p3", { "@p1": "msdyn_name", "@p3": "'x'" })).toEqual(
        cmp(prop("msdyn_name"), "ne", lit("string", "x")),
      );
    });

    it("an alias without a value is null", () => {
      expect(comparison("msdyn_name eq @p9").right).toEqual(lit("null", null));
      expect(comparison("msdyn_name eq @p9", { "@p1": "'x'" }).right).toEqual(lit("null", null));
    });

    it("work as query-function parameters", () => {
      expect(
        parseFilter("Microsoft.Dynamics.CRM.LastXDays(PropertyName=@name,PropertyValue=@days)", {
          "@name": "'createdon'",
          "@days": "3",
        }),
      ).toMatchObject({ kind: "queryFunction", args: { PropertyName: { value: "createdon" }, PropertyValue: { value: 3 } } });
    });

    it("an alias holds one operand, not an expression", () => {
      expectBadRequest(() => parseFilter("msdyn_name eq @p1", { "@p1": "'a' or 1 eq 1" }), ["expected a single value"]);
      expectBadRequest(
        () => parseFilter("msdyn_name eq @p1", { "@p1": "'abc" }),
        "There is an unterminated literal at position 0 in ''abc'.",
      );
    });

    it("are resolved by parseCollectionQuery from the @ parameters", () => {
      const query = parseCollectionQuery(events, {
        $filter: "msdyn_kpieventname eq @p1",
        $orderby: "@p2 desc",
        "@p1": "'SessionStarted'",
        "@p2": "createdon",
      });
      expect(query.filter).toEqual(cmp(prop("msdyn_kpieventname"), "eq", lit("string", "SessionStarted")));
      expect(query.orderBy.map((o) => [o.column.name, o.descending])).toEqual([["createdon", true]]);
    });
  });

  describe("syntax errors name the position", () => {
    it("a missing comparison operator", () => {
      expectBadRequest(
        () => parseFilter("msdyn_name 'abc'"),
        "Syntax error at position 11 in $filter 'msdyn_name 'abc'': expected a comparison operator (eq, ne, gt, ge, lt, le) but found ''abc''.",
      );
      expectBadRequest(
        () => parseFilter("msdyn_name"),
        ["position 10", "expected a comparison operator", "the end of the expression"],
      );
      expectBadRequest(() => parseFilter("msdyn_name like 'a'"), ["position 11", "expected a comparison operator", "'like'"]);
    });

    it("a missing right-hand side", () => {
      expectBadRequest(
        () => parseFilter("msdyn_name eq"),
        ["position 13", "expected a property or a value", "the end of the expression"],
      );
      expectBadRequest(() => parseFilter("a eq 1 and"), ["position 10", "the end of the expression"]);
      expectBadRequest(() => parseFilter(""), ["position 0", "the end of the expression"]);
    });

    it("two conditions without 'and' or 'or'", () => {
      expectBadRequest(
        () => parseFilter("a eq 1 b eq 2"),
        ["position 7", "expected 'and', 'or' or the end of the expression but found 'b'"],
      );
    });

    it("unbalanced parentheses", () => {
      expectBadRequest(
        () => parseFilter("(a eq 1"),
        ["Syntax error at position 7 in $filter '(a eq 1'", "expected ')' but found the end of the expression"],
      );
      expectBadRequest(() => parseFilter("((a eq 1) or (b eq 2)"), ["position 21", "expected ')'"]);
      expectBadRequest(
        () => parseFilter("a eq 1)"),
        ["position 6", "expected 'and', 'or' or the end of the expression but found ')'"],
      );
      expectBadRequest(() => parseFilter(")"), ["position 0", "')'"]);
      expectBadRequest(() => parseFilter("()"), ["position 1", "')'"]);
    });

    it("navigation paths are not supported", () => {
      expectBadRequest(() => parseFilter("msdyn_session/msdyn_name eq 'x'"), ["position 13", "'/'"]);
    });

    it("too deep nesting is refused, not a stack overflow", () => {
      const nested = (depth: number) => `${"(".repeat(depth)}a eq 1${")".repeat(depth)}`;
      expect(parseFilter(nested(50))).toEqual(eq("a", 1));
      expectBadRequest(() => parseFilter(nested(101)), "$filter is nested too deeply.");
      expectBadRequest(() => parseFilter(nested(100_000)), "$filter is nested too deeply.");
    });

    it("a long chain of 'not' is parsed or refused, but never overflows the stack", () => {
      for (const depth of [1_000, 3_000, 100_000]) {
        const text = `${"not ".repeat(depth)}a eq 1`;
        let outcome: unknown;
        try {
          outcome = parseFilter(text);
        } catch (error) {
          outcome = error;
        }
        if (outcome instanceof Error) {
          expect(outcome, `${depth} × not: ${String(outcome)}`).toBeInstanceOf(ODataError);
          expect((outcome as ODataError).status).toBe(400);
        }
      }
    });

    it("a long chain of conditions is turned into SQL or refused with the Dataverse limit", () => {
      const conditions = (n: number) => Array.from({ length: n }, (_, i) => `importsequencenumber eq ${i}`).join(" or ");
      expect(filterToSql(events, parseFilter(conditions(500)), new SqlParams())).toContain("OR");
      const error = expectBadRequest(
        () => filterToSql(events, parseFilter(conditions(501)), new SqlParams()),
        "Number of conditions in query exceeded maximum limit.",
      );
      expect(error.code).toBe("0x8004430C");
      // Far beyond the limit: refused, never a stack overflow.
      expectBadRequest(
        () => filterToSql(events, parseFilter(conditions(20_000)), new SqlParams()),
        "Number of conditions in query exceeded maximum limit.",
      );
    });
  });

  describe("names are checked against the table when the filter becomes SQL", () => {
    it("an unknown property", () => {
      expectBadRequest(
        () => filterToSql(events, parseFilter("x eq 1"), new SqlParams()),
        ["Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.msdyn_kpieventdata'"],
      );
      expectBadRequest(
        () => filterToSql(events, parseFilter("contains(nope,'a')"), new SqlParams()),
        ["Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.msdyn_kpieventdata'"],
      );
      expectBadRequest(
        () =>
          filterToSql(
            events,
            parseFilter(`Microsoft.Dynamics.CRM.In(PropertyName='nope',PropertyValues=["a"])`),
            new SqlParams(),
          ),
        ["Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.msdyn_kpieventdata'"],
      );
      // Names are case-sensitive, as in Dataverse.
      expectBadRequest(
        () => filterToSql(events, parseFilter("MSDYN_NAME eq 'a'"), new SqlParams()),
        ["Could not find a property named 'MSDYN_NAME'"],
      );
    });

    it("lookups are filtered by _x_value, not by their logical name", () => {
      const params = new SqlParams();
      expect(filterToSql(events, parseFilter("_ownerid_value eq 6f3c1a52-2b9e-4f0a-9d51-3c2e8a7b4d10"), params)).toBe(
        `"ownerid" = $1::uuid`,
      );
      expectBadRequest(
        () => filterToSql(events, parseFilter("ownerid eq 6f3c1a52-2b9e-4f0a-9d51-3c2e8a7b4d10"), new SqlParams()),
        ["Could not find a property named 'ownerid'"],
      );
    });

    it("values are bound, never spliced into the SQL", () => {
      const params = new SqlParams();
      const sql = filterToSql(events, parseFilter("msdyn_name eq '''; DROP TABLE msdyn_kpieventdata; --'"), params);
      expect(sql).toBe(`"msdyn_name" = $1`);
      expect(params.values).toEqual(["'; DROP TABLE msdyn_kpieventdata; --"]);
    });

    it("an unsupported query function and a type mismatch are 400s", () => {
      expectBadRequest(
        () =>
          filterToSql(events, parseFilter(`Microsoft.Dynamics.CRM.EqualUserId(PropertyName='_ownerid_value')`), new SqlParams()),
        ["Microsoft.Dynamics.CRM.EqualUserId is not supported"],
      );
      expectBadRequest(
        () => filterToSql(events, parseFilter("msdyn_name eq 5"), new SqlParams()),
        ["cannot be compared", "msdyn_name"],
      );
      expectBadRequest(
        () => filterToSql(providers, parseFilter("msdyn_enableanalytics eq 'yes'"), new SqlParams()),
        ["cannot be compared"],
      );
    });
  });
});

describe("parseOrderBy", () => {
  it("takes several keys, ascending by default", () => {
    const orderBy = parseOrderBy(events, "msdyn_kpieventname desc, createdon,importsequencenumber asc");
    expect(orderBy.map((o) => [o.column.name, o.descending])).toEqual([
      ["msdyn_kpieventname", true],
      ["createdon", false],
      ["importsequencenumber", false],
    ]);
    expect(parseOrderBy(events, undefined)).toEqual([]);
    expect(parseOrderBy(events, "_ownerid_value DESC")[0]).toMatchObject({ column: { name: "ownerid" }, descending: true });
  });

  it("resolves aliases", () => {
    expect(parseOrderBy(events, "@p2 desc", { "@p2": "msdyn_name" })[0]).toMatchObject({
      column: { name: "msdyn_name" },
      descending: true,
    });
  });

  it("refuses unknown properties, directions and empty items", () => {
    expectBadRequest(
      () => parseOrderBy(events, "x"),
      "Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.msdyn_kpieventdata'.",
    );
    expectBadRequest(() => parseOrderBy(events, "@p2", {}), ["Could not find a property named"]);
    expectBadRequest(() => parseOrderBy(events, "msdyn_name up"), ["'up'", "asc or desc"]);
    expectBadRequest(() => parseOrderBy(events, "msdyn_name asc desc"), ["is not valid"]);
    expectBadRequest(() => parseOrderBy(events, "msdyn_name,"), ["is not valid"]);
  });
});

describe("parseApply", () => {
  it("groupby with $count", () => {
    const plan = parseApply(events, "groupby((msdyn_kpieventname),aggregate($count as count))");
    expect(plan.filter).toBeUndefined();
    expect(plan.groupBy.map((c) => c.name)).toEqual(["msdyn_kpieventname"]);
    expect(plan.aggregates).toEqual([{ alias: "count", fn: "count" }]);
  });

  it("groupby on several properties, without aggregates", () => {
    const plan = parseApply(events, "groupby((statecode, statuscode))");
    expect(plan.groupBy.map((c) => c.name)).toEqual(["statecode", "statuscode"]);
    expect(plan.aggregates).toEqual([]);
  });

  it("sum, average, min and max", () => {
    const plan = parseApply(
      events,
      "aggregate(importsequencenumber with sum as total, importsequencenumber with average as mean, createdon with min as first, msdyn_name with max as last)",
    );
    expect(plan.groupBy).toEqual([]);
    expect(plan.aggregates.map((a) => [a.alias, a.fn, a.column?.name])).toEqual([
      ["total", "sum", "importsequencenumber"],
      ["mean", "average", "importsequencenumber"],
      ["first", "min", "createdon"],
      ["last", "max", "msdyn_name"],
    ]);
  });

  it("a leading filter(...) step", () => {
    const plan = parseApply(
      events,
      "filter(msdyn_conversationid eq 'c/1' and importsequencenumber gt @n)/groupby((msdyn_providersessionid))",
      {
        "@n": "3",
      },
    );
    expect(plan.filter).toEqual(
      and(
        cmp(prop("msdyn_conversationid"), "eq", lit("string", "c/1")),
        cmp(prop("importsequencenumber"), "gt", lit("number", 3)),
      ),
    );
    expect(plan.groupBy.map((c) => c.name)).toEqual(["msdyn_providersessionid"]);
  });

  it("refuses what it does not support", () => {
    expectBadRequest(
      () => parseApply(events, "groupby((nope))"),
      "Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.msdyn_kpieventdata'.",
    );
    expectBadRequest(() => parseApply(events, "aggregate(importsequencenumber with avg as a)"), ["Unknown aggregation 'avg'"]);
    expectBadRequest(() => parseApply(events, "aggregate(msdyn_name with sum as s)"), ["'msdyn_name' is not numeric"]);
    expectBadRequest(() => parseApply(events, "aggregate(importsequencenumber with sum as msdyn_name)"), ["alias 'msdyn_name'"]);
    expectBadRequest(() => parseApply(events, "aggregate($count as n, $count as n)"), ["alias 'n'"]);
    expectBadRequest(() => parseApply(events, "groupby((msdyn_name))/filter(msdyn_name eq 'a')"), ["In $apply", "must"]);
    expectBadRequest(
      () => parseApply(events, "filter(msdyn_name eq 'a')/filter(msdyn_name eq 'b')/groupby((msdyn_name))"),
      ["filter(...) must come first"],
    );
    expectBadRequest(() => parseApply(events, "filter(msdyn_name eq 'a')"), ["needs groupby(...) or aggregate(...)"]);
    expectBadRequest(
      () => parseApply(events, "topcount(5,importsequencenumber)"),
      ["'topcount(5,importsequencenumber)' is not supported"],
    );
    expectBadRequest(() => parseApply(events, "groupby(msdyn_name)"), ["groupby takes ((<properties>)"]);
    expectBadRequest(() => parseApply(events, "groupby((msdyn_name)"), ["Unbalanced"]);
  });
});

describe("parseCollectionQuery", () => {
  it("parses every supported option", () => {
    const query = parseCollectionQuery(events, {
      $select: "msdyn_name,createdon",
      $filter: "importsequencenumber ge 1",
      $orderby: "createdon desc",
      $top: "10",
      $count: "true",
      $expand: "msdyn_session($select=msdyn_name),msdyn_definition",
      // Parameters without $ or @ are not options.
      tag: "ignored",
    });
    // The primary key is always selected.
    expect(query.select?.map((c) => c.name)).toEqual(["msdyn_name", "createdon", "msdyn_kpieventdataid"]);
    expect(query.filter).toEqual(cmp(prop("importsequencenumber"), "ge", lit("number", 1)));
    expect(query.orderBy.map((o) => [o.column.name, o.descending])).toEqual([["createdon", true]]);
    expect(query.top).toBe(10);
    expect(query.count).toBe(true);
    expect(query.expand.map((e) => [e.navigation.name, e.select?.map((c) => c.name)])).toEqual([
      ["msdyn_session", ["msdyn_name", "msdyn_sessiondataid"]],
      ["msdyn_definition", undefined],
    ]);
    expect(query.apply).toBeUndefined();
    expect(parseCollectionQuery(events, {})).toEqual({
      select: undefined,
      filter: undefined,
      orderBy: [],
      top: undefined,
      count: false,
      skipToken: undefined,
      expand: [],
      apply: undefined,
    });
  });

  it.each(["$skip", "$search", "$format"])("refuses %s as not supported", (name) => {
    const error = expectBadRequest(
      () => parseCollectionQuery(events, { [name]: "1" }),
      `The query parameter ${name} is not supported.`,
    );
    expect(error.status).toBe(400);
  });

  it("refuses unknown $ options, repeated options and empty options", () => {
    expectBadRequest(() => parseCollectionQuery(events, { $foo: "1" }), "The query parameter $foo is not supported.");
    expectBadRequest(() => parseCollectionQuery(events, { $filter: ["a eq 1", "b eq 2"] }), ["$filter is given more than once"]);
    expectBadRequest(() => parseCollectionQuery(events, { $select: "" }), ["$select has no value"]);
  });

  it("refuses unknown properties in $select and $orderby", () => {
    const message = "Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.msdyn_kpieventdata'.";
    expectBadRequest(() => parseCollectionQuery(events, { $select: "msdyn_name,x" }), message);
    expectBadRequest(() => parseCollectionQuery(events, { $orderby: "x desc" }), message);
    expectBadRequest(
      () => parseCollectionQuery(providers, { $select: "x" }),
      ["Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.msdyn_ciprovider'"],
    );
  });

  it("checks $top and $count", () => {
    expect(parseCollectionQuery(events, { $top: "5000" }).top).toBe(5000);
    expect(parseCollectionQuery(events, { $top: "0" }).top).toBe(0);
    expectBadRequest(() => parseCollectionQuery(events, { $top: "5001" }), ["cannot be more than 5000"]);
    expectBadRequest(() => parseCollectionQuery(events, { $top: "-1" }), ["whole number"]);
    expectBadRequest(() => parseCollectionQuery(events, { $top: "1.5" }), ["whole number"]);
    expect(parseCollectionQuery(events, { $count: "false" }).count).toBe(false);
    expectBadRequest(() => parseCollectionQuery(events, { $count: "yes" }), ["$count must be true or false"]);
  });

  it("checks $expand names and options", () => {
    expectBadRequest(
      () => parseCollectionQuery(events, { $expand: "nope" }),
      ["Could not find a navigation property named 'nope' on type 'Microsoft.Dynamics.CRM.msdyn_kpieventdata'"],
    );
    expectBadRequest(
      () => parseCollectionQuery(events, { $expand: "msdyn_session($filter=msdyn_name eq 'a')" }),
      ["single-valued"],
    );
    expectBadRequest(() => parseCollectionQuery(events, { $expand: "msdyn_session($top=1)" }), ["single-valued"]);
    expectBadRequest(
      () => parseCollectionQuery(tableByLogicalName("msdyn_sessiondata"), { $expand: "msdyn_kpievents($skip=1)" }),
      ["not allowed inside $expand"],
    );
    const sessions = parseCollectionQuery(tableByLogicalName("msdyn_conversationdata"), {
      $expand: "msdyn_sessions($select=msdyn_name;$filter=msdyn_name eq 'a;b';$orderby=createdon desc;$top=3)",
    }).expand[0]!;
    expect(sessions.navigation).toMatchObject({ name: "msdyn_sessions", collection: true });
    expect(sessions.filter).toEqual(cmp(prop("msdyn_name"), "eq", lit("string", "a;b")));
    expect(sessions.orderBy.map((o) => [o.column.name, o.descending])).toEqual([["createdon", true]]);
    expect(sessions.top).toBe(3);
    const sixteen = Array.from({ length: 16 }, () => "msdyn_session").join(",");
    expectBadRequest(() => parseCollectionQuery(events, { $expand: sixteen }), ["At most 15 $expand items"]);
  });

  it("parses $apply with aliases from the query", () => {
    const query = parseCollectionQuery(events, {
      $apply: "filter(msdyn_kpieventname eq @name)/groupby((msdyn_conversationid),aggregate($count as n))",
      "@name": "'SessionStarted'",
    });
    expect(query.apply?.filter).toEqual(cmp(prop("msdyn_kpieventname"), "eq", lit("string", "SessionStarted")));
    expect(query.apply?.aggregates).toEqual([{ alias: "n", fn: "count" }]);
  });
});
