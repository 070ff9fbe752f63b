/**
 * Turns the database's refusals (foreign keys, unique keys, NOT NULL) into Dataverse
 * errors that name the missing parent and the key that was looked for. The database is
 * the guard (no race can leave an orphan); this module only explains its verdicts.
 */
import { ErrorCodes, ODataError, badRequest } from "../odata/errors.js";
import { DISTRIBUTION_COLUMN, isDistributed } from "../model/distribution.js";
import { foreignKeyName, naturalKeyName } from "../model/prisma-schema.js";
import { type ParentLinkDef, TABLES, type TableDef, enforcedParents, tableByLogicalName } from "../model/tables.js";
import type { ColumnValues } from "./record-input.js";
import { ident } from "../db/sql.js";
import type { Queryable } from "../db/transactions.js";

interface PgError {
  code?: string;
  constraint?: string;
  column?: string;
  table?: string;
  message?: string;
}

/** What Citus reports as XX000 when a worker refused rows that it copied there (INSERT … SELECT). */
const CODE_OF_MESSAGE: ReadonlyArray<readonly [RegExp, string]> = [
  [/violates foreign key constraint "/, "23503"],
  [/^duplicate key value violates unique constraint "/, "23505"],
  [/violates not-null constraint/, "23502"],
];

/**
 * The error's code, constraint and column. A refusal raised on a Citus worker arrives without
 * the `constraint`/`column` fields and names the shard's constraint, with the shard id
 * appended (`fk_msdyn_kpieventdata_msdyn_session_102133`): then they are read from the
 * message, without that suffix, so the errors are the same on both; so is the code, when
 * the refusal came from rows copied to a worker (Citus reports those as XX000).
 */
export function refusalOf(error: unknown): PgError {
  const pg = (error ?? {}) as PgError;
  const message = typeof pg.message === "string" ? pg.message : "";
  const unsharded = (name: string | undefined) => (name && !KNOWN_NAMES.has(name) ? name.replace(/_\d+$/, "") : name);
  return {
    code: pg.code === "XX000" ? (CODE_OF_MESSAGE.find(([pattern]) => pattern.test(message))?.[1] ?? pg.code) : pg.code,
    constraint: unsharded(pg.constraint ?? /constraint "([^"]+)"/.exec(message)?.[1]),
    column: pg.column ?? /column "([^"]+)"/.exec(message)?.[1],
    table: unsharded(pg.table ?? /relation "([^"]+)"/.exec(message)?.[1]),
    message,
  };
}

const links = TABLES.flatMap((child) =>
  enforcedParents(child).map((link) => ({ child, link, name: foreignKeyName(child, link.name) })),
);

/** The constraint and table names the refusals are about, as they are (not shard-suffixed). */
const KNOWN_NAMES = new Set([
  ...links.map((l) => l.name),
  ...TABLES.flatMap((t) => [t.logicalName, `${t.logicalName}_pkey`, ...(t.naturalKey ? [naturalKeyName(t)] : [])]),
]);

const describeKey = (columns: readonly string[], values: readonly unknown[]) =>
  columns.map((c, i) => `${c} = '${String(values[i])}'`).join(", ");

/** The highest ancestor along the link that is missing, so "no conversation" beats "no session of it". */
async function missingAncestor(
  db: Queryable,
  link: ParentLinkDef,
  values: readonly unknown[],
): Promise<{ link: ParentLinkDef; values: readonly unknown[] }> {
  const parent = tableByLogicalName(link.parentTable);
  for (const up of enforcedParents(parent)) {
    if (!up.columns.every((c) => link.parentColumns.includes(c))) continue;
    const upValues = up.columns.map((c) => values[link.parentColumns.indexOf(c)]);
    const where = up.parentColumns.map((c, i) => `${ident(c)} = $${i + 1}`).join(" AND ");
    const { rowCount } = await db.query(`SELECT 1 FROM ${ident(up.parentTable)} WHERE ${where}`, upValues);
    if (!rowCount) return missingAncestor(db, up, upValues);
  }
  return { link, values };
}

export function missingParentError(table: TableDef, link: ParentLinkDef, values: readonly unknown[]): ODataError {
  const parent = tableByLogicalName(link.parentTable);
  return badRequest(
    `${table.logicalName} was not saved: its ${link.description} does not exist ` +
      `(no ${parent.logicalName} with ${describeKey(link.parentColumns, values)}). Create the ${link.description} first.`,
    ErrorCodes.objectDoesNotExist,
  );
}

/**
 * Explains a database error raised while writing `table` with `values` (or deleting a
 * row of it); undefined when the error is not an integrity refusal.
 */
