/** The service-protection plugin on a minimal Fastify app: 429s, headers, concurrency, aborts. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import type { ServiceProtectionLimits } from "../../src/identity/service-protection.js";
import { BURST_REMAINING_HEADER, TIME_REMAINING_HEADER, serviceProtectionPlugin } from "../../src/plugins/service-protection.js";

/** What the authentication hook sets; declared here, as this test registers no authentication. */
type WithIdentity = { identity?: { principalId: string } };

const LIMITS: ServiceProtectionLimits = { requests: 3, executionMs: 1_000_000, concurrent: 10, windowMs: 300_000 };

/** Slow requests wait on `release()`; `entered(n)` resolves once n of them are in their handler. */
function slowRoute() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let count = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  return {
    release: () => release(),
    entered: (n: number) => new Promise<void>((resolve) => (count >= n ? resolve() : waiters.push({ n, resolve }))),
    handler: async () => {
      count++;
      for (const waiter of waiters.filter((w) => count >= w.n)) waiter.resolve();
      await gate;
      return { slow: true };
    },
  };
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function build(options: { limits: ServiceProtectionLimits | undefined; now?: () => number }) {
  const app = Fastify();
  apps.push(app);
  const clock = { ms: 0 };
  const slow = slowRoute();
  // Stands in for authentication, which the app registers before this plugin.
  app.addHook("onRequest", async (request) => {
    const principal = request.headers["x-test-principal"];
    (request as unknown as WithIdentity).identity = typeof principal === "string" ? { principalId: principal } : undefined;
  });
  await app.register(serviceProtectionPlugin, {
    limits: options.limits,
    keyOf: (request) => (request as unknown as WithIdentity).identity?.principalId,
    now: options.now ?? (() => clock.ms),
  });
  app.get("/fast", async () => ({ ok: true }));
  app.get("/slow", slow.handler);
  // Takes 400 ms of the test's clock.
  app.get("/work", async () => {
    clock.ms += 400;
    return { worked: true };
  });
  await app.ready();
  return { app, clock, slow };
}

const as = (principal: string | undefined, url = "/fast") => ({
  method: "GET" as const,
  url,
  headers: principal === undefined ? {} : { "x-test-principal": principal },
});

