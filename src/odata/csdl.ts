/**
 * The service's CSDL (`GET /api/data/v9.x/$metadata`, OData 4.0 XML), generated from the
 * table definitions: one EntityType and EntitySet per table, a navigation property on
 * both sides of every parent link (src/model/navigation.ts), and the operations it is
 * given (src/actions/ declares each once); unbound ones get their ActionImport /
 * FunctionImport in the container.
 */
import { type NavigationProperty, navigationProperties } from "../model/navigation.js";
import { DATAVERSE_NAMESPACE, edmType, propertyName } from "../model/properties.js";
import { type ColumnDef, type TableDef, WEB_API_TABLES, columnOf } from "../model/tables.js";

export const CSDL_NAMESPACE = DATAVERSE_NAMESPACE;
export const CSDL_ALIAS = "mscrm";
export const CONTAINER_NAME = "System";

/** A property of a complex type, or a parameter of an operation. */
export interface CsdlProperty {
  name: string;
  /** An EDM or schema type: `Edm.String`, `mscrm.msdyn_kpieventdata`, `Collection(Edm.Guid)`… */
  type: string;
  /** Defaults to nullable, as in CSDL. */
  nullable?: boolean;
  maxLength?: number;
}

export interface CsdlComplexType {
  name: string;
  properties: readonly CsdlProperty[];
}

export interface CsdlOperation {
  kind: "Action" | "Function";
  name: string;
  /**
   * For bound operations: the type they are bound to (`mscrm.msdyn_kpieventdata`, or
   * `Collection(mscrm.msdyn_kpieventdata)` for CreateMultiple and friends). It becomes the
   * first parameter, `entity` / `entityset` as Dataverse names it unless `bindingParameterName` says otherwise.
   */
  boundTo?: string;
  bindingParameterName?: string;
  parameters?: readonly CsdlProperty[];
  /** Required for functions. */
  returnType?: { type: string; nullable?: boolean };
}

export interface CsdlExtensions {
  complexTypes?: readonly CsdlComplexType[];
  operations?: readonly CsdlOperation[];
}

/** The table's navigation properties, checked against its other property names. */
function navigations(table: TableDef): NavigationProperty[] {
  const list = navigationProperties(table);
  const names = new Set(table.columns.map(propertyName));
  for (const nav of list) {
    if (names.has(nav.name)) throw new Error(`${table.logicalName}: navigation property ${nav.name} is declared twice`);
    names.add(nav.name);
  }
  return list;
}

// ---------------------------------------------------------------------------
// XML.

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };

export function escapeXmlAttribute(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

type Attributes = Record<string, string | number | boolean | undefined>;

/** One element, its children indented below it; attributes left undefined are omitted. */
function element(name: string, attributes: Attributes, children: readonly string[] = []): string {
  const attrs = Object.entries(attributes)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ` ${key}="${escapeXmlAttribute(String(value))}"`)
    .join("");
  if (children.length === 0) return `<${name}${attrs}/>`;
  const inner = children.flatMap((child) => child.split("\n")).map((line) => `  ${line}`);
  return [`<${name}${attrs}>`, ...inner, `</${name}>`].join("\n");
}

const nullableAttribute = (nullable: boolean | undefined) => (nullable === false ? "false" : undefined);

function propertyElement(p: CsdlProperty, elementName = "Property"): string {
  return element(elementName, { Name: p.name, Type: p.type, Nullable: nullableAttribute(p.nullable), MaxLength: p.maxLength });
}

function columnProperty(column: ColumnDef): string {
  return propertyElement({
    name: propertyName(column),
    type: edmType(column),
    nullable: !column.notNull,
    maxLength: column.type === "string" || column.type === "memo" ? column.maxLength : undefined,
  });
}

function navigationElement(table: TableDef, nav: NavigationProperty): string {
  const type = `${CSDL_ALIAS}.${nav.target.logicalName}`;
  // Referential constraints belong on the dependent (single-valued) side only, and only
  // between properties of one type: msdyn_kpieventid is text in Dataverse but names a GUID.
  const typesAgree = nav.columns.every(
    (column, i) => edmType(columnOf(table, column)) === edmType(columnOf(nav.target, nav.targetColumns[i]!)),
  );
  const constraints =
    nav.collection || !typesAgree
      ? []
      : nav.columns.map((column, i) =>
          element("ReferentialConstraint", {
            Property: propertyName(columnOf(table, column)),
            ReferencedProperty: propertyName(columnOf(nav.target, nav.targetColumns[i]!)),
          }),
        );
  return element(
    "NavigationProperty",
    { Name: nav.name, Type: nav.collection ? `Collection(${type})` : type, Partner: nav.partner },
    constraints,
  );
}

