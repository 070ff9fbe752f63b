import { XMLParser, XMLValidator } from "fast-xml-parser";
import { beforeAll, describe, expect, it } from "vitest";
import { WEB_API_TABLES, type TableDef, tableByLogicalName } from "../../src/model/tables.js";
import { edmType, propertyName } from "../../src/model/properties.js";
import { useTestApp } from "../helpers/app.js";
import { ODATA_JSON } from "../helpers/records.js";

const VERSIONS = ["v9.0", "v9.1", "v9.2"];
const HOST = "example.test:8080";

/** Elements that may repeat: always parsed as arrays. */
const REPEATED = new Set([
  "edmx:Reference",
  "edmx:Include",
  "EntityType",
  "PropertyRef",
  "Property",
  "NavigationProperty",
  "ReferentialConstraint",
  "ComplexType",
  "Function",
  "Action",
  "Parameter",
  "EntitySet",
  "NavigationPropertyBinding",
  "FunctionImport",
  "ActionImport",
  "Annotation",
  "Record",
  "PropertyValue",
]);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  isArray: (name, _path, _leaf, isAttribute) => !isAttribute && REPEATED.has(name),
});

// The parsed shapes we read; attributes are strings.
type Attrs = Record<`@${string}`, string | undefined>;
interface XNav extends Attrs {
  ReferentialConstraint?: Attrs[];
}
interface XEntityType extends Attrs {
  Key: { PropertyRef: Attrs[] };
  Property: Attrs[];
  NavigationProperty?: XNav[];
  Annotation?: {
    "@Term": string;
    Collection: { Record: { PropertyValue: { Collection: { Record: { PropertyValue: Attrs[] }[] } }[] }[] };
  }[];
}
interface XEntitySet extends Attrs {
  NavigationPropertyBinding?: Attrs[];
}
interface XSchema extends Attrs {
  EntityType: XEntityType[];
  ComplexType: (Attrs & { Property: Attrs[] })[];
  Function: (Attrs & { ReturnType: Attrs })[];
  EntityContainer: Attrs & { EntitySet: XEntitySet[]; FunctionImport: Attrs[] };
}
interface XDocument {
  "edmx:Edmx": Attrs & { "edmx:DataServices": { Schema: XSchema } };
}

interface ExpectedNav {
  "@Name": string;
  "@Type": string;
  "@Partner": string;
  constraints: { "@Property": string; "@ReferencedProperty": string }[];
  target: TableDef;
}

/** The navigation properties the table definitions call for, worked out here independently of src/odata/csdl.ts. */
function expectedNavigations(table: TableDef): ExpectedNav[] {
  const column = (t: TableDef, name: string) => t.columns.find((c) => c.name === name)!;
  const single = table.parents.map((link) => {
    const parent = tableByLogicalName(link.parentTable);
    return {
      "@Name": link.name,
      "@Type": `mscrm.${link.parentTable}`,
      "@Partner": link.childCollectionName,
      // No constraint between properties of different types (msdyn_kpieventid is text naming a GUID).
      constraints: link.columns.every((c, i) => edmType(column(table, c)) === edmType(column(parent, link.parentColumns[i]!)))
        ? link.columns.map((c, i) => ({
            "@Property": propertyName(column(table, c)),
            "@ReferencedProperty": propertyName(column(parent, link.parentColumns[i]!)),
          }))
        : [],
      target: parent,
    };
  });
  const collections = WEB_API_TABLES.flatMap((child) =>
    child.parents
      .filter((link) => link.parentTable === table.logicalName)
      .map((link) => ({
        "@Name": link.childCollectionName,
        "@Type": `Collection(mscrm.${child.logicalName})`,
        "@Partner": link.name,
        constraints: [],
        target: child,
      })),
  );
  return [...single, ...collections];
}

