/**
 * The refresher cuts a batch into slices of a bounded number of events (memory stays bounded
 * whatever the conversations' sizes), and a sliced batch derives exactly what one slice does.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { refreshBatch } from "../../src/analytics/refresher.js";
import { slicesByEvents } from "../../src/analytics/store/refresh-store.js";
import { useTestApp } from "../helpers/app.js";
import { analyticsFixtures } from "../helpers/analytics.js";
import { DAY, DAY_INTERVAL } from "./day-fixture.js";

describe("refresher slices", () => {
  const t = useTestApp({ ANALYTICS_REFRESH_MS: "60000" });
  const f = analyticsFixtures(t);
  const ids = DAY.map((c) => c.id);

  beforeAll(async () => {
    for (const c of DAY) await f.conversation(c);
  });

  it("cut the ids in order at the event budget, a big conversation alone", async () => {
    const counts = DAY.map((c) => c.events.length);
    const slices = await slicesByEvents(t.db.pool, ids, Math.max(...counts));
    expect(slices.flat()).toEqual(ids);
    for (const slice of slices) {
      const n = slice.reduce((sum, id) => sum + DAY.find((c) => c.id === id)!.events.length, 0);
      expect(slice.length === 1 || n <= Math.max(...counts)).toBe(true);
    }
    expect(slices.length).toBeGreaterThan(1);
    expect(await slicesByEvents(t.db.pool, ids, 1)).toEqual(ids.map((id) => [id]));
  });

  it("derive the same metrics and rollups one event at a time as in one slice", async () => {
    const settings = t.app.analytics!.settings;
    const body = {
      interval: DAY_INTERVAL,
      granularity: "PT1H",
      groupBy: ["queueId"],
      metrics: ["nOffered", "tHandle", "tAbandon", "oServiceLevel"],
    };
    const result = await refreshBatch(t.db.pool, settings, 500, "maintain", 1);
    expect(result.conversations).toBe(ids.length);
    const sliced = (await f.aggregates(body)).json();
    const details = (await f.details({ interval: DAY_INTERVAL })).json();
    // Everything again in one slice.
    await t.db.pool.query("INSERT INTO cif_analytics_dirty (conversationid) SELECT unnest($1::text[])", [ids]);
    await refreshBatch(t.db.pool, settings, 500, "maintain", 1_000_000);
    expect((await f.aggregates(body)).json()).toEqual(sliced);
    expect((await f.details({ interval: DAY_INTERVAL })).json()).toEqual(details);
    expect(sliced.results.length).toBeGreaterThan(0);
  });
});
