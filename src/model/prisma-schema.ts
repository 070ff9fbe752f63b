/**
 * Renders `prisma/schema.prisma` from the table definitions, so the two cannot drift:
 * `npm run db:schema` writes it, and a test fails when the committed file differs.
 */
import { primaryKeyColumns } from "./distribution.js";
import { type ColumnDef, type TableDef, TABLES, enforcedParents, isUuidColumn, tableByLogicalName } from "./tables.js";

export const foreignKeyName = (table: TableDef, linkName: string) => `fk_${table.logicalName}_${linkName}`;
export const naturalKeyName = (table: TableDef) => `ak_${table.logicalName}_natural_key`;
export const indexName = (table: TableDef, firstColumn: string) =>
  `ix_${table.logicalName}_${firstColumn.replace(/^msdyn_/, "")}`;

function prismaType(table: TableDef, column: ColumnDef): string {
  if (isUuidColumn(table, column)) return "String @db.Uuid";
  switch (column.type) {
    case "string":
    case "memo":
      return `String @db.VarChar(${column.maxLength})`;
    case "datetime":
    case "dateonly":
      return "DateTime @db.Timestamptz(3)";
    case "integer":
    case "picklist":
    case "state":
    case "status":
      return "Int";
    case "bigint":
      return "BigInt";
    case "boolean":
      return "Boolean";
    default:
      throw new Error(`No Prisma type for ${table.logicalName}.${column.name} (${column.type})`);
  }
}

function renderField(table: TableDef, column: ColumnDef): string {
  const [base, ...nativeType] = prismaType(table, column).split(" ");
  const attributes: string[] = [];
  if (column.name === table.primaryKey) {
    // A primary key of more than one column (a distributed table's) is the model's @@id.
    if (primaryKeyColumns(table).length === 1) attributes.push("@id");
    attributes.push('@default(dbgenerated("gen_random_uuid()"))');
  }
  if (column.defaultValue !== undefined) attributes.push(`@default(${column.defaultValue})`);
  attributes.push(...nativeType);
  const optional = column.notNull || column.name === table.primaryKey ? "" : "?";
  return `  ${column.name} ${base}${optional} ${attributes.join(" ")}`.trimEnd();
}

const list = (names: readonly string[]) => `[${names.join(", ")}]`;
const relationName = (child: TableDef, linkName: string) => `${child.logicalName}_${linkName}`;

function renderModel(table: TableDef): string {
  const lines = [`/// ${table.displayName} (entity set ${table.entitySetName})`, `model ${table.logicalName} {`];
  for (const column of table.columns) lines.push(renderField(table, column));

  for (const link of enforcedParents(table)) {
    const optional = link.columns.some((name) => !table.columns.find((c) => c.name === name)?.notNull);
    const onDelete = link.onDelete === "cascade" ? "Cascade" : "Restrict";
    lines.push(
      `  ${link.name} ${link.parentTable}${optional ? "?" : ""} @relation("${relationName(table, link.name)}", ` +
        `fields: ${list(link.columns)}, references: ${list(link.parentColumns)}, ` +
        `onDelete: ${onDelete}, onUpdate: NoAction, map: "${foreignKeyName(table, link.name)}")`,
    );
  }
  for (const child of TABLES) {
    for (const link of enforcedParents(child)) {
      if (link.parentTable !== table.logicalName) continue;
      lines.push(`  ${link.childCollectionName} ${child.logicalName}[] @relation("${relationName(child, link.name)}")`);
    }
  }

  lines.push("");
  const key = primaryKeyColumns(table);
  if (key.length > 1) lines.push(`  @@id(${list(key)}, map: "${table.logicalName}_pkey")`);
  if (table.naturalKey) lines.push(`  @@unique(${list(table.naturalKey)}, map: "${naturalKeyName(table)}")`);
  for (const index of table.indexes) {
    if (index.nullsOrder) continue; // handWrittenIndexSql
    lines.push(`  @@index(${list(index.columns)}, map: "${index.name ?? indexName(table, index.columns[0]!)}")`);
  }
  lines.push(`  @@map("${table.logicalName}")`, "}");
  return lines.join("\n");
}

/**
 * What the hand-written SQL of the migrations creates before any table (Prisma's schema
 * cannot declare a sequence): the row-version sequence the `versionnumber` defaults use.
 */
export function handWrittenPreludeSql(): string[] {
  return [`CREATE SEQUENCE "row_version_seq" AS BIGINT;`];
}

/**
 * The `CREATE INDEX` statements of the indexes Prisma's schema cannot express (NULLS FIRST/LAST),
 * as their migrations hold them by hand; a test checks that the migrated database has them.
 */
export function handWrittenIndexSql(): string[] {
  return TABLES.flatMap((table) =>
    table.indexes
      .filter((index) => index.nullsOrder)
      .map((index) => {
        const columns = index.columns.map((c) => `"${c}"${index.nullsOrder![c] ? ` ${index.nullsOrder![c]}` : ""}`);
        const name = index.name ?? indexName(table, index.columns[0]!);
        return `CREATE INDEX "${name}" ON "${table.logicalName}"(${columns.join(", ")});`;
      }),
  );
}

export function renderPrismaSchema(): string {
  // Parent tables must exist for the relations to resolve; this also checks the definitions.
  for (const table of TABLES) for (const link of table.parents) tableByLogicalName(link.parentTable);
  const header = `// Generated from src/model/tables.ts by \`npm run db:schema\`. Do not edit by hand.

generator client {
  provider   = "prisma-client-js"
  engineType = "client"
}

datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}
`;
  return `${header}\n${TABLES.map(renderModel).join("\n\n")}\n`;
}
