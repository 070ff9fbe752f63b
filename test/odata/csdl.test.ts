import { XMLParser, XMLValidator } from "fast-xml-parser";
import { describe, expect, it } from "vitest";
import { createBulkActions } from "../../src/actions/bulk-actions.js";
import { Operations } from "../../src/actions/index.js";
import { whoAmI } from "../../src/actions/who-am-i.js";
import { type CsdlExtensions, escapeXmlAttribute, renderCsdl as renderGiven } from "../../src/odata/csdl.js";

// WhoAmI and the bulk actions (src/actions/), plus the ones a test adds.
const SERVICE = new Operations([whoAmI, ...createBulkActions()]).csdl();
const COMPLEX_TYPES = SERVICE.complexTypes!;
const renderCsdl = (extra: CsdlExtensions = {}) =>
  renderGiven({
    complexTypes: [...COMPLEX_TYPES, ...(extra.complexTypes ?? [])],
    operations: [...SERVICE.operations!, ...(extra.operations ?? [])],
  });

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@" });
const schemaOf = (xml: string) => parser.parse(xml)["edmx:Edmx"]["edmx:DataServices"].Schema;

describe("renderCsdl", () => {
  it("takes extra actions and functions, bound or not, and imports the unbound ones", () => {
    const xml = renderCsdl({
      complexTypes: [{ name: "msdyn_InitLogAnalyticsResponse", properties: [{ name: "Result", type: "Edm.String" }] }],
      operations: [
        {
          kind: "Action",
          name: "msdyn_InitLogAnalytics",
          parameters: [{ name: "Payload", type: "Edm.String", nullable: false }],
          returnType: { type: "mscrm.msdyn_InitLogAnalyticsResponse" },
        },
        {
          kind: "Action",
          name: "CreateMultiple",
          boundTo: "Collection(mscrm.msdyn_kpieventdata)",
          parameters: [{ name: "Targets", type: "Collection(mscrm.msdyn_kpieventdata)", nullable: false }],
          returnType: { type: "Collection(Edm.Guid)", nullable: false },
        },
      ],
    });
    expect(XMLValidator.validate(xml)).toBe(true);
    expect(xml).toContain(
      [
        '<Action Name="msdyn_InitLogAnalytics">',
        '        <Parameter Name="Payload" Type="Edm.String" Nullable="false"/>',
        '        <ReturnType Type="mscrm.msdyn_InitLogAnalyticsResponse"/>',
        "      </Action>",
      ].join("\n"),
    );
    expect(xml).toContain(
      [
        '<Action Name="CreateMultiple" IsBound="true">',
        '        <Parameter Name="entityset" Type="Collection(mscrm.msdyn_kpieventdata)" Nullable="false"/>',
        '        <Parameter Name="Targets" Type="Collection(mscrm.msdyn_kpieventdata)" Nullable="false"/>',
        '        <ReturnType Type="Collection(Edm.Guid)" Nullable="false"/>',
        "      </Action>",
      ].join("\n"),
    );
    const container = schemaOf(xml).EntityContainer;
    expect(container.ActionImport).toEqual({
      "@Name": "msdyn_InitLogAnalytics",
      "@Action": "Microsoft.Dynamics.CRM.msdyn_InitLogAnalytics",
    });
    expect(container.FunctionImport).toEqual({ "@Name": "WhoAmI", "@Function": "Microsoft.Dynamics.CRM.WhoAmI" });
    expect(schemaOf(xml).ComplexType.map((c: { "@Name": string }) => c["@Name"])).toEqual([
      ...COMPLEX_TYPES.map((c) => c.name),
      "msdyn_InitLogAnalyticsResponse",
    ]);
  });

  it("refuses declarations that would make the document invalid", () => {
    expect(() => renderCsdl({ operations: [{ kind: "Function", name: "Nothing" }] })).toThrow(/needs a return type/);
    expect(() => renderCsdl({ complexTypes: [{ name: "WhoAmIResponse", properties: [] }] })).toThrow(/Two schema types/);
    expect(() => renderCsdl({ operations: [{ kind: "Action", name: "msdyn_kpieventsdata" }] })).toThrow(/Two container members/);
  });

  it("escapes attribute values", () => {
    expect(escapeXmlAttribute(`a&b<c>d"e'f`)).toBe("a&amp;b&lt;c&gt;d&quot;e&apos;f");
    const xml = renderCsdl({ complexTypes: [{ name: 'Odd"<&>', properties: [] }] });
    expect(xml).toContain('<ComplexType Name="Odd&quot;&lt;&amp;&gt;"/>');
    expect(XMLValidator.validate(xml)).toBe(true);
    expect(schemaOf(xml).ComplexType.at(-1)["@Name"]).toBe('Odd"<&>');
  });
});
