/** First start: the default organisation and an administrator whose secret goes only to an owner-only file. */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { type AdminCredentials, bootstrapIdentity } from "../../src/identity/bootstrap.js";
import { ControlStore } from "../../src/identity/store/control-store.js";
import { verifySecret } from "../../src/identity/secrets.js";
import { useTestApp } from "../helpers/app.js";
import { testDataDir } from "../helpers/identity.js";

describe("first start", () => {
  // The app's own start made the default organisation; the test empties the control tables to see a first start.
  const t = useTestApp({ AUTH_MODE: "none" });

  it("makes the default organisation and an administrator, writes its secret to an owner-only file and logs only the path", async () => {
    await t.db.pool.query("TRUNCATE cif_control.organization CASCADE");
    const dataDir = testDataDir();
    const config = loadConfig({ DATA_DIR: dataDir, DATABASE_URL: t.testDb.url });
    const lines: string[] = [];
    const log = {
      info: (o: object, m?: string) => lines.push(JSON.stringify({ o, m })),
      warn: (o: object, m?: string) => lines.push(JSON.stringify({ o, m })),
    };
    const store = new ControlStore(t.db.pool);
    const organization = await bootstrapIdentity(store, config, log);

    expect(organization).toMatchObject({ id: config.ORGANIZATION_ID, isDefault: true, name: "default" });
    const file = path.join(dataDir, "admin-credentials.json");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const credentials = JSON.parse(await readFile(file, "utf8")) as AdminCredentials;
    expect(credentials.tenant_id).toBe(organization.id);
    const principal = await store.principalByClientId(credentials.client_id);
    expect(principal).toMatchObject({ roles: ["Administrator"], kind: "application", organizationId: organization.id });
    // Stored only as a salted hash that the secret verifies against.
    expect(principal!.secrets).toHaveLength(1);
    expect(principal!.secrets[0]!.hash).not.toContain(credentials.client_secret);
    expect(await verifySecret(credentials.client_secret, principal!.secrets[0]!.hash)).toBe(true);
    expect(lines.join("\n")).toContain(file);
    expect(lines.join("\n")).not.toContain(credentials.client_secret);

    // A second start finds it and makes nothing more.
    const again = await bootstrapIdentity(store, loadConfig({ DATA_DIR: testDataDir(), DATABASE_URL: t.testDb.url }), log);
    expect(again.id).toBe(organization.id);
    expect(await store.listPrincipals(organization.id)).toHaveLength(1);
  });
});
