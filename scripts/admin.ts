/**
 * `npm run admin -- <command>`: manages principals and organisations through the running
 * server's admin API (src/routes/admin.ts), as the administrator made on first start.
 *
 *   list                                                  the organisation's principals
 *   create-app --name <n> --roles <r,…> [--provider <id>]  an application user; prints its secret once
 *   create-user --name <n> --issuer <iss> --object-id <oid> --roles <r,…>   a user of an external issuer
 *   disable <id> | enable <id>                            stop or allow a principal's tokens
 *   rotate-secret <id>                                    a new secret (the old one stops working); printed once
 *   list-orgs                                             the organisations
 *   create-org --name <n> [--url <u>] [--issuer <iss> [--audience <a>] [--jwks-url <u>]]
 *
 * Roles: Administrator, Analyst, ChannelProvider (with --provider <msdyn_ciproviderid>).
 */
import { parseArgs } from "node:util";
import { ClientError, adminToken, main, serverBase } from "./server-client.js";

const USAGE =
  "usage: npm run admin -- list | create-app | create-user | disable <id> | enable <id> | rotate-secret <id> | list-orgs | create-org (see scripts/admin.ts)";

await main(async () => {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      name: { type: "string" },
      roles: { type: "string" },
      provider: { type: "string" },
      issuer: { type: "string" },
      "object-id": { type: "string" },
      url: { type: "string" },
      audience: { type: "string" },
      "jwks-url": { type: "string" },
    },
  });
  const [command, id] = positionals;
  const base = serverBase();
  const token = await adminToken(base);
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}/api/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    if (!response.ok) {
      const message = (JSON.parse(text || "{}") as { error?: { message?: string } }).error?.message ?? text;
      throw new ClientError(`${method} /api/admin${path} answered ${response.status}: ${message}`);
    }
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  const roles = values.roles?.split(",").map((r) => r.trim());
  const need = (value: string | undefined, what: string) => {
    if (!value) throw new ClientError(`${command} needs ${what}. ${USAGE}`);
    return value;
  };
  const print = (value: unknown): void => {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  };
  switch (command) {
    case "list":
      return print(await call("GET", "/principals"));
    case "create-app":
      return print(
        await call("POST", "/principals", {
          name: need(values.name, "--name"),
          roles: need(roles?.join(), "--roles") && roles,
          providerId: values.provider,
        }),
      );
    case "create-user":
      return print(
        await call("POST", "/principals", {
          name: need(values.name, "--name"),
          roles: need(roles?.join(), "--roles") && roles,
          issuer: need(values.issuer, "--issuer"),
          objectId: need(values["object-id"], "--object-id"),
        }),
      );
    case "disable":
    case "enable":
      await call("POST", `/principals/${need(id, "a principal id")}/${command}`);
      return print({ id, disabled: command === "disable" });
    case "rotate-secret":
      return print(await call("POST", `/principals/${need(id, "a principal id")}/secret`));
    case "list-orgs":
      return print(await call("GET", "/organizations"));
    case "create-org":
      return print(
        await call("POST", "/organizations", {
          name: need(values.name, "--name"),
          url: values.url,
          issuer: values.issuer,
          audience: values.audience,
          jwksUrl: values["jwks-url"],
        }),
      );
    default:
      throw new ClientError(USAGE);
  }
});
