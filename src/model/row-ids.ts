/**
 * Primary keys of new rows. Time-ordered (UUID version 7): new keys land at the right edge
 * of each primary-key index, so an insert touches the same few index pages as the one
 * before it instead of a random one. With random (version 4) keys every insert dirties a
 * random leaf page, and after each checkpoint PostgreSQL logs each such page whole, so the
 * write-ahead log grows several times over on an insert-heavy table such as the KPI events.
 */
import { v7 } from "uuid";

export const newRowId = (): string => v7();
