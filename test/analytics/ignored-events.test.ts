/**
 * Focus events are read by nothing, so writing one does not mark its conversation for the
 * refresher, and the trigger's list is the derivation's (IGNORED_EVENTS).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { IGNORED_EVENTS } from "../../src/analytics/derive.js";
import { countDirty } from "../../src/analytics/store/refresh-store.js";
import { useTestApp } from "../helpers/app.js";
import { analyticsFixtures } from "../helpers/analytics.js";

describe("events nothing reads", () => {
  const t = useTestApp({ ANALYTICS_REFRESH_MS: "60000" });
  const f = analyticsFixtures(t);

  it("do not mark their conversation; any other event does", async () => {
    await f.conversation({
      id: "focus-1",
      at: "2024-06-01T09:00:00Z",
      sessions: [{ id: "s1", participants: [{ id: "agent-1" }] }],
      events: [],
    });
    await f.refresh();
    expect(await countDirty(t.db.pool)).toBe(0);
    const focus = (name: string) => ({ name, at: "2024-06-01T09:01:00Z", session: "s1", participant: "agent-1" });
    await f.postEvents("focus-1", [focus("SessionFocusIn"), focus("SessionFocusOut")]);
    expect(await countDirty(t.db.pool)).toBe(0);
    await f.postEvents("focus-1", [focus("NotificationReceived")]);
    expect(await countDirty(t.db.pool)).toBe(1);
  });

  it("are the ones the migration's trigger leaves out", async () => {
    const sql = await readFile(
      path.resolve(import.meta.dirname, "../../prisma/migrations/20261204204500_analytics_ignore_focus_events/migration.sql"),
      "utf8",
    );
    const lists = [...sql.matchAll(/NOT IN \(([^)]*)\)/g)].map((m) => m[1]!.split(",").map((x) => x.trim().replace(/'/g, "")));
    expect(lists.length).toBeGreaterThan(0);
    for (const list of lists) expect(list).toEqual([...IGNORED_EVENTS]);
  });
});
