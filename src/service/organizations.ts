/**
 * The organisations and their databases (issue 11): a database per organisation, as
 * Dataverse has one per environment, so no query of one organisation can reach another's
 * rows whatever its SQL says. The default organisation's records are in the main
 * database; each other organisation's database is on the same server, made and migrated
 * when the organisation is created, its pool opened on first use and closed when idle.
 */
import { randomUUID } from "node:crypto";
import { LRUCache } from "lru-cache";
import pg from "pg";
import { RecordService } from "../channel-analytics/records.js";
import type { Config } from "../config/config.js";
import { RowAdmission } from "../db/admission.js";
import { type Database, createDatabaseIfMissing, poolOptions, withDatabaseName } from "../db/database.js";
import { applyMigrations } from "../db/migrations.js";
import {
  type ExternalIssuer,
  ORGANIZATION_NAME,
  type Organization,
  normaliseUrl,
  toOrganization,
} from "../identity/organizations.js";
import type { ControlStore } from "../identity/store/control-store.js";
import { ODataError, badRequest } from "../odata/errors.js";

/** One organisation's database as the request pipeline uses it. */
export interface OrganizationDatabase {
  pool: pg.Pool;
  records: RecordService;
}

interface OpenDatabase extends OrganizationDatabase {
  idleTimer?: NodeJS.Timeout;
  lastUsed: number;
}

export interface NewOrganization {
  name: string;
  url?: string;
  external?: ExternalIssuer;
}

export class OrganizationDirectory {
  private readonly found = new LRUCache<string, { organization: Organization | null }>({ max: 10_000, ttl: 30_000 });
  private readonly databases = new Map<string, Promise<OpenDatabase>>();
  /** The databases whose pools are open now, for background work that must not open more. */
  private readonly opened = new Map<string, OpenDatabase>();
  private readonly main: OpenDatabase;
  /** Rows of bulk writes in flight, over every organisation: they share the database server and this process. */
  private readonly rowAdmission: RowAdmission;
  private closed = false;

  constructor(
    private readonly store: ControlStore,
    private readonly db: Database,
    private readonly config: Config,
  ) {
    this.rowAdmission = new RowAdmission(config.MAX_ROWS_IN_FLIGHT);
    this.main = { pool: db.pool, records: this.recordService(db.pool), lastUsed: 0 };
  }

  private recordService(pool: pg.Pool): RecordService {
    return new RecordService(pool, {
      batchesInFlight: this.config.INGEST_BATCHES_IN_FLIGHT,
      maxQueued: this.config.INGEST_MAX_QUEUED_ROWS,
      rowAdmission: this.rowAdmission,
    });
  }

  /**
   * The organisation a request is for: by the path prefix's name when it came through one,
   * else by its URL (scheme and host), else the default organisation.
   */
  async resolve(url: string, prefixName?: string): Promise<Organization | undefined> {
    const key = prefixName ? `name\n${prefixName}` : `url\n${url}`;
    const cached = this.found.get(key);
    if (cached) return cached.organization ?? undefined;
    const row = prefixName
      ? await this.store.organizationByName(prefixName)
      : ((await this.store.organizationByUrl(normaliseUrl(url))) ?? (await this.store.defaultOrganization()));
    const organization = row ? toOrganization(row) : null;
    this.found.set(key, { organization });
    return organization ?? undefined;
  }

  /** An organisation by its id (its `tid`), or undefined. */
  async byId(id: string): Promise<Organization | undefined> {
    const key = `id\n${id}`;
    const cached = this.found.get(key);
    if (cached) return cached.organization ?? undefined;
    const row = await this.store.organizationById(id);
    const organization = row ? toOrganization(row) : null;
    this.found.set(key, { organization });
    return organization ?? undefined;
  }

  /** Every organisation, the default one included. */
  async list(): Promise<Organization[]> {
    return (await this.store.listOrganizations()).map(toOrganization);
  }

  async defaultOrganization(): Promise<Organization> {
    const row = await this.store.defaultOrganization();
    if (!row) throw new Error("the default organisation has not been created");
    return toOrganization(row);
  }

