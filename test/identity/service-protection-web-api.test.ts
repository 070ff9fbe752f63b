/**
 * Dataverse's service-protection limits as a client sees them: a 429 that
 * `dynamics-web-api` turns into an error with the status, the Dataverse code and the
 * Retry-After header, per principal, and the x-ms-ratelimit headers on what is admitted.
 */
import { describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { bearer, testDataDir, tokenFor } from "../helpers/identity.js";
import { listenWithWebApi } from "../helpers/web-api.js";

interface WebApiError {
  status: number;
  code: string;
  message: string;
  headers: Record<string, string>;
}

describe("service-protection limits through dynamics-web-api", () => {
  const t = useTestApp({
    AUTH_MODE: "builtin",
    DATA_DIR: testDataDir(),
    SERVICE_PROTECTION: "dataverse",
    SERVICE_PROTECTION_REQUESTS: "5",
  });

  it("answers the request beyond the window's limit with 429, Retry-After and 0x80072322, and only for that principal", async () => {
    const first = await listenWithWebApi(t);
    for (let i = 0; i < 5; i++) await first.api.callFunction("WhoAmI");
    const refused = (await first.api.callFunction("WhoAmI").catch((error: unknown) => error)) as WebApiError;
    expect(refused.status).toBe(429);
    expect(refused.code).toBe("0x80072322");
    expect(refused.message).toBe("Number of requests exceeded the limit of 5 over time window of 300 seconds.");
    expect(refused.headers["retry-after"]).toMatch(/^\d+$/);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    expect(Number(refused.headers["retry-after"])).toBeLessThanOrEqual(305);

    // Another principal has a window of its own, and is told what is left of it.
    const other = await tokenFor(t.app, ["Analyst"]);
    const admitted = await t.app.inject({ method: "GET", url: "/api/data/v9.2/WhoAmI()", headers: bearer(other) });
    expect(admitted.statusCode).toBe(200);
    expect(admitted.headers["x-ms-ratelimit-burst-remaining-xrm-requests"]).toBe("4");
    expect(Number(admitted.headers["x-ms-ratelimit-time-remaining-xrm-requests"])).toBeGreaterThan(1_000_000);
  });
});