describe("$metadata and WhoAmI", () => {
  const t = useTestApp();
  let xml: string;
  let schema: XSchema;
  let doc: XDocument;

  beforeAll(async () => {
    const res = await t.app.inject({ method: "GET", url: "/api/data/v9.2/$metadata", headers: { host: HOST } });
    expect(res.statusCode).toBe(200);
    xml = res.body;
    doc = parser.parse(xml) as XDocument;
    schema = doc["edmx:Edmx"]["edmx:DataServices"].Schema;
  });

  const entityType = (logicalName: string) => {
    const found = schema.EntityType.find((e) => e["@Name"] === logicalName);
    expect(found, logicalName).toBeDefined();
    return found!;
  };

  describe("GET $metadata", () => {
    it.each(VERSIONS)("answers under %s with the same CSDL, as application/xml", async (version) => {
      const res = await t.app.inject({ method: "GET", url: `/api/data/${version}/$metadata`, headers: { host: HOST } });
      expect(res.statusCode).toBe(200);
      expect(res.headers["content-type"]).toBe("application/xml");
      expect(res.headers["odata-version"]).toBe("4.0");
      expect(res.body).toBe(xml);
    });

    it("answers an unknown API version with a Dataverse 404", async () => {
      const res = await t.app.inject({ method: "GET", url: "/api/data/v8.0/$metadata" });
      expect(res.statusCode).toBe(404);
      expect(res.headers["odata-version"]).toBe("4.0");
      expect(res.headers["content-type"]).toBe(ODATA_JSON);
      expect(res.json()).toEqual({ error: { code: "0x8006088a", message: "Resource not found for the segment 'v8.0'." } });
    });

    it("is well-formed OData 4.0 CSDL in the Microsoft.Dynamics.CRM namespace", () => {
      expect(XMLValidator.validate(xml)).toBe(true);
      const edmx = doc["edmx:Edmx"];
      expect(edmx["@Version"]).toBe("4.0");
      expect(edmx["@xmlns:edmx"]).toBe("http://docs.oasis-open.org/odata/ns/edmx");
      expect(schema["@Namespace"]).toBe("Microsoft.Dynamics.CRM");
      expect(schema["@Alias"]).toBe("mscrm");
      expect(schema["@xmlns"]).toBe("http://docs.oasis-open.org/odata/ns/edm");
    });

    it("declares every table as an entity type with its primary key", () => {
      expect(schema.EntityType.map((e) => e["@Name"]).sort()).toEqual(WEB_API_TABLES.map((t) => t.logicalName).sort());
      for (const table of WEB_API_TABLES) {
        expect(entityType(table.logicalName).Key.PropertyRef, table.logicalName).toEqual([{ "@Name": table.primaryKey }]);
      }
    });

    it("declares every column as a property with its type, max length and nullability", () => {
      for (const table of WEB_API_TABLES) {
        const expected = table.columns.map((c) => ({
          "@Name": propertyName(c),
          "@Type": edmType(c),
          ...(c.maxLength !== undefined ? { "@MaxLength": String(c.maxLength) } : {}),
          ...(c.notNull ? { "@Nullable": "false" } : {}),
        }));
        expect(entityType(table.logicalName).Property, table.logicalName).toEqual(expected);
      }
      // Spot checks, so a mistake shared by the expectation above and the code would still show.
      const kpiEvent = entityType("msdyn_kpieventdata").Property;
      expect(kpiEvent.find((p) => p["@Name"] === "msdyn_additionaldata")).toEqual({
        "@Name": "msdyn_additionaldata",
        "@Type": "Edm.String",
        "@MaxLength": "2000",
      });
      expect(kpiEvent.find((p) => p["@Name"] === "_ownerid_value")).toEqual({
        "@Name": "_ownerid_value",
        "@Type": "Edm.Guid",
        "@Nullable": "false",
      });
      expect(kpiEvent.find((p) => p["@Name"] === "versionnumber")).toEqual({
        "@Name": "versionnumber",
        "@Type": "Edm.Int64",
        "@Nullable": "false",
      });
    });

    it("declares every parent link on both sides, with referential constraints on the child", () => {
      let links = 0;
      for (const table of WEB_API_TABLES) {
        const actual = (entityType(table.logicalName).NavigationProperty ?? []).map((n) => ({
          "@Name": n["@Name"],
          "@Type": n["@Type"],
          "@Partner": n["@Partner"],
          constraints: n.ReferentialConstraint ?? [],
        }));
        const expected = expectedNavigations(table).map(({ target: _target, ...nav }) => nav);
        expect(actual, table.logicalName).toEqual(expected);
        links += table.parents.length;
      }
      expect(links).toBe(WEB_API_TABLES.reduce((n, table) => n + table.parents.length, 0));

      // Each parent of an event has exactly one msdyn_kpievents collection, partnered with its own link.
      const kpiEventParents = tableByLogicalName("msdyn_kpieventdata").parents;
      expect(kpiEventParents.map((p) => p.parentTable).sort()).toEqual([
        "msdyn_conversationdata",
        "msdyn_kpieventdefinition",
        "msdyn_sessiondata",
        "msdyn_sessionparticipantdata",
      ]);
      for (const link of kpiEventParents) {
        const navs = entityType(link.parentTable).NavigationProperty!.filter((n) => n["@Name"] === "msdyn_kpievents");
        expect(navs, link.parentTable).toEqual([
          { "@Name": "msdyn_kpievents", "@Type": "Collection(mscrm.msdyn_kpieventdata)", "@Partner": link.name },
        ]);
      }
      expect(entityType("msdyn_kpieventdata").NavigationProperty!.find((n) => n["@Name"] === "msdyn_definition")).toEqual({
        "@Name": "msdyn_definition",
        "@Type": "mscrm.msdyn_kpieventdefinition",
        "@Partner": "msdyn_kpievents",
      });
    });

    it("makes every navigation property resolve: partners point back, constraints name real properties", () => {
      for (const type of schema.EntityType) {
        for (const nav of type.NavigationProperty ?? []) {
          const targetName = nav["@Type"]!.replace(/^Collection\((.*)\)$/, "$1").replace(/^mscrm\./, "");
          const target = entityType(targetName);
          const partner = target.NavigationProperty?.find((n) => n["@Name"] === nav["@Partner"]);
          expect(partner, `${type["@Name"]}.${nav["@Name"]}`).toBeDefined();
          expect(partner!["@Partner"]).toBe(nav["@Name"]);
          expect(partner!["@Type"]!.replace(/^Collection\((.*)\)$/, "$1")).toBe(`mscrm.${type["@Name"]}`);
          for (const c of nav.ReferentialConstraint ?? []) {
            expect(type.Property.map((p) => p["@Name"])).toContain(c["@Property"]);
            expect(target.Property.map((p) => p["@Name"])).toContain(c["@ReferencedProperty"]);
          }
        }
        // No name is declared twice within a type.
        const names = [...type.Property, ...(type.NavigationProperty ?? [])].map((p) => p["@Name"]);
        expect(new Set(names).size, type["@Name"]).toBe(names.length);
      }
    });

    it("annotates the alternate keys", () => {
      for (const table of WEB_API_TABLES) {
        const annotations = entityType(table.logicalName).Annotation ?? [];
        const keys = annotations.filter((a) => a["@Term"] === "OData.Community.Keys.V1.AlternateKeys");
        if (!table.naturalKey) {
          expect(keys, table.logicalName).toEqual([]);
          continue;
        }
        expect(keys).toHaveLength(1);
        const [key] = keys[0]!.Collection.Record;
        const parts = key!.PropertyValue[0]!.Collection.Record.map(
          (r) => r.PropertyValue.find((v) => v["@Property"] === "Name")!["@PropertyPath"],
        );
        expect(parts, table.logicalName).toEqual([...table.naturalKey]);
      }
      expect(doc["edmx:Edmx"]["edmx:Reference" as never]).toEqual([
        {
          "@Uri": "http://vocabularies.odata.org/OData.Community.Keys.V1.xml",
          "edmx:Include": [{ "@Namespace": "OData.Community.Keys.V1", "@Alias": "Keys" }],
        },
      ]);
    });

    it("puts every entity set in the System container with its navigation property bindings", () => {
      const container = schema.EntityContainer;
      expect(container["@Name"]).toBe("System");
      expect(container.EntitySet.map((s) => s["@Name"]).sort()).toEqual(WEB_API_TABLES.map((t) => t.entitySetName).sort());
      for (const table of WEB_API_TABLES) {
        const set = container.EntitySet.find((s) => s["@Name"] === table.entitySetName)!;
        expect(set["@EntityType"]).toBe(`Microsoft.Dynamics.CRM.${table.logicalName}`);
        expect(set.NavigationPropertyBinding ?? [], table.entitySetName).toEqual(
          expectedNavigations(table).map((nav) => ({ "@Path": nav["@Name"], "@Target": nav.target.entitySetName })),
        );
      }
    });

    it("declares WhoAmI: its response type, the function and its import", () => {
      expect(schema.ComplexType.find((c) => c["@Name"] === "WhoAmIResponse")).toEqual({
        "@Name": "WhoAmIResponse",
        Property: ["BusinessUnitId", "UserId", "OrganizationId"].map((name) => ({
          "@Name": name,
          "@Type": "Edm.Guid",
          "@Nullable": "false",
        })),
      });
      expect(schema.Function.find((f) => f["@Name"] === "WhoAmI")).toEqual({
        "@Name": "WhoAmI",
        ReturnType: { "@Type": "mscrm.WhoAmIResponse", "@Nullable": "false" },
      });
      expect(schema.EntityContainer.FunctionImport).toContainEqual({
        "@Name": "WhoAmI",
        "@Function": "Microsoft.Dynamics.CRM.WhoAmI",
      });
    });

    it("declares the logging actions and the bulk actions of every entity set", () => {
      const actions = (schema as unknown as { Action: Array<Record<string, unknown>> }).Action;
      const imports = (schema.EntityContainer as unknown as { ActionImport: Array<Record<string, string>> }).ActionImport;
      for (const name of ["msdyn_InitLogAnalytics", "msdyn_LogAnalyticsEvent"]) {
        expect(actions.map((a) => a["@Name"])).toContain(name);
        expect(imports).toContainEqual({ "@Name": name, "@Action": `Microsoft.Dynamics.CRM.${name}` });
      }
      for (const table of WEB_API_TABLES) {
        for (const name of ["CreateMultiple", "UpdateMultiple", "UpsertMultiple"]) {
          const bound = actions.find(
            (a) =>
              a["@Name"] === name &&
              (a.Parameter as Array<Record<string, string>>)[0]!["@Type"] === `Collection(mscrm.${table.logicalName})`,
          );
          expect(bound, `${name} on ${table.logicalName}`).toMatchObject({ "@IsBound": "true" });
        }
      }
    });
  });

  describe("WhoAmI", () => {
    const cases = VERSIONS.flatMap((version) => ["WhoAmI", "WhoAmI()"].map((name) => [version, name] as const));

    it.each(cases)("GET /api/data/%s/%s answers the configured caller", async (version, name) => {
      const res = await t.app.inject({ method: "GET", url: `/api/data/${version}/${name}`, headers: { host: HOST } });
      expect(res.statusCode).toBe(200);
      expect(res.headers["content-type"]).toBe(ODATA_JSON);
      expect(res.headers["odata-version"]).toBe("4.0");
      expect(res.json()).toEqual({
        "@odata.context": `http://${HOST}/api/data/${version}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse`,
        BusinessUnitId: t.config.BUSINESS_UNIT_ID,
        UserId: t.config.CALLER_USER_ID,
        OrganizationId: t.config.ORGANIZATION_ID,
      });
      expect(t.config.BUSINESS_UNIT_ID).toMatch(/^[0-9a-f-]{36}$/);
    });

    // Issue 17: a 405 with a code and an Allow header (it was a 404 with an empty code).
    it.each(cases)("POST /api/data/%s/%s is a 405 with a code and Allow: GET", async (version, name) => {
      const url = `/api/data/${version}/${name}`;
      const res = await t.app.inject({ method: "POST", url, headers: { host: HOST }, payload: {} });
      expect(res.statusCode).toBe(405);
      expect(res.headers["content-type"]).toBe(ODATA_JSON);
      expect(res.headers["odata-version"]).toBe("4.0");
      expect(res.headers.allow).toBe("GET");
      expect(res.json()).toEqual({
        error: { code: "0x80040216", message: "The HTTP method 'POST' is not supported by 'WhoAmI'. Supported: GET." },
      });
    });

    it("answers the other write methods the same way", async () => {
      for (const method of ["PATCH", "PUT", "DELETE"] as const) {
        const res = await t.app.inject({ method, url: "/api/data/v9.2/WhoAmI", headers: { host: HOST } });
        expect(res.statusCode, method).toBe(405);
        expect(res.json().error.code).toBe("0x80040216");
      }
    });

    it("answers an unknown API version with a Dataverse 404", async () => {
      for (const method of ["GET", "POST"] as const) {
        const res = await t.app.inject({ method, url: "/api/data/v8.0/WhoAmI" });
        expect(res.statusCode).toBe(404);
        expect(res.json()).toEqual({ error: { code: "0x8006088a", message: "Resource not found for the segment 'v8.0'." } });
      }
    });
  });
});
