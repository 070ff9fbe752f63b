/** The service-protection limits themselves, on a clock the tests drive (no waiting). */
import { describe, expect, it } from "vitest";
import {
  DATAVERSE_LIMITS,
  ServiceProtection,
  ServiceProtectionCodes,
  type Admission,
  type ServiceProtectionLimits,
  type ServiceProtectionTicket,
} from "../../src/identity/service-protection.js";

const WIDE: ServiceProtectionLimits = { requests: 1e9, executionMs: 1e12, concurrent: 1e9, windowMs: 300_000 };

function ticketOf(admission: Admission): ServiceProtectionTicket {
  if (!admission.admitted) throw new Error(`refused: ${admission.message}`);
  return admission.ticket;
}

function refusal(admission: Admission) {
  if (admission.admitted) throw new Error("admitted");
  return admission;
}

/** Admits and finishes at once (no execution time), as a quick request. */
function quick(protection: ServiceProtection, key: string, now: number) {
  protection.finish(ticketOf(protection.admit(key, now)), now);
}

describe("the request limit", () => {
  it("admits Dataverse's 6,000 requests and refuses the 6,001st with its code and message", () => {
    const protection = new ServiceProtection(DATAVERSE_LIMITS);
    for (let i = 0; i < 6000; i++) quick(protection, "user", i);
    const refused = refusal(protection.admit("user", 6000));
    expect(refused).toMatchObject({ status: 429, code: "0x80072322" });
    expect(refused.message).toBe("Number of requests exceeded the limit of 6000 over time window of 300 seconds.");
  });

  it("states the configured numbers", () => {
    const protection = new ServiceProtection({ ...WIDE, requests: 3, windowMs: 60_000 });
    for (let i = 0; i < 3; i++) quick(protection, "user", 0);
    expect(refusal(protection.admit("user", 0)).message).toBe(
      "Number of requests exceeded the limit of 3 over time window of 60 seconds.",
    );
  });

  it("gives Retry-After until enough of the window has slid off, and admits when it has", () => {
    // 5 s buckets over 300 s: a bucket leaves the window once all of it is older than 300 s.
    const protection = new ServiceProtection({ ...WIDE, requests: 3 });
    expect(protection.bucketMs).toBe(5000);
    quick(protection, "user", 0);
    quick(protection, "user", 10_000);
    quick(protection, "user", 10_000);

    const first = refusal(protection.admit("user", 20_000));
    // The request at 0 (bucket 0–5 s) leaves at 305 s.
    expect(first.retryAfterSeconds).toBe(285);
    // One second short of it: still refused, and told to wait that second.
    expect(refusal(protection.admit("user", 20_000 + (285 - 1) * 1000)).retryAfterSeconds).toBe(1);
    // Honouring Retry-After gets in.
    quick(protection, "user", 20_000 + 285 * 1000);
    // Now the two at 10 s are next to leave (bucket 10–15 s, at 315 s).
    expect(refusal(protection.admit("user", 306_000)).retryAfterSeconds).toBe(9);
    quick(protection, "user", 315_000);
  });

  it("does not count refused requests toward the window", () => {
    const protection = new ServiceProtection({ ...WIDE, requests: 3 });
    for (let i = 0; i < 3; i++) quick(protection, "user", 0);
    for (let i = 0; i < 50; i++) refusal(protection.admit("user", 100_000 + i));
    // Once the first three have slid off, a full window's worth is admitted again.
    for (let i = 0; i < 3; i++) quick(protection, "user", 305_000);
    expect(refusal(protection.admit("user", 305_000)).code).toBe(ServiceProtectionCodes.requests);
  });

  it("reports what is left for the headers", () => {
    const protection = new ServiceProtection({ ...WIDE, requests: 3, executionMs: 1000 });
    expect(protection.remaining("user", 0)).toEqual({ requests: 3, executionMs: 1000 });
    const ticket = ticketOf(protection.admit("user", 0));
    expect(protection.remaining("user", 0)).toEqual({ requests: 2, executionMs: 1000 });
    protection.finish(ticket, 250);
    expect(protection.remaining("user", 250)).toEqual({ requests: 2, executionMs: 750 });
    expect(protection.remaining("user", 305_000)).toEqual({ requests: 3, executionMs: 1000 });
  });
});

describe("the execution-time limit", () => {
  it("admits while the combined time is at Dataverse's 1,200,000 ms and refuses once past it", () => {
    const protection = new ServiceProtection(DATAVERSE_LIMITS);
    protection.finish(ticketOf(protection.admit("user", 0)), 1_200_000);
    const next = ticketOf(protection.admit("user", 1_200_000));
    protection.finish(next, 1_200_001);
    const refused = refusal(protection.admit("user", 1_200_001));
    expect(refused).toMatchObject({ status: 429, code: "0x80072321" });
    expect(refused.message).toBe(
      "Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds over time window of 300 seconds. " +
        "Decrease number of concurrent requests or reduce the duration of requests and try again later.",
    );
  });

  it("accounts each request's time from admission to finish, charged when it finishes", () => {
    const protection = new ServiceProtection({ ...WIDE, executionMs: 1000 });
    protection.finish(ticketOf(protection.admit("user", 0)), 600);
    protection.finish(ticketOf(protection.admit("user", 10_000)), 10_400);
    // 1,000 ms used: at the limit, not over it.
    const third = ticketOf(protection.admit("user", 10_400));
    protection.finish(third, 10_401);
    const refused = refusal(protection.admit("user", 10_500));
    expect(refused.code).toBe(ServiceProtectionCodes.executionTime);
    expect(refused.message).toContain("exceeded limit of 1,000 milliseconds");
    // Dropping the 600 ms charged at 0.6 s (bucket 0–5 s) suffices: it leaves at 305 s.
    expect(refused.retryAfterSeconds).toBe(Math.ceil((305_000 - 10_500) / 1000));
    quick(protection, "user", 305_000);
  });

  it("counts only requests that finished: one in flight has spent nothing yet", () => {
    const protection = new ServiceProtection({ ...WIDE, executionMs: 1000 });
    ticketOf(protection.admit("user", 0));
    expect(protection.admit("user", 5000).admitted).toBe(true);
  });
});

