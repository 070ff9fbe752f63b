/**
 * Users details export jobs over the hand-computed agent day: the same records as the users
 * details query, every agent once, paged by cursor; the state filters; a bad body named.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { analyticsFixtures, expectGenesysError } from "../helpers/analytics.js";
import { allResults, injector, submit, waitFor } from "../helpers/export-jobs.js";
import { AGENT_DAY, AGENT_DAY_CONVERSATIONS } from "./agent-day-fixture.js";

const USERS_JOBS = "/api/v2/analytics/users/details/jobs";

describe("users details export jobs", () => {
  const t = useTestApp({ ANALYTICS_JOB_POLL_MS: "500", ANALYTICS_JOB_PAGE: "1" });
  const f = analyticsFixtures(t);
  const inject = injector(() => t.app);

  beforeAll(async () => {
    for (const c of AGENT_DAY_CONVERSATIONS) await f.conversation(c);
    await f.refresh();
  });

  it("extracts every agent's timeline once, as the users details query gives it", async () => {
    const jobId = await submit(inject, { interval: AGENT_DAY }, USERS_JOBS);
    const done = await waitFor(inject, jobId, (s) => s.state === "FULFILLED" || s.state === "FAILED", USERS_JOBS);
    expect(done).toMatchObject({ state: "FULFILLED", rowsWritten: 2, rowsExpected: 2 });
    const pages = await allResults(inject, jobId, 1, USERS_JOBS);
    expect(pages).toHaveLength(2);
    const extracted = pages.flatMap((p) => p.userDetails ?? []);
    const synchronous = (await f.usersDetails({ interval: AGENT_DAY })).json<{ userDetails: unknown[] }>().userDetails;
    expect(extracted).toEqual(synchronous);
  });

  it("applies the state filters and the user filters", async () => {
    const jobId = await submit(
      inject,
      {
        interval: AGENT_DAY,
        order: "desc",
        routingStatusFilters: [{ type: "or", predicates: [{ dimension: "routingStatus", value: "NOT_RESPONDING" }] }],
      },
      USERS_JOBS,
    );
    await waitFor(inject, jobId, (s) => s.state === "FULFILLED", USERS_JOBS);
    const users = (await allResults(inject, jobId, 100, USERS_JOBS)).flatMap((p) => p.userDetails ?? []);
    expect(users.map((u) => u.userId)).toEqual(["ada"]);

    const bo = await submit(
      inject,
      { interval: AGENT_DAY, userFilters: [{ type: "or", predicates: [{ dimension: "userId", value: "bo" }] }] },
      USERS_JOBS,
    );
    expect(await waitFor(inject, bo, (s) => s.state === "FULFILLED", USERS_JOBS)).toMatchObject({ rowsExpected: 1 });
    expect((await allResults(inject, bo, 100, USERS_JOBS)).flatMap((p) => p.userDetails ?? []).map((u) => u.userId)).toEqual([
      "bo",
    ]);
  });

  it("refuses a bad body, naming the field", async () => {
    const res = await inject("POST", USERS_JOBS, {
      interval: AGENT_DAY,
      presenceFilters: [{ type: "or", predicates: [{ dimension: "systemPresence", value: "SLEEPING" }] }],
    });
    expectGenesysError(res, 400, "bad.request", "presenceFilters[0].predicates[0].value");
  });
});
