/** Rows as the API writes them: the fast serializer per table and $select, and the one with FormattedValue annotations. */
import { describe, expect, it } from "vitest";
import { TABLES, tableByLogicalName } from "../../src/model/tables.js";
import { FORMATTED_VALUE } from "../../src/odata/annotations.js";
import { propertyName } from "../../src/model/properties.js";
import { serializeRow } from "../../src/odata/record-serializer.js";

const EVENT = tableByLogicalName("msdyn_kpieventdata");
const row = {
  msdyn_kpieventdataid: "7d3a1c52-0000-4000-8000-000000000001",
  msdyn_conversationid: "c-1",
  msdyn_eventtimestamp: new Date("2026-11-22T09:30:00.123Z"),
  msdyn_participantid: null,
  versionnumber: "42",
  statecode: 0,
  statuscode: 1,
};

describe("serializeRow", () => {
  it("writes every column under its property name, the etag first, date-times in whole seconds, bigints as numbers", () => {
    const out = serializeRow(EVENT, row);
    expect(Object.keys(out)).toEqual(["@odata.etag", ...EVENT.columns.map(propertyName)]);
    expect(out).toMatchObject({
      "@odata.etag": 'W/"42"',
      msdyn_kpieventdataid: row.msdyn_kpieventdataid,
      msdyn_conversationid: "c-1",
      msdyn_eventtimestamp: "2026-11-22T09:30:00Z",
      msdyn_participantid: null,
      versionnumber: 42,
      statecode: 0,
    });
    // Columns the row does not carry are null, never missing.
    expect(out.msdyn_kpieventname).toBeNull();
  });

  it("writes only the selected columns, in the order asked", () => {
    const select = ["statecode", "msdyn_eventtimestamp"].map((name) => EVENT.columns.find((c) => c.name === name)!);
    expect(serializeRow(EVENT, row, select)).toEqual({
      "@odata.etag": 'W/"42"',
      statecode: 0,
      msdyn_eventtimestamp: "2026-11-22T09:30:00Z",
    });
  });

  it("writes the same values with and without FormattedValue annotations, for every table", () => {
    for (const table of TABLES) {
      const sample = Object.fromEntries(
        table.columns.map((c, i) => [c.name, i % 3 === 0 ? null : ((row as Record<string, unknown>)[c.name] ?? null)]),
      );
      const plain = serializeRow(table, { ...sample, versionnumber: "7" });
      const annotated = serializeRow(table, { ...sample, versionnumber: "7" }, undefined, { formattedValues: true });
      const withoutAnnotations = Object.fromEntries(
        Object.entries(annotated).filter(([key]) => !key.endsWith(`@${FORMATTED_VALUE}`)),
      );
      expect(withoutAnnotations).toEqual(plain);
    }
  });
});