export async function explainDatabaseError(
  error: unknown,
  table: TableDef,
  values: ColumnValues,
  db: Queryable,
  current?: Record<string, unknown>,
): Promise<ODataError | undefined> {
  const pg = refusalOf(error);
  switch (pg.code) {
    case "23503": {
      const found = links.find((l) => l.name === pg.constraint);
      if (!found) return undefined;
      if (found.child.logicalName === table.logicalName) {
        const linkValues = found.link.columns.map((c) => (values.has(c) ? values.get(c) : current?.[c]));
        const missing = await missingAncestor(db, found.link, linkValues);
        return missingParentError(table, missing.link, missing.values);
      }
      // We are the parent: rows of the child still refer to us.
      if (found.link.onDelete === "restrict") {
        return new ODataError(
          405,
          ErrorCodes.generic,
          `The ${table.logicalName} cannot be deleted because ${found.child.logicalName} rows use it. ` +
            `Deactivate it instead (PATCH with {"statecode": 1}).`,
        );
      }
      return badRequest(
        `${found.link.parentColumns.join(", ")} of ${table.logicalName} cannot change while ${found.child.logicalName} rows refer to it.`,
        ErrorCodes.invalidArgument,
      );
    }
    case "23505": {
      if (pg.constraint === naturalKeyName(table)) {
        return new ODataError(
          412,
          "0x80060892",
          `A record with the same value for ${table.naturalKey!.join(", ")} already exists ` +
            `(alternate key of ${table.logicalName}).`,
        );
      }
      if (pg.constraint === `${table.logicalName}_pkey`) {
        return new ODataError(412, ErrorCodes.duplicateRecord, "A record with matching key values already exists.");
      }
      return undefined;
    }
    case "23502":
      return badRequest(`'${pg.column}' of ${table.logicalName} is required.`, ErrorCodes.invalidArgument);
    case "0A000":
      // Citus: a row's distribution column places it on its shard (src/model/distribution.ts).
      if (!/modifying the partition value of rows is not allowed/.test(pg.message ?? "")) return undefined;
      return badRequest(
        `${DISTRIBUTION_COLUMN} of ${table.logicalName} cannot change on a Citus cluster, where it places the row: ` +
          `create the row under the new ${DISTRIBUTION_COLUMN} and delete this one.`,
        ErrorCodes.invalidArgument,
      );
    default:
      return undefined;
  }
}

/**
 * The index (from 0) of the row a refused COPY names in its error context ("COPY t, line
 * 3: …"), when it names one: a row's own constraint (a taken key, NOT NULL, a CHECK). A
 * foreign key is checked after the last row, so its refusal names none.
 */
export function copyLineOf(error: unknown): number | undefined {
  const where = (error as { where?: unknown }).where;
  if (typeof where !== "string") return undefined;
  const match = /\bCOPY [^,]+, line (\d+)/.exec(where);
  return match ? Number(match[1]) - 1 : undefined;
}

/**
 * After a multi-row INSERT or COPY was refused, the index of the first row the refusal is
 * about: the row a COPY's error names (a taken key, NOT NULL), else a row whose parent is
 * missing, or whose key another row (of the batch or stored) holds.
 */
export async function findRefusedRow(
  error: unknown,
  table: TableDef,
  rows: readonly ColumnValues[],
  db: Queryable,
): Promise<number | undefined> {
  const pg = refusalOf(error);
  const line = copyLineOf(error);
  if (line !== undefined && line < rows.length && pg.code !== "23503") return line;
  const tuple = (values: ColumnValues, columns: readonly string[]) => columns.map((c) => values.get(c) ?? null);
  const existing = async (target: string, columns: readonly string[], tuples: unknown[][]) => {
    const params: unknown[] = tuples.flat();
    const list = tuples.map((t, i) => `(${t.map((_, j) => `$${i * t.length + j + 1}`).join(", ")})`).join(", ");
    let where = `(${columns.map(ident).join(", ")}) IN (${list})`;
    // On Citus, the shards of these rows only.
    const shardColumn = columns.indexOf(DISTRIBUTION_COLUMN);
    if (shardColumn >= 0 && isDistributed(tableByLogicalName(target))) {
      params.push([...new Set(tuples.map((t) => String(t[shardColumn])))]);
      where = `${ident(DISTRIBUTION_COLUMN)} = ANY($${params.length}::text[]) AND ${where}`;
    }
    const { rows: found } = await db.query(
      `SELECT ${columns.map(ident).join(", ")} FROM ${ident(target)} WHERE ${where}`,
      params,
    );
    return new Set(found.map((row: Record<string, unknown>) => JSON.stringify(columns.map((c) => row[c]))));
  };
  if (pg.code === "23503") {
    const found = links.find((l) => l.name === pg.constraint && l.child.logicalName === table.logicalName);
    if (!found) return undefined;
    const tuples = rows.map((values) => tuple(values, found.link.columns));
    const candidates = tuples.filter((t) => t.every((v) => v !== null));
    const present = await existing(found.link.parentTable, found.link.parentColumns, candidates);
    const index = tuples.findIndex((t) => t.every((v) => v !== null) && !present.has(JSON.stringify(t)));
    return index < 0 ? undefined : index;
  }
  if (pg.code === "23505") {
    const columns =
      pg.constraint === naturalKeyName(table)
        ? table.naturalKey!
        : pg.constraint === `${table.logicalName}_pkey`
          ? [table.primaryKey]
          : undefined;
    if (!columns) return undefined;
    const tuples = rows.map((values) => JSON.stringify(tuple(values, columns)));
    const duplicate = tuples.findIndex((t, i) => tuples.indexOf(t) !== i);
    const present = await existing(
      table.logicalName,
      columns,
      rows.map((values) => tuple(values, columns)),
    );
    const stored = tuples.findIndex((t) => present.has(t));
    const candidates = [duplicate, stored].filter((i) => i >= 0);
    return candidates.length ? Math.min(...candidates) : undefined;
  }
  if (pg.code === "23502") return 0;
  return undefined;
}

/**
 * Explains a refused INSERT of `rows` (one or many): which row the refusal is about, and
 * why; undefined when the error is not an integrity refusal.
 */
export async function explainRefusedRows(
  error: unknown,
  table: TableDef,
  rows: readonly ColumnValues[],
  db: Queryable,
): Promise<{ index: number; error: ODataError } | undefined> {
  const index = rows.length === 1 ? 0 : await findRefusedRow(error, table, rows, db);
  if (index === undefined) return undefined;
  const explained = await explainDatabaseError(error, table, rows[index]!, db);
  return explained && { index, error: explained };
}
