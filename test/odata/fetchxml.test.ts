/** The FetchXML parser alone: the plan it makes, and what it refuses. */
import { describe, expect, it } from "vitest";
import { type FetchCondition, type FetchFilter, parseFetchXml } from "../../src/odata/fetchxml.js";
import { ODataError } from "../../src/odata/errors.js";
import { tableByLogicalName } from "../../src/model/tables.js";

const events = tableByLogicalName("msdyn_kpieventdata");
const conversations = tableByLogicalName("msdyn_conversationdata");

function refusal(xml: string, table = events): string {
  try {
    parseFetchXml(table, xml);
  } catch (error) {
    expect(error).toBeInstanceOf(ODataError);
    expect((error as ODataError).status).toBe(400);
    return (error as ODataError).message;
  }
  throw new Error("not refused");
}

describe("parseFetchXml", () => {
  it("reads fetch attributes, attributes with aliases and orders", () => {
    const plan = parseFetchXml(
      events,
      `<fetch mapping="logical" count="50" page="3" distinct="false">
         <entity name="msdyn_kpieventdata">
           <attribute name="msdyn_kpieventname" />
           <attribute name="ownerid" alias="owner" />
           <order attribute="msdyn_eventtimestamp" descending="true" />
         </entity>
       </fetch>`,
    );
    expect(plan).toMatchObject({
      count: 50,
      page: 3,
      distinct: false,
      aggregate: false,
      top: undefined,
      pagingCookie: undefined,
    });
    expect(plan.root.attributes!.map((a) => [a.column.name, a.alias])).toEqual([
      ["msdyn_kpieventname", undefined],
      ["ownerid", "owner"],
    ]);
    expect(plan.root.orders).toEqual([{ column: expect.objectContaining({ name: "msdyn_eventtimestamp" }), descending: true }]);
  });

  it("defaults: page 1 of 5,000, all attributes", () => {
    const plan = parseFetchXml(events, `<fetch><entity name="msdyn_kpieventdata" /></fetch>`);
    expect(plan).toMatchObject({ count: 5000, page: 1 });
    expect(plan.root.attributes).toBeUndefined();
  });

  it("turns conditions into the $filter expressions, names into property names, braces off GUIDs", () => {
    const plan = parseFetchXml(
      events,
      `<fetch><entity name="msdyn_kpieventdata"><filter type="or">
         <condition attribute="ownerid" operator="eq" value="{0A6F3D2E-1111-4222-8333-444455556666}" />
         <filter><condition attribute="importsequencenumber" operator="in"><value>1</value><value>2</value></condition>
           <condition attribute="msdyn_eventtimestamp" operator="last-x-days" value="7" />
           <condition attribute="msdyn_kpieventreason" operator="not-like" value="%x%" /></filter>
       </filter></entity></fetch>`,
    );
    const filter = plan.root.filter!;
    expect(filter.kind).toBe("or");
    const [owner, inner] = filter.items as [FetchCondition, FetchFilter];
    expect(owner).toMatchObject({
      kind: "condition",
      expr: {
        kind: "compare",
        op: "eq",
        left: { name: "_ownerid_value" },
        right: { type: "guid", value: "0a6f3d2e-1111-4222-8333-444455556666" },
      },
    });
    expect(inner.kind).toBe("and");
    expect(inner.items[0]).toMatchObject({
      expr: { kind: "queryFunction", name: "In", args: { PropertyValues: [{ value: "1" }, { value: "2" }] } },
    });
    expect(inner.items[1]).toMatchObject({
      expr: { kind: "queryFunction", name: "LastXDays", args: { PropertyValue: { value: "7" } } },
    });
    expect(inner.items[2]).toMatchObject({ kind: "like", pattern: "%x%", negated: true });
  });

  it("resolves a link over a parent link from from/to, with a generated alias when none is given", () => {
    const plan = parseFetchXml(
      events,
      `<fetch><entity name="msdyn_kpieventdata"><link-entity name="msdyn_sessiondata" from="msdyn_conversationid" to="msdyn_conversationid">
         <attribute name="msdyn_queuename" /></link-entity></entity></fetch>`,
    );
    const [link] = plan.root.links;
    expect(link).toMatchObject({ alias: "msdyn_sessiondata1", sqlAlias: "t1", outer: false });
    expect(link!.navigation.name).toBe("msdyn_session");
    expect(link!.navigation.columns).toEqual(["msdyn_conversationid", "msdyn_providersessionid"]);
  });

  it("resolves a link to children", () => {
    const plan = parseFetchXml(
      conversations,
      `<fetch><entity name="msdyn_conversationdata"><link-entity name="msdyn_sessiondata" link-type="outer" alias="s" /></entity></fetch>`,
    );
    expect(plan.root.links[0]).toMatchObject({ alias: "s", outer: true, attributes: [] });
    expect(plan.root.links[0]!.navigation).toMatchObject({ name: "msdyn_sessions", collection: true });
  });

  it("reads aggregates and date grouping", () => {
    const plan = parseFetchXml(
      events,
      `<fetch aggregate="true"><entity name="msdyn_kpieventdata">
         <attribute name="msdyn_eventtimestamp" alias="m" groupby="true" dategrouping="month" />
         <attribute name="msdyn_kpieventreason" alias="n" aggregate="countcolumn" distinct="true" />
         <order alias="n" descending="true" /></entity></fetch>`,
    );
    expect(plan.aggregate).toBe(true);
    expect(plan.root.attributes).toMatchObject([
      { alias: "m", groupBy: true, dateGrouping: "month" },
      { alias: "n", aggregate: "countcolumn", distinct: true, groupBy: false },
    ]);
    expect(plan.root.orders).toEqual([{ alias: "n", descending: true }]);
  });

  it("reads the paging cookie it made", () => {
    const cookie = `&lt;cookie page=&quot;2&quot;&gt;&lt;keyset last=&quot;abc_-1&quot; /&gt;&lt;/cookie&gt;`;
    const plan = parseFetchXml(
      events,
      `<fetch page="3" count="2" paging-cookie="${cookie}"><entity name="msdyn_kpieventdata" /></fetch>`,
    );
    expect(plan.pagingCookie).toEqual({ page: 2, last: "abc_-1" });
    // dynamics-web-api escapes ' as &#39;.
    expect(
      parseFetchXml(
        events,
        `<fetch paging-cookie="${cookie.replaceAll("&quot;", "&#39;")}"><entity name="msdyn_kpieventdata" /></fetch>`,
      ).pagingCookie,
    ).toEqual({ page: 2, last: "abc_-1" });
  });

  it.each([
    [`<fetch><entity name="msdyn_kpieventdata"><attribute name="msdyn_name" /><bogus /></entity></fetch>`, "<bogus>"],
    [`<fetch><entity name="msdyn_kpieventdata"><order attribute="msdyn_name" frob="x" /></entity></fetch>`, "'frob'"],
    [
      `<fetch><entity name="msdyn_kpieventdata"><filter><condition attribute="msdyn_name" operator="eq-userid" /></filter></entity></fetch>`,
      "eq-userid",
    ],
    [
      `<fetch><entity name="msdyn_kpieventdata"><filter><condition attribute="msdyn_name" operator="null" value="x" /></filter></entity></fetch>`,
      "no value",
    ],
    [
      `<fetch><entity name="msdyn_kpieventdata"><filter><condition entityname="zz" attribute="msdyn_name" operator="null" /></filter></entity></fetch>`,
      "'zz'",
    ],
    [
      `<fetch><entity name="msdyn_kpieventdata"><link-entity name="msdyn_sessiondata" from="msdyn_name" to="msdyn_name" /></entity></fetch>`,
      'from="msdyn_conversationid"',
    ],
    [
      `<fetch aggregate="true"><entity name="msdyn_kpieventdata"><attribute name="msdyn_name" alias="a" groupby="true" dategrouping="quarter" /></entity></fetch>`,
      "quarter",
    ],
    [
      `<fetch aggregate="true"><entity name="msdyn_kpieventdata"><attribute name="msdyn_name" alias="a" groupby="true" dategrouping="year" /></entity></fetch>`,
      "date-time",
    ],
    [`<fetch aggregate="true"><entity name="msdyn_kpieventdata"><all-attributes /></entity></fetch>`, "all-attributes"],
    [`<fetch><entity name="msdyn_kpieventdata"><order alias="a" /></entity></fetch>`, "aggregate"],
    [`<fetch page="0"><entity name="msdyn_kpieventdata" /></fetch>`, "page"],
    [`<fetch paging-cookie="&lt;cookie page=&quot;1&quot;/&gt;"><entity name="msdyn_kpieventdata" /></fetch>`, "paging-cookie"],
    [`<fetch><entity name="msdyn_kpieventdata" /><entity name="msdyn_kpieventdata" /></fetch>`, "exactly one <entity>"],
  ])("refuses %s, naming %s", (xml, fragment) => {
    expect(refusal(xml)).toContain(fragment);
  });

  it("bounds the conditions and the nesting", () => {
    const many = Array.from({ length: 501 }, () => `<condition attribute="msdyn_name" operator="null" />`).join("");
    expect(refusal(`<fetch><entity name="msdyn_kpieventdata"><filter>${many}</filter></entity></fetch>`)).toContain("maximum");
    const deep = "<filter>".repeat(30) + `<condition attribute="msdyn_name" operator="null" />` + "</filter>".repeat(30);
    expect(refusal(`<fetch><entity name="msdyn_kpieventdata">${deep}</entity></fetch>`)).toContain("nested too deeply");
    const hostile = "<filter>".repeat(10_000) + "</filter>".repeat(10_000);
    expect(refusal(`<fetch><entity name="msdyn_kpieventdata">${hostile}</entity></fetch>`)).toContain("fetchXml");
  });
});
