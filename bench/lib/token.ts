/** A token for the administrator that the server's first start wrote to DATA_DIR (the benchmarks' caller). */
import { readFile } from "node:fs/promises";
import path from "node:path";

export async function administratorToken(origin: string, dataDir: string): Promise<string> {
  const credentials = JSON.parse(await readFile(path.join(dataDir, "admin-credentials.json"), "utf8")) as {
    tenant_id: string;
    client_id: string;
    client_secret: string;
  };
  const res = await fetch(`${origin}/${credentials.tenant_id}/oauth2/v2.0/token`, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: credentials.client_id,
      client_secret: credentials.client_secret,
      scope: `${origin}/.default`,
    }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`the token endpoint answered ${res.status}: ${JSON.stringify(body)}`);
  return body.access_token;
}
