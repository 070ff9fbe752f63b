/**
 * FetchXML in the plan stage: a malformed fetchXml is refused by planRequest, as a bad
 * `$filter` is, before anything is authorised or read; a good one becomes a plan holding
 * the parsed FetchXML, which execute only runs. Pure: no database.
 */
import { describe, expect, it } from "vitest";
import { createOperations } from "../../src/actions/index.js";
import { tableByLogicalName } from "../../src/model/tables.js";
import { ODataError } from "../../src/odata/errors.js";
import { privilegesOf } from "../../src/service/pipeline/authorize.js";
import { parseODataRequest } from "../../src/service/pipeline/parse.js";
import { type Plan, planRequest } from "../../src/service/pipeline/plan.js";

const operations = createOperations({ BULK_MAX_TARGETS: 1000 });
const events = tableByLogicalName("msdyn_kpieventdata");

function plan(fetchXml: string, set = "msdyn_kpieventsdata"): Plan {
  const request = {
    method: "GET",
    target: `${set}?fetchXml=${encodeURIComponent(fetchXml)}`,
    headers: {},
    root: "http://localhost/api/data/v9.2/",
  };
  return planRequest(parseODataRequest(request, operations), request);
}

function refusedAtPlanning(fetchXml: string): string {
  try {
    plan(fetchXml);
  } catch (error) {
    expect(error).toBeInstanceOf(ODataError);
    expect((error as ODataError).status).toBe(400);
    return (error as ODataError).message;
  }
  throw new Error("planned, not refused");
}

const entity = (inner: string, fetch = "<fetch>") => `${fetch}<entity name="msdyn_kpieventdata">${inner}</entity></fetch>`;

describe("FetchXML at planning", () => {
  it("a good fetchXml is a plan holding the parsed FetchXML", () => {
    const planned = plan(entity(`<attribute name="msdyn_kpieventname" /><order attribute="msdyn_eventtimestamp" />`));
    expect(planned.op).toBe("fetchxml");
    if (planned.op !== "fetchxml") return;
    expect(planned.fetch.root.table).toBe(events);
    expect(planned.fetch.root.attributes!.map((a) => a.column.name)).toEqual(["msdyn_kpieventname"]);
    expect(planned.fetch.root.orders).toHaveLength(1);
  });

  it.each([
    [`<fetch><entity name="msdyn_kpieventdata"></fetch>`, "not well-formed"],
    [entity(`<attribute name="nope" />`), "nope"],
    [entity(`<frob />`), "frob"],
    [`<fetch><entity name="msdyn_sessiondata" /></fetch>`, "msdyn_sessiondata"],
    // Rules that span elements, once found only while making the SQL.
    [
      entity(
        `<attribute name="msdyn_kpieventname" alias="n" groupby="true" /><attribute name="msdyn_name" alias="n" aggregate="count" />`,
        `<fetch aggregate="true">`,
      ),
      "used twice",
    ],
    [
      entity(`<attribute name="msdyn_name" alias="n" aggregate="count" /><order alias="m" />`, `<fetch aggregate="true">`),
      "order alias 'm'",
    ],
    [
      entity(`<attribute name="msdyn_name" /><order attribute="msdyn_eventtimestamp" />`, `<fetch distinct="true">`),
      "msdyn_eventtimestamp' is not selected",
    ],
    [entity("", `<fetch count="5000" page="11">`), "50000"],
  ])("%s is refused by the plan stage", (xml, fragment) => {
    expect(refusedAtPlanning(xml)).toContain(fragment);
  });

  it("a cookie of the page before lets paging go past the simple-paging limit; without one it may not", () => {
    const cookie = `<cookie page="10"><keyset last="abc" /></cookie>`;
    const paged = `<fetch count="5000" page="11" paging-cookie="${cookie.replace(/"/g, "&quot;")}">`;
    expect(plan(entity("", paged)).op).toBe("fetchxml");
    // A distinct query has no cookie paging, so the cookie does not help it.
    expect(refusedAtPlanning(entity("", paged.replace("<fetch", `<fetch distinct="true"`)))).toContain("50000");
  });

  it("savedQuery, userQuery and $ options beside fetchXml are refused at planning", () => {
    const request = (target: string) => ({ method: "GET", target, headers: {}, root: "http://localhost/api/data/v9.2/" });
    for (const target of [
      "msdyn_kpieventsdata?savedQuery=00000000-0000-0000-0000-000000000001",
      `msdyn_kpieventsdata?fetchXml=${encodeURIComponent(entity(""))}&$top=1`,
      "msdyn_kpieventsdata?fetchXml=",
    ]) {
      expect(() => planRequest(parseODataRequest(request(target), operations), request(target))).toThrow(ODataError);
    }
  });

  it("a <link-entity> needs Read on the linked tables, as $expand does", () => {
    const planned = plan(
      entity(
        `<link-entity name="msdyn_sessiondata" from="msdyn_providersessionid" to="msdyn_providersessionid">` +
          `<link-entity name="msdyn_conversationdata" from="msdyn_conversationid" to="msdyn_conversationid" /></link-entity>`,
      ),
    );
    expect(privilegesOf(planned).map((p) => `${p.verb} ${p.table.logicalName}`)).toEqual([
      "Read msdyn_kpieventdata",
      "Read msdyn_sessiondata",
      "Read msdyn_conversationdata",
    ]);
  });
});
