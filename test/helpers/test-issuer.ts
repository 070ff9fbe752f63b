/**
 * An external OpenID Connect issuer for tests, on loopback only: node:http on 127.0.0.1,
 * port 0, serving each registered issuer's discovery document
 * (`<issuer>/.well-known/openid-configuration`) and one JWKS (`/keys`) of keys made here
 * with jose. It counts every request, so a test can say what the service fetched and
 * what it did not. Also a silent listener (accepts, never answers) and a closed port, for
 * issuers that cannot be reached.
 */
import { randomUUID } from "node:crypto";
import { type Server, createServer } from "node:http";
import { type AddressInfo, type Socket, createServer as createNetServer } from "node:net";
import { type JWK, type JWTPayload, type CryptoKey, SignJWT, exportJWK, generateKeyPair } from "jose";

export interface IssuerKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface TestIssuer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Every request received, as `GET /path`. */
  requests: string[];
  /**
   * Serves, at `<issuer>/.well-known/openid-configuration`, a discovery document naming
   * `issuer` (exactly as written; or `documentIssuer`, for one that lies) and this server's JWKS.
   */
  addIssuer(issuer: string, documentIssuer?: string): string;
  /** Makes a key; published at once unless `publish` is false. */
  addKey(alg?: string, options?: { kid?: string; publish?: boolean }): Promise<IssuerKey>;
  /** Puts a key (made earlier with publish false) in the JWKS. */
  publish(key: IssuerKey): void;
  /** A JWT signed with `key`: `claims` plus iat, nbf, exp (now + 600 s) and a fresh jti unless given. */
  sign(key: IssuerKey, claims: JWTPayload, header?: Record<string, unknown>): Promise<string>;
  /** Stops listening and drops every open connection; idempotent. */
  close(): Promise<void>;
}

const MAX_REQUESTS_RECORDED = 10_000;

export async function startTestIssuer(): Promise<TestIssuer> {
  const discovery = new Map<string, string>();
  const published: JWK[] = [];
  const requests: string[] = [];
  let origin = "";

  const server: Server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0]!;
    if (requests.length < MAX_REQUESTS_RECORDED) requests.push(`${request.method} ${path}`);
    const send = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    const issuer = discovery.get(path);
    if (request.method === "GET" && issuer !== undefined) {
      return send(200, { issuer, jwks_uri: `${origin}/keys`, id_token_signing_alg_values_supported: ["RS256"] });
    }
    if (request.method === "GET" && path === "/keys") return send(200, { keys: published });
    return send(404, { error: "not_found" });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let closed: Promise<void> | undefined;

  return {
    origin,
    requests,
    addIssuer(issuer, documentIssuer = issuer) {
      discovery.set(new URL(`${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`).pathname, documentIssuer);
      return issuer;
    },
    async addKey(alg = "RS256", { kid = randomUUID(), publish = true } = {}) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      const key: IssuerKey = { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
      if (publish) published.push(key.publicJwk);
      return key;
    },
    publish(key) {
      published.push(key.publicJwk);
    },
    sign(key, claims, header = {}) {
      return signWith(key.privateKey, { alg: key.alg, kid: key.kid, typ: "JWT", ...header }, claims);
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

/** Signs `claims` (iat, nbf, exp = now + 600 s and a jti added unless given) with `privateKey`. */
export function signWith(
  privateKey: CryptoKey | Uint8Array,
  header: Record<string, unknown>,
  claims: JWTPayload,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, nbf: now, exp: now + 600, jti: randomUUID(), ...claims })
    .setProtectedHeader(header as { alg: string })
    .sign(privateKey);
}

/** A loopback listener that accepts connections and never answers (an issuer that hangs). */
export async function startSilentListener(): Promise<{ origin: string; connections(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createNetServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback origin nothing listens on: a port that was just opened and closed again. */
export async function closedLoopbackOrigin(): Promise<string> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
