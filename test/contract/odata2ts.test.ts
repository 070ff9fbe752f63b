/**
 * The contract with a client that `odata2ts` (v0.34, a third-party generator) writes from
 * this service's own `$metadata`: the metadata is read from the running server and the
 * client generated from it when the test runs (offline; into test/artifacts/, not
 * committed), so it is always the client of the metadata served today. Over loopback with
 * a bearer token, through @odata2ts/http-client-fetch: create (also through a navigation
 * property), query with options, update, the generated navigation methods, delete.
 */
import { testDataDir } from "../helpers/identity.js";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { promisify } from "node:util";
import { FetchClient } from "@odata2ts/http-client-fetch";
import { beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_KPI_EVENT_DEFINITIONS } from "../../src/model/tables.js";
import { useTestApp } from "../helpers/app.js";
import { listenWithWebApi } from "../helpers/web-api.js";

type Row = Record<string, unknown>;
const SESSION_STARTED = SYSTEM_KPI_EVENT_DEFINITIONS.find((d) => d.name === "SessionStarted")!.id;
const ROOT = path.resolve(import.meta.dirname, "../..");
const OUT = path.join(ROOT, "test/artifacts/odata2ts");

/** The few members of the generated service this test calls (the generated .d.ts has them all, typed). */
interface Collection {
  create(row: Row): Promise<{ status: number; data: Row }>;
  query(
    build?: (builder: Builder, q: Record<string, Field>) => void,
  ): Promise<{ data: { value: Row[]; "@odata.count"?: number } }>;
}
interface Entity {
  query(build?: (builder: Builder, q: Record<string, Field>) => void): Promise<{ status: number; data: Row }>;
  patch(row: Row): Promise<unknown>;
  delete(): Promise<unknown>;
  [navigation: string]: unknown;
}
interface Builder {
  select(...names: string[]): Builder;
  filter(...expressions: unknown[]): Builder;
  orderBy(...expressions: unknown[]): Builder;
  top(n: number): Builder;
  count(): Builder;
  expanding(name: string, build: (builder: Builder) => void): Builder;
}
interface Field {
  eq(value: unknown): unknown;
  desc(): unknown;
  asc(): unknown;
}
type Service = Record<string, (id?: string) => Collection & Entity>;

