/**
 * The signing keys of a configured external OpenID Connect issuer. jose's createRemoteJWKSet
 * throws once its cache is older than cacheMaxAge and the issuer does not answer; we need
 * the opposite (issue 11: an issuer outage leaves cached keys working), so this keeps the
 * last key set that was fetched and only ever adds fresher ones:
 * - refreshed in the background-free way: on use, when older than `maxAgeMs`; a failed
 *   refresh keeps the old set;
 * - an unknown `kid` (key rotation) refetches at once, at most once per `cooldownMs`;
 * - keys come only from the configured JWKS URL, or the `jwks_uri` of the configured
 *   issuer's own discovery document, never from a URL a token names.
 */
import { type JSONWebKeySet, type JWSHeaderParameters, type JWTVerifyGetKey, createLocalJWKSet, errors } from "jose";

export interface ExternalKeyOptions {
  issuer: string;
  jwksUrl?: string;
  maxAgeMs?: number;
  cooldownMs?: number;
  timeoutMs?: number;
  /** For tests: the clock. */
  now?: () => number;
}

/** Largest discovery or JWKS document read, in bytes. */
const MAX_DOCUMENT_BYTES = 512 * 1024;

async function fetchJson(url: string, timeoutMs: number): Promise<unknown> {
  const response = await fetch(url, {
    signal: AbortSignal.timeout(timeoutMs),
    redirect: "error",
    headers: { accept: "application/json" },
  });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  const text = await response.text();
  if (text.length > MAX_DOCUMENT_BYTES) throw new Error(`${url} sent more than ${MAX_DOCUMENT_BYTES} bytes`);
  return JSON.parse(text) as unknown;
}

export class ExternalIssuerKeys {
  private keys?: ReturnType<typeof createLocalJWKSet>;
  private kids = new Set<string>();
  private fetchedAt = 0;
  private attemptedAt = -Infinity;
  private loading?: Promise<void>;
  private jwksUrl?: string;
  private readonly maxAgeMs: number;
  private readonly cooldownMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly options: ExternalKeyOptions) {
    this.jwksUrl = options.jwksUrl;
    this.maxAgeMs = options.maxAgeMs ?? 10 * 60_000;
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.now = options.now ?? Date.now;
  }

  /** jose's key resolver. */
  readonly getKey: JWTVerifyGetKey = async (header: JWSHeaderParameters, token) => {
    const stale = this.now() - this.fetchedAt > this.maxAgeMs;
    const unknownKid = header.kid !== undefined && !this.kids.has(header.kid);
    if (!this.keys || ((stale || unknownKid) && this.now() - this.attemptedAt >= this.cooldownMs)) {
      await this.refresh().catch((error: unknown) => {
        // Keep the keys we have; with none at all, the token cannot be checked.
        if (!this.keys)
          throw new errors.JWKSNoMatchingKey(`the issuer's keys could not be fetched (${(error as Error).message})`);
      });
    }
    if (!this.keys) throw new errors.JWKSNoMatchingKey();
    return this.keys(header, token);
  };

  private refresh(): Promise<void> {
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    this.attemptedAt = this.now();
    if (!this.jwksUrl) {
      const discovery = (await fetchJson(
        `${this.options.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`,
        this.timeoutMs,
      )) as { issuer?: unknown; jwks_uri?: unknown };
      // The document must be the configured issuer's own (OpenID Connect Discovery §4.3).
      if (discovery.issuer !== this.options.issuer || typeof discovery.jwks_uri !== "string") {
        throw new Error("the discovery document does not name the configured issuer and a jwks_uri");
      }
      this.jwksUrl = discovery.jwks_uri;
    }
    const jwks = (await fetchJson(this.jwksUrl, this.timeoutMs)) as JSONWebKeySet;
    if (!Array.isArray(jwks?.keys)) throw new Error("the JWKS document has no keys array");
    this.keys = createLocalJWKSet(jwks);
    this.kids = new Set(jwks.keys.flatMap((key) => (typeof key.kid === "string" ? [key.kid] : [])));
    this.fetchedAt = this.now();
  }
}