  /**
   * The organisation's database, its pool opened on first use; a pool with nothing to do
   * for ORGANIZATION_POOL_IDLE_MINUTES is closed (and reopened by the next request).
   */
  async databaseOf(organization: Organization): Promise<OrganizationDatabase> {
    if (!organization.databaseName) return this.main;
    const database = await this.open(organization.databaseName);
    database.lastUsed = Date.now();
    return database;
  }

  private open(name: string): Promise<OpenDatabase> {
    // A pool opened after close() would be one nobody ends.
    if (this.closed) return Promise.reject(new Error(`the organisation directory is closed (database ${name})`));
    let opening = this.databases.get(name);
    if (!opening) {
      opening = (async () => {
        const pool = new pg.Pool(poolOptions(withDatabaseName(this.db.url, name), this.config));
        // As the main pool: a connection the server closes is reported, not fatal.
        pool.on("error", (error) => this.db.outage.failed(error));
        const database: OpenDatabase = { pool, records: this.recordService(pool), lastUsed: Date.now() };
        const idleMs = this.config.ORGANIZATION_POOL_IDLE_MINUTES * 60_000;
        database.idleTimer = setInterval(
          () => {
            const busy = pool.waitingCount > 0 || pool.idleCount < pool.totalCount;
            if (busy || Date.now() - database.lastUsed < idleMs) return;
            clearInterval(database.idleTimer);
            this.databases.delete(name);
            this.opened.delete(name);
            void pool.end();
          },
          Math.min(idleMs, 60_000),
        );
        database.idleTimer.unref();
        this.opened.set(name, database);
        return database;
      })();
      this.databases.set(name, opening);
    }
    return opening;
  }

  /** The pools open now (the main one first), without marking them used. */
  openPools(): pg.Pool[] {
    return [this.main.pool, ...[...this.opened.values()].map((d) => d.pool)];
  }

  /** Creates an organisation: its database, migrated, then its row (so a half-made one is never found). */
  async create(input: NewOrganization): Promise<Organization> {
    if (!ORGANIZATION_NAME.test(input.name)) {
      throw badRequest(
        `name: '${input.name.slice(0, 64)}' is not a valid organisation name (lower-case letters, digits and '-', 2 to 40, starting with a letter).`,
      );
    }
    const url = input.url === undefined ? undefined : normaliseUrl(input.url);
    if (await this.store.organizationByName(input.name)) {
      throw new ODataError(412, "0x80040237", `An organization named '${input.name}' already exists.`);
    }
    if (url && (await this.store.organizationByUrl(url))) {
      throw new ODataError(412, "0x80040237", `An organization with the URL '${url}' already exists.`);
    }
    const mainName = decodeURIComponent(new URL(this.db.url).pathname.slice(1));
    const databaseName = `${mainName}_org_${input.name.replaceAll("-", "_")}`.slice(0, 63);
    await createDatabaseIfMissing(this.db.url, databaseName);
    const pool = new pg.Pool({ ...poolOptions(withDatabaseName(this.db.url, databaseName), this.config), max: 1 });
    try {
      await applyMigrations(pool);
    } finally {
      await pool.end();
    }
    const row = await this.store.createOrganization({
      id: randomUUID(),
      name: input.name,
      url: url ?? null,
      databaseName,
      businessUnitId: randomUUID(),
      oidcIssuer: input.external?.issuer ?? null,
      oidcAudience: input.external?.audience ?? null,
      oidcJwksUrl: input.external?.jwksUrl ?? null,
      oidcAlgorithms: [...(input.external?.algorithms ?? ["RS256"])],
    });
    this.found.clear();
    return toOrganization(row);
  }

  async close(): Promise<void> {
    this.closed = true;
    const open = await Promise.all(this.databases.values());
    this.databases.clear();
    this.opened.clear();
    await Promise.all(
      open.map((database) => {
        clearInterval(database.idleTimer);
        return database.pool.end();
      }),
    );
  }
}