describe("service protection plugin", () => {
  it("answers the request past the limit 429 with Dataverse's body, content type and Retry-After", async () => {
    const { app, clock } = await build({ limits: LIMITS });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await app.inject(as("alice"));
      expect(response.statusCode).toBe(200);
      remaining.push(String(response.headers[BURST_REMAINING_HEADER]));
      expect(response.headers[TIME_REMAINING_HEADER]).toBe("1000000");
    }
    expect(remaining).toEqual(["2", "1", "0"]);

    clock.ms = 1000;
    const refused = await app.inject(as("alice"));
    expect(refused.statusCode).toBe(429);
    expect(refused.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(refused.json()).toEqual({
      error: { code: "0x80072322", message: "Number of requests exceeded the limit of 3 over time window of 300 seconds." },
    });
    // The three at 0 s leave the window with their 5 s bucket, at 305 s.
    expect(refused.headers["retry-after"]).toBe("304");
    expect(refused.headers[BURST_REMAINING_HEADER]).toBeUndefined();

    clock.ms = 1000 + 304 * 1000;
    expect((await app.inject(as("alice"))).statusCode).toBe(200);
  });

  it("gives an integer Retry-After and integer headers on the real clock", async () => {
    const { app } = await build({ limits: LIMITS, now: () => performance.now() });
    for (let i = 0; i < 3; i++) {
      const response = await app.inject(as("alice"));
      expect(response.headers[TIME_REMAINING_HEADER]).toMatch(/^\d+$/);
    }
    const refused = await app.inject(as("alice"));
    expect(refused.statusCode).toBe(429);
    expect(refused.headers["retry-after"]).toMatch(/^\d+$/);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(300);
    expect(Number(refused.headers["retry-after"])).toBeLessThanOrEqual(305);
  });

  it("leaves another principal unaffected", async () => {
    const { app } = await build({ limits: LIMITS });
    for (let i = 0; i < 3; i++) await app.inject(as("alice"));
    expect((await app.inject(as("alice"))).statusCode).toBe(429);
    const bob = await app.inject(as("bob"));
    expect(bob.statusCode).toBe(200);
    expect(bob.headers[BURST_REMAINING_HEADER]).toBe("2");
  });

  it("does not limit a request keyOf cannot name", async () => {
    const { app } = await build({ limits: { ...LIMITS, requests: 1 } });
    for (let i = 0; i < 5; i++) {
      const response = await app.inject(as(undefined));
      expect(response.statusCode).toBe(200);
      expect(response.headers[BURST_REMAINING_HEADER]).toBeUndefined();
    }
  });

  it("accounts execution time and refuses once the combined time is past the limit", async () => {
    const { app } = await build({ limits: { ...LIMITS, requests: 100, executionMs: 1000 } });
    const left: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await app.inject(as("alice", "/work"));
      expect(response.statusCode).toBe(200);
      left.push(String(response.headers[TIME_REMAINING_HEADER]));
    }
    // Each header is written before its own request has finished.
    expect(left).toEqual(["1000", "600", "200"]);
    const refused = await app.inject(as("alice"));
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.code).toBe("0x80072321");
    expect(refused.json().error.message).toContain("exceeded limit of 1,000 milliseconds over time window of 300 seconds.");
  });

  it("refuses requests beyond the concurrency limit with Retry-After 1, and admits again once they finish", async () => {
    const { app, slow } = await build({ limits: { ...LIMITS, requests: 100, concurrent: 2 } });
    const inFlight = [app.inject(as("alice", "/slow")), app.inject(as("alice", "/slow"))];
    await slow.entered(2);

    const refused = await app.inject(as("alice"));
    expect(refused.statusCode).toBe(429);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(refused.json()).toEqual({
      error: { code: "0x80072326", message: "Number of concurrent requests exceeded the limit of 2." },
    });
    expect((await app.inject(as("bob"))).statusCode).toBe(200);

    slow.release();
    expect((await Promise.all(inFlight)).map((r) => r.statusCode)).toEqual([200, 200]);
    expect((await app.inject(as("alice"))).statusCode).toBe(200);
  });

  it("releases each request's concurrency once, though both onResponse and 'close' see it end", async () => {
    const { app, slow } = await build({ limits: { ...LIMITS, requests: 100, concurrent: 2 } });
    const first = app.inject(as("alice", "/slow"));
    await slow.entered(1);
    for (let i = 0; i < 3; i++) expect((await app.inject(as("alice"))).statusCode).toBe(200);
    const second = app.inject(as("alice", "/slow"));
    await slow.entered(2);
    // Two still in flight: a released-twice fast request would have freed a slot here.
    expect((await app.inject(as("alice"))).statusCode).toBe(429);
    slow.release();
    await Promise.all([first, second]);
  });

  it("releases the concurrency of a request whose client went away before its answer", async () => {
    const { app, slow } = await build({ limits: { ...LIMITS, requests: 100, concurrent: 1 } });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const aborted = http.get({ host: "127.0.0.1", port, path: "/slow", headers: { "x-test-principal": "alice" } });
    aborted.on("error", () => {});
    await slow.entered(1);
    aborted.destroy();

    // The handler is still waiting, so onResponse has not run: only 'close' can have released it.
    let status = 0;
    for (let attempt = 0; attempt < 100 && status !== 200; attempt++) {
      const response = await fetch(`http://127.0.0.1:${port}/fast`, { headers: { "x-test-principal": "alice" } });
      status = response.status;
      await response.arrayBuffer();
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(status).toBe(200);
    slow.release();
  });

  it("does nothing without limits", async () => {
    const { app } = await build({ limits: undefined });
    expect(app.hasPlugin("service-protection")).toBe(true);
    for (let i = 0; i < 10; i++) {
      const response = await app.inject(as("alice"));
      expect(response.statusCode).toBe(200);
      expect(response.headers[BURST_REMAINING_HEADER]).toBeUndefined();
      expect(response.headers[TIME_REMAINING_HEADER]).toBeUndefined();
    }
  });
});
