import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { BoundedClient, poolOptions } from "../src/db/database.js";

describe("configuration", () => {
  it("has defaults for everything", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ PORT: 3000, HOST: "127.0.0.1", LOG_LEVEL: "info", BODY_LIMIT: 10 * 1024 * 1024 });
    expect(config.DATABASE_URL).toBeUndefined();
  });

  it("sizes the pool for the machine: twice its cores", () => {
    expect(loadConfig({}).DB_POOL_SIZE).toBe(2 * availableParallelism());
    expect(loadConfig({ DB_POOL_SIZE: "7", INGEST_BATCHES_IN_FLIGHT: "3" })).toMatchObject({
      DB_POOL_SIZE: 7,
      INGEST_BATCHES_IN_FLIGHT: 3,
    });
  });

  it("reads and coerces the environment, treating empty values as unset", () => {
    const config = loadConfig({
      PORT: "8080",
      HOST: "0.0.0.0",
      DATABASE_URL: "postgresql://u:p@db:5432/x",
      LOG_LEVEL: "debug",
      BODY_LIMIT: "1024",
      DATA_DIR: "",
    });
    expect(config).toMatchObject({ PORT: 8080, HOST: "0.0.0.0", LOG_LEVEL: "debug", BODY_LIMIT: 1024, DATA_DIR: ".data" });
  });

  it.each([
    [{ PORT: "abc" }, /^Invalid configuration: PORT: .*\(got "abc"\)$/],
    [{ PORT: "70000" }, /PORT: .*\(got "70000"\)/],
    [{ LOG_LEVEL: "loud" }, /LOG_LEVEL: .*\(got "loud"\)/],
    [{ BODY_LIMIT: "-1" }, /BODY_LIMIT: .*\(got "-1"\)/],
    [{ CALLER_USER_ID: "bob" }, /CALLER_USER_ID: must be a GUID/],
    [{ INGEST_BATCHES_IN_FLIGHT: "0" }, /INGEST_BATCHES_IN_FLIGHT: .*\(got "0"\)/],
    [{ CORS_ORIGINS: "localhost:5173" }, /CORS_ORIGINS: must be origins/],
  ])("names the bad variable in one line: %o", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    try {
      loadConfig(env);
    } catch (error) {
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain("\n");
    }
  });

  it("authenticates with the built-in issuer by default, and refuses AUTH_MODE=none unless HOST is loopback", () => {
    expect(loadConfig({}).AUTH_MODE).toBe("builtin");
    for (const host of ["127.0.0.1", "127.8.9.10", "localhost", "::1"]) {
      expect(loadConfig({ AUTH_MODE: "none", HOST: host }).AUTH_MODE).toBe("none");
    }
    for (const host of ["0.0.0.0", "192.0.2.1", "::"]) {
      expect(() => loadConfig({ AUTH_MODE: "none", HOST: host })).toThrow(
        /AUTH_MODE: "none" .* refused unless HOST is a loopback address/,
      );
    }
  });

  it("needs OIDC_ISSUER for AUTH_MODE=oidc, and only asymmetric algorithms", () => {
    expect(() => loadConfig({ AUTH_MODE: "oidc" })).toThrow(/OIDC_ISSUER: required when AUTH_MODE is oidc/);
    expect(loadConfig({ AUTH_MODE: "oidc", OIDC_ISSUER: "https://issuer.example/v2.0" }).OIDC_ALGORITHMS).toEqual(["RS256"]);
    expect(() => loadConfig({ OIDC_ALGORITHMS: "HS256" })).toThrow(/OIDC_ALGORITHMS: must be asymmetric/);
  });

  it("reads CORS_ORIGINS as a list of origins, none by default", () => {
    expect(loadConfig({}).CORS_ORIGINS).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: "http://localhost:5173, https://app.example:8443" }).CORS_ORIGINS).toEqual([
      "http://localhost:5173",
      "https://app.example:8443",
    ]);
    expect(loadConfig({ CORS_ORIGINS: "*" }).CORS_ORIGINS).toEqual(["*"]);
  });

  it("bounds every statement's answer on the client too: statement_timeout + 5 s unless DB_QUERY_TIMEOUT_MS says, never at or below statement_timeout", () => {
    const options = (env: Record<string, string>) => poolOptions("postgresql://x@127.0.0.1/db", loadConfig(env));
    expect(options({})).toMatchObject({ statement_timeout: 30_000, query_timeout: 35_000, Client: BoundedClient });
    expect(options({ DB_STATEMENT_TIMEOUT_MS: "2000", DB_QUERY_TIMEOUT_MS: "9000" })).toMatchObject({ query_timeout: 9000 });
    // No statement_timeout (long exports): no client bound either, unless one is asked for.
    expect(options({ DB_STATEMENT_TIMEOUT_MS: "0" }).query_timeout).toBeUndefined();
    expect(() => loadConfig({ DB_STATEMENT_TIMEOUT_MS: "30000", DB_QUERY_TIMEOUT_MS: "30000" })).toThrow(
      /DB_QUERY_TIMEOUT_MS: must be longer than DB_STATEMENT_TIMEOUT_MS \(30000\).*\(got 30000\)/,
    );
    expect(() => loadConfig({ DB_STATEMENT_TIMEOUT_MS: "0", DB_QUERY_TIMEOUT_MS: "5000" })).toThrow(
      /DB_QUERY_TIMEOUT_MS: must be longer than DB_STATEMENT_TIMEOUT_MS \(0, none\)/,
    );
  });

  it("does not echo a bad DATABASE_URL, which may hold a password", () => {
    expect(() => loadConfig({ DATABASE_URL: "mysql://user:secret@host/db" })).toThrow(
      /^Invalid configuration: DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL$/,
    );
  });
});
