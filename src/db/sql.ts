/** SQL text helpers shared by every query builder: names quoted, values bound. */
import { createHash } from "node:crypto";

/** Quotes an identifier; callers pass names from the table definitions only. */
export const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** Collects bound parameters; `add` returns the placeholder. */
export class SqlParams {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

const statementNames = new Map<string, string>();
// Each connection keeps the statements it prepared; the bound keeps that memory small.
const MAX_PREPARED_STATEMENTS = 500;

/**
 * A query config that the pg driver prepares once per connection (by name) and then only
 * binds and executes: the planning of hot statements is not paid per request.
 */
export function prepared(text: string, values: unknown[]): { name?: string; text: string; values: unknown[] } {
  let name = statementNames.get(text);
  if (!name && statementNames.size < MAX_PREPARED_STATEMENTS) {
    name = `s_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return name ? { name, text, values } : { text, values };
}