/** The alternate key, as Dataverse declares it (OData.Community.Keys.V1). */
function alternateKeyAnnotation(table: TableDef): string[] {
  if (!table.naturalKey) return [];
  const refs = table.naturalKey.map((name) => {
    const path = propertyName(columnOf(table, name));
    return element("Record", { Type: "OData.Community.Keys.V1.PropertyRef" }, [
      element("PropertyValue", { Property: "Alias", String: path }),
      element("PropertyValue", { Property: "Name", PropertyPath: path }),
    ]);
  });
  return [
    element("Annotation", { Term: "OData.Community.Keys.V1.AlternateKeys" }, [
      element("Collection", {}, [
        element("Record", { Type: "OData.Community.Keys.V1.AlternateKey" }, [
          element("PropertyValue", { Property: "Key" }, [element("Collection", {}, refs)]),
        ]),
      ]),
    ]),
  ];
}

function entityType(table: TableDef): string {
  return element("EntityType", { Name: table.logicalName }, [
    element("Key", {}, [element("PropertyRef", { Name: table.primaryKey })]),
    ...table.columns.map(columnProperty),
    ...navigations(table).map((nav) => navigationElement(table, nav)),
    ...alternateKeyAnnotation(table),
  ]);
}

function complexType(type: CsdlComplexType): string {
  return element(
    "ComplexType",
    { Name: type.name },
    type.properties.map((p) => propertyElement(p)),
  );
}

function operation(op: CsdlOperation): string {
  if (op.kind === "Function" && !op.returnType) throw new Error(`Function ${op.name} needs a return type`);
  const binding: CsdlProperty[] = op.boundTo
    ? [
        {
          name: op.bindingParameterName ?? (op.boundTo.startsWith("Collection(") ? "entityset" : "entity"),
          type: op.boundTo,
          nullable: false,
        },
      ]
    : [];
  return element(op.kind, { Name: op.name, IsBound: op.boundTo ? "true" : undefined }, [
    ...[...binding, ...(op.parameters ?? [])].map((p) => propertyElement(p, "Parameter")),
    ...(op.returnType
      ? [element("ReturnType", { Type: op.returnType.type, Nullable: nullableAttribute(op.returnType.nullable) })]
      : []),
  ]);
}

function operationImport(op: CsdlOperation): string[] {
  if (op.boundTo) return [];
  return op.kind === "Function"
    ? [element("FunctionImport", { Name: op.name, Function: `${CSDL_NAMESPACE}.${op.name}` })]
    : [element("ActionImport", { Name: op.name, Action: `${CSDL_NAMESPACE}.${op.name}` })];
}

function entitySet(table: TableDef): string {
  return element(
    "EntitySet",
    { Name: table.entitySetName, EntityType: `${CSDL_NAMESPACE}.${table.logicalName}` },
    navigations(table).map((nav) => element("NavigationPropertyBinding", { Path: nav.name, Target: nav.target.entitySetName })),
  );
}

/** The CSDL document of the service: its entity sets, and the complex types and operations given. */
export function renderCsdl(extensions: CsdlExtensions = {}): string {
  const complexTypes = extensions.complexTypes ?? [];
  const operations = extensions.operations ?? [];
  const seen = new Set<string>();
  for (const name of [...WEB_API_TABLES.map((t) => t.logicalName), ...complexTypes.map((c) => c.name)]) {
    if (seen.has(name)) throw new Error(`Two schema types are named ${name}`);
    seen.add(name);
  }
  // Bound operations may be overloads of one name; the container's names must be unique.
  const containerNames = new Set(WEB_API_TABLES.map((t) => t.entitySetName));
  for (const op of operations.filter((o) => !o.boundTo)) {
    if (containerNames.has(op.name)) throw new Error(`Two container members are named ${op.name}`);
    containerNames.add(op.name);
  }

  const schema = element(
    "Schema",
    { Namespace: CSDL_NAMESPACE, Alias: CSDL_ALIAS, xmlns: "http://docs.oasis-open.org/odata/ns/edm" },
    [
      ...WEB_API_TABLES.map(entityType),
      ...complexTypes.map(complexType),
      ...operations.map(operation),
      element("EntityContainer", { Name: CONTAINER_NAME }, [
        ...WEB_API_TABLES.map(entitySet),
        ...operations.flatMap(operationImport),
      ]),
    ],
  );
  const edmx = element("edmx:Edmx", { Version: "4.0", "xmlns:edmx": "http://docs.oasis-open.org/odata/ns/edmx" }, [
    element("edmx:Reference", { Uri: "http://vocabularies.odata.org/OData.Community.Keys.V1.xml" }, [
      element("edmx:Include", { Namespace: "OData.Community.Keys.V1", Alias: "Keys" }),
    ]),
    element("edmx:DataServices", {}, [schema]),
  ]);
  return `<?xml version="1.0" encoding="utf-8"?>\n${edmx}\n`;
}
