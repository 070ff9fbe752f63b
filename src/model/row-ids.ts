/**
 * Primary keys of new rows. Time-ordered (UUID version 7): new keys land at the right edge
 * of each primary-key index, so an insert touches the same few index pages as the one
 * before it instead of a random one. With random (version 4) keys every insert dirties a
 * random leaf page, and after each checkpoint PostgreSQL logs each such page whole, so the
 * write-ahead log grows several times over on an insert-heavy table such as the KPI events.
 */
import { randomFillSync } from "node:crypto";
import { v7 } from "uuid";

// The random part comes from a pool filled 256 ids at a time: asking the kernel for 16
// bytes per id cost a third of a 1,000-row CreateMultiple's CPU.
const pool = new Uint8Array(16 * 256);
let used = pool.length;

function randomBytes16(): Uint8Array {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  used += 16;
  return pool.subarray(used - 16, used);
}

export const newRowId = (): string => v7({ random: randomBytes16() });
