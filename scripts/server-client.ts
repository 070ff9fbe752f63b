/**
 * What `npm run token` and `npm run admin` share: the running server's address, from the
 * same configuration as `npm start`, and a token for the administrator whose credentials
 * first start wrote under DATA_DIR.
 */
import { readFile } from "node:fs/promises";
import { loadConfig } from "../src/config/config.js";
import { type AdminCredentials, credentialsPath } from "../src/identity/bootstrap.js";

export function serverBase(): string {
  const config = loadConfig();
  if (config.PUBLIC_URL) return config.PUBLIC_URL;
  const host = config.HOST === "0.0.0.0" || config.HOST === "::" ? "127.0.0.1" : config.HOST;
  return `http://${host.includes(":") ? `[${host}]` : host}:${config.PORT}`;
}

export class ClientError extends Error {}

async function credentials(): Promise<AdminCredentials> {
  const file = credentialsPath(loadConfig());
  try {
    return JSON.parse(await readFile(file, "utf8")) as AdminCredentials;
  } catch (error) {
    throw new ClientError(
      `Cannot read the administrator's credentials at ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}). ` +
        "They are written by the first `npm start` with an empty database, with the same DATA_DIR.",
    );
  }
}

export async function adminToken(base = serverBase()): Promise<string> {
  const { tenant_id, client_id, client_secret } = await credentials();
  let response: Response;
  try {
    response = await fetch(`${base}/${tenant_id}/oauth2/v2.0/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id, client_secret, scope: `${base}/.default` }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    throw new ClientError(`The server at ${base} did not answer (${(error as Error).message}); start it with \`npm start\`.`);
  }
  const body = (await response.json()) as { access_token?: string; error_description?: string };
  if (!response.ok || !body.access_token)
    throw new ClientError(`The token endpoint refused: ${body.error_description ?? response.status}`);
  return body.access_token;
}

export async function main(run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    process.stderr.write(
      `${error instanceof ClientError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  }
}