describe("an odata2ts-generated client against the emulator", () => {
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir() });
  let service: Service;
  const conversationId = `o2-${randomUUID()}`;
  let providerId: string;
  let conversationRowId: string;

  beforeAll(async () => {
    const { serverUrl, onTokenRefresh } = await listenWithWebApi(t);
    const authorization = `Bearer ${await onTokenRefresh!()}`;
    // The client is generated from the $metadata the server serves.
    const metadata = await fetch(`${serverUrl}/api/data/v9.2/$metadata`, { headers: { authorization } });
    expect(metadata.status).toBe(200);
    await rm(OUT, { recursive: true, force: true });
    await mkdir(OUT, { recursive: true });
    await writeFile(path.join(OUT, "metadata.xml"), await metadata.text());
    const cli = path.join(ROOT, "node_modules/@odata2ts/odata2ts/lib/run-cli.js");
    const generated = path.join(OUT, "generated");
    await promisify(execFile)(
      process.execPath,
      [cli, "-s", path.join(OUT, "metadata.xml"), "-o", generated, "-m", "service", "-name", "Cif"],
      // From the project root: the generator compiles with its tsconfig.json.
      { cwd: ROOT, timeout: 120_000 },
    );
    // The generator writes CommonJS; the project's package.json says "module".
    await writeFile(path.join(generated, "package.json"), JSON.stringify({ type: "commonjs" }));
    const { CifService } = createRequire(import.meta.url)(path.join(generated, "CifService.js")) as {
      CifService: new (client: FetchClient, root: string) => Service;
    };
    service = new CifService(new FetchClient({ headers: { authorization }, cache: "default" }), `${serverUrl}/api/data/v9.2`);

    // Dataverse answers a create with 204 and OData-EntityId, so the tests read rows back with queries.
    await service.msdyn_ciproviders!().create({ msdyn_name: "odata2ts" });
  }, 180_000);

  it("creates rows, updates one, and reads it back", async () => {
    const providers = service.msdyn_ciproviders!();
    const { data } = await providers.query((b, q) => b.select("msdyn_ciproviderid").filter(q.msdyn_name!.eq("odata2ts")));
    providerId = data.value[0]!.msdyn_ciproviderid as string;
    await service.msdyn_ciproviders!(providerId).patch({ msdyn_enableanalytics: true });
    const read = await service.msdyn_ciproviders!(providerId).query((b) => b.select("msdyn_name", "msdyn_enableanalytics"));
    expect(read.data).toMatchObject({ msdyn_name: "odata2ts", msdyn_enableanalytics: true });

    await service.msdyn_conversationsdata!().create({
      msdyn_conversationid: conversationId,
      msdyn_providerid: providerId,
      msdyn_channel: "chat",
    });
    const [conversation] = (
      await service.msdyn_conversationsdata!().query((b, q) =>
        b.select("msdyn_conversationdataid").filter(q.msdyn_conversationid!.eq(conversationId)),
      )
    ).data.value;
    conversationRowId = conversation!.msdyn_conversationdataid as string;
  });

  it("creates a child through a generated navigation method, and reads it back through another", async () => {
    const conversation = service.msdyn_conversationsdata!(conversationRowId);
    const sessions = (conversation.msdyn_sessions as () => Collection)();
    await sessions.create({ msdyn_providersessionid: "s-1", msdyn_queuename: "q1" });
    const listed = await sessions.query((b) =>
      b.select("msdyn_providersessionid", "msdyn_conversationid", "msdyn_sessiondataid"),
    );
    expect(listed.data.value).toEqual([
      expect.objectContaining({ msdyn_providersessionid: "s-1", msdyn_conversationid: conversationId }),
    ]);
    // Single-valued: from the session back to its conversation.
    const sessionId = listed.data.value[0]!.msdyn_sessiondataid as string;
    const parent = await (service.msdyn_sessionsdata!(sessionId).msdyn_conversation as () => Entity)().query((b) =>
      b.select("msdyn_conversationid"),
    );
    expect(parent.data).toMatchObject({ msdyn_conversationid: conversationId });
  });

  it("queries with $filter, $select, $orderby, $top, $count and $expand", async () => {
    const events = service.msdyn_kpieventsdata!();
    for (let n = 1; n <= 3; n++) {
      await events.create({
        msdyn_conversationid: conversationId,
        msdyn_providersessionid: "s-1",
        msdyn_kpieventid: SESSION_STARTED,
        importsequencenumber: n,
      });
    }
    const page = await events.query((b, q) =>
      b
        .select("importsequencenumber", "msdyn_kpieventname")
        .filter(q.msdyn_conversationid!.eq(conversationId))
        .orderBy(q.importsequencenumber!.desc())
        .top(2)
        .count(),
    );
    expect(page.data.value.map((r) => r.importsequencenumber)).toEqual([3, 2]);
    expect(page.data["@odata.count"]).toBe(3);
    const expanded = await service.msdyn_conversationsdata!().query((b, q) =>
      b
        .select("msdyn_conversationid")
        .filter(q.msdyn_conversationid!.eq(conversationId))
        .expanding("msdyn_sessions", (e) => e.select("msdyn_providersessionid")),
    );
    expect(expanded.data.value[0]).toMatchObject({
      msdyn_sessions: [expect.objectContaining({ msdyn_providersessionid: "s-1" })],
    });
  });

  it("deletes a conversation, and its sessions and events go with it", async () => {
    await service.msdyn_conversationsdata!(conversationRowId).delete();
    const left = await service.msdyn_kpieventsdata!().query((b, q) =>
      b.filter(q.msdyn_conversationid!.eq(conversationId)).count(),
    );
    expect(left.data.value).toEqual([]);
    expect(left.data["@odata.count"]).toBe(0);
  });
});
