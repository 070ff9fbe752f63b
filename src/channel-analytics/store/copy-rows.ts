/**
 * Many rows into a table with `COPY … FROM STDIN` (text format) through pg-copy-streams:
 * PostgreSQL parses each value straight into its column, with none of the planning,
 * array parsing and joins of an `INSERT … SELECT FROM unnest(…)`, and the constraints,
 * foreign keys and triggers apply as to any insert. One COPY is one statement: atomic on
 * its own, and refused whole (integrity-errors.ts names the row).
 *
 * Values are those of record-input (strings, numbers, booleans, Dates, null); names come
 * only from the table definitions. A row that leaves out a column another row names gets
 * the column's default, as `rowsSource` gives it.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { ident } from "../../db/sql.js";
import { type SqlType, sqlType } from "../../model/sql-types.js";
import { type TableDef, columnOf } from "../../model/tables.js";
import type { ColumnValues } from "../record-input.js";
import { type Queryable, defaultFor } from "./record-store.js";

/** A connection that can run COPY: a client of its own (a pool cannot stream). */
export type CopyClient = Pick<pg.ClientBase, "query">;

const SPECIAL = /[\\\n\r\t]/;
const SPECIAL_ALL = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** A text value in COPY's text format: backslash, tab, newline and carriage return escaped. */
export const copyText = (value: string): string => (SPECIAL.test(value) ? value.replace(SPECIAL_ALL, (c) => ESCAPES[c]!) : value);

type Encoder = (value: unknown) => string;

function encoderFor(type: SqlType): Encoder {
  switch (type) {
    case "timestamptz":
      // toISOString() is exact (milliseconds, UTC) and what PostgreSQL reads back unchanged.
      return (value) => (value instanceof Date ? value.toISOString() : copyText(String(value)));
    case "boolean":
      return (value) => (value ? "t" : "f");
    case "int":
    case "bigint":
      return (value) => String(value);
    case "uuid":
      // A GUID (record-input checked it) has nothing to escape.
      return (value) => String(value);
    case "text":
      return (value) => copyText(String(value));
  }
}

/** Per table and column, its encoder (made once). */
const encoders = new Map<TableDef, Map<string, Encoder>>();

function encoderOf(table: TableDef, name: string): Encoder {
  let byName = encoders.get(table);
  if (!byName) encoders.set(table, (byName = new Map<string, Encoder>()));
  let encoder = byName.get(name);
  if (!encoder) byName.set(name, (encoder = encoderFor(sqlType(table, columnOf(table, name)))));
  return encoder;
}

/** The columns any row names, in the table's column order. */
export function copyColumns(table: TableDef, rows: readonly ColumnValues[]): string[] {
  const named = new Set<string>();
  for (const values of rows) for (const name of values.keys()) named.add(name);
  return table.columns.map((c) => c.name).filter((name) => named.has(name));
}

const NULL = "\\N";
/** No value yet: equal to none. */
const UNSEEN = Symbol("unseen");

/**
 * The rows in COPY's text format, one line each, columns as `names`. A column's value is
 * encoded once while it repeats from row to row (the owner, the creator, the session…).
 */
export function copyData(table: TableDef, names: readonly string[], rows: readonly ColumnValues[]): string {
  const now = new Date();
  const columns = names.map((name) => {
    const fallback = defaultFor(table, name, now);
    const encode = encoderOf(table, name);
    const last: unknown = UNSEEN;
    return { name, encode, fallback, last, encoded: "" };
  });
  const lines = new Array<string>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const values = rows[r]!;
    let line = "";
    for (let c = 0; c < columns.length; c++) {
      const column = columns[c]!;
      let value = values.get(column.name);
      if (value === undefined && !values.has(column.name)) value = column.fallback;
      if (value !== column.last) {
        column.last = value;
        column.encoded = value === null || value === undefined ? NULL : column.encode(value);
      }
      line += c === 0 ? column.encoded : `\t${column.encoded}`;
    }
    lines[r] = line;
  }
  return `${lines.join("\n")}\n`;
}

/** A COPY made ready before it runs: its statement and its data. */
export interface PreparedCopy {
  sql: string;
  data: string;
}

/** The COPY of `rows` into `table`, made before a connection is taken (undefined: no rows). */
export function prepareCopy(table: TableDef, rows: readonly ColumnValues[]): PreparedCopy | undefined {
  if (rows.length === 0) return undefined;
  const names = copyColumns(table, rows);
  const sql = `COPY ${ident(table.logicalName)} (${names.map(ident).join(", ")}) FROM STDIN`;
  return { sql, data: copyData(table, names, rows) };
}

/** Runs a prepared COPY on `client`; rejects with the database's error when it refuses the rows. */
export async function runCopy(client: CopyClient, copy: PreparedCopy | undefined): Promise<void> {
  if (!copy) return;
  const stream = (client as pg.ClientBase).query(copyFrom(copy.sql));
  await pipeline(Readable.from([copy.data]), stream);
}

/**
 * COPYs `rows` into `table` on `client` (a connection of its own, in the caller's
 * transaction if it has one). Rejects with the database's error when it refuses them.
 */
export const copyRows = (client: CopyClient, table: TableDef, rows: readonly ColumnValues[]): Promise<void> =>
  runCopy(client, prepareCopy(table, rows));

/**
 * Runs `fn` on a connection of its own: one of the pool's, when `db` is a pool (released
 * after), else `db` itself (a client, perhaps in a transaction).
 */
export async function onClient<T>(db: Queryable, fn: (client: CopyClient) => Promise<T>): Promise<T> {
  if (!(db instanceof pg.Pool)) return fn(db);
  const client = await db.connect();
  try {
    return await fn(client);
  } finally {
    client.release();
  }
}

/** `copyRows` on a connection of its own (see `onClient`): one statement, atomic without a transaction. */
export function copyRowsOn(db: Queryable, table: TableDef, rows: readonly ColumnValues[]): Promise<void> {
  // The data is made before the connection is taken, so it is held only while PostgreSQL works.
  const copy = prepareCopy(table, rows);
  return onClient(db, (client) => runCopy(client, copy));
}
