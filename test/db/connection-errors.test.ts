import pg from "pg";
import { describe, expect, it } from "vitest";
import { DatabaseOutage, isConnectionError } from "../../src/db/connection-errors.js";

describe("isConnectionError", () => {
  it.each([
    ["refused", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" })],
    ["admin shutdown", Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" })],
    ["class 08", Object.assign(new Error("connection failure"), { code: "08006" })],
    ["terminated", new Error("Connection terminated unexpectedly")],
    ["connect timeout", new Error("timeout exceeded when trying to connect")],
    ["statement timeout", Object.assign(new Error("canceling statement due to statement timeout"), { code: "57014" })],
    [
      "wrapped (Prisma's adapter)",
      new Error("driver adapter error", { cause: Object.assign(new Error("x"), { code: "ECONNRESET" }) }),
    ],
    ["Prisma Client's P1001 (the control tables)", Object.assign(new Error("Can't reach database server"), { code: "P1001" })],
    ["aggregate", new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })], "x")],
  ])("recognises %s", (_name, error) => {
    expect(isConnectionError(error)).toBe(true);
  });

  it.each([
    ["a unique violation", Object.assign(new Error("duplicate key"), { code: "23505" })],
    ["a bug", new TypeError("x is undefined")],
    ["nothing", undefined],
  ])("does not take %s for one", (_name, error) => {
    expect(isConnectionError(error)).toBe(false);
  });

  it("walks a cycle of causes only so far", () => {
    const a: Error & { cause?: unknown } = new Error("a");
    a.cause = a;
    expect(isConnectionError(a)).toBe(false);
  });
});

describe("DatabaseOutage", () => {
  it("logs one warning per outage and one line when it ends", () => {
    const lines: string[] = [];
    const outage = new DatabaseOutage({ warn: (_o, m) => lines.push(`warn ${m}`), info: (_o, m) => lines.push(`info ${m}`) });
    for (let i = 0; i < 100; i++) outage.failed(new pg.DatabaseError("x", 0, "error"));
    expect(outage.active).toBe(true);
    outage.recovered();
    outage.recovered();
    expect(outage.active).toBe(false);
    expect(lines).toEqual(["warn database unreachable; answering 503 until it is back", "info database reachable again"]);
  });
});