describe("the concurrency limit", () => {
  it("admits Dataverse's 52 in flight and refuses the 53rd, with Retry-After 1", () => {
    const protection = new ServiceProtection(DATAVERSE_LIMITS);
    for (let i = 0; i < 52; i++) ticketOf(protection.admit("user", 0));
    const refused = refusal(protection.admit("user", 0));
    expect(refused).toMatchObject({ status: 429, code: "0x80072326", retryAfterSeconds: 1 });
    expect(refused.message).toBe("Number of concurrent requests exceeded the limit of 52.");
  });

  it("is released by finish, exactly once however often finish is called", () => {
    const protection = new ServiceProtection({ ...WIDE, concurrent: 2 });
    const a = ticketOf(protection.admit("user", 0));
    ticketOf(protection.admit("user", 0));
    expect(refusal(protection.admit("user", 0)).code).toBe(ServiceProtectionCodes.concurrency);
    protection.finish(a, 10);
    expect(a.finished).toBe(true);
    ticketOf(protection.admit("user", 10));
    protection.finish(a, 20);
    expect(refusal(protection.admit("user", 20)).code).toBe(ServiceProtectionCodes.concurrency);
  });

  it("does not count a request refused for concurrency toward the window", () => {
    const protection = new ServiceProtection({ ...WIDE, requests: 2, concurrent: 1 });
    const a = ticketOf(protection.admit("user", 0));
    refusal(protection.admit("user", 0));
    protection.finish(a, 0);
    quick(protection, "user", 0);
    expect(refusal(protection.admit("user", 0)).code).toBe(ServiceProtectionCodes.requests);
  });

  it("reports the window limit before concurrency, so Retry-After is the longer wait", () => {
    const protection = new ServiceProtection({ ...WIDE, requests: 1, concurrent: 1 });
    ticketOf(protection.admit("user", 0));
    expect(refusal(protection.admit("user", 0)).code).toBe(ServiceProtectionCodes.requests);
  });
});

describe("keys", () => {
  it("are independent", () => {
    const protection = new ServiceProtection({ ...WIDE, requests: 2, concurrent: 1, executionMs: 10 });
    ticketOf(protection.admit("a", 0));
    refusal(protection.admit("a", 0));
    quick(protection, "b", 0);
    protection.finish(ticketOf(protection.admit("c", 0)), 100);
    refusal(protection.admit("c", 100));
    quick(protection, "b", 100);
    expect(protection.remaining("b", 100)).toEqual({ requests: 0, executionMs: 10 });
  });

  it("hold a bounded number of buckets however busy: windowMs / bucketMs + 1", () => {
    const protection = new ServiceProtection(WIDE);
    for (let now = 0; now < 3_000_000; now += 500) quick(protection, "busy", now);
    expect(protection.stats()).toEqual({ keys: 1, buckets: 61 });
    // And still count the whole window: one request every 500 ms over 300 s (+ the bucket in progress).
    expect(WIDE.requests - protection.remaining("busy", 3_000_000 - 500).requests).toBeGreaterThanOrEqual(600);
  });

  it("are forgotten once idle", () => {
    const protection = new ServiceProtection(WIDE);
    for (let i = 0; i < 1000; i++) quick(protection, `user-${i}`, 0);
    expect(protection.stats().keys).toBe(1000);
    // Still inside the window: remembered.
    for (let i = 0; i < 300; i++) quick(protection, "active", 304_999);
    expect(protection.stats().keys).toBe(1001);
    // Out of it: each admit forgets a few.
    for (let i = 0; i < 300; i++) quick(protection, "active", 305_000);
    expect(protection.stats().keys).toBe(1);
  });

  it("stay within the cap for a million distinct principals", () => {
    const protection = new ServiceProtection(DATAVERSE_LIMITS);
    for (let i = 0; i < 1_000_000; i++) quick(protection, `p${i}`, i % 1000);
    expect(protection.stats().keys).toBe(100_000);
    expect(protection.stats().buckets).toBe(100_000);
  });

  it("at the cap, forget an idle key before one with requests in flight", () => {
    const protection = new ServiceProtection({ ...WIDE, concurrent: 1 }, { maxKeys: 6 });
    // More keys in flight than an admit's sweep moves out of the way.
    const inFlight = ["i0", "i1", "i2", "i3", "i4"];
    for (const key of inFlight) ticketOf(protection.admit(key, 0));
    quick(protection, "idle", 0);
    quick(protection, "new", 0);
    expect(protection.stats().keys).toBe(6);
    // Had one been forgotten, its request in flight would no longer count.
    for (const key of inFlight) expect(refusal(protection.admit(key, 0)).code).toBe(ServiceProtectionCodes.concurrency);
    expect(protection.remaining("idle", 0).requests).toBe(WIDE.requests);
  });

  it("reject nonsensical limits", () => {
    expect(() => new ServiceProtection({ ...WIDE, requests: -1 })).toThrow(RangeError);
    expect(() => new ServiceProtection({ ...WIDE, windowMs: 0 })).toThrow(RangeError);
  });
});
