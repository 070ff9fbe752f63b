/** SQL text helpers shared by every query builder: names quoted, values bound. */

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
