/**
 * A `LogDestination` that writes records to append blobs in an Azure Storage account, laid
 * out as Azure Monitor lays out resource logs (shared/reference/analytics-and-audit.md B.3,
 * B.4): one container per category, one blob per resource and hour of receipt,
 * `resourceId=<RESOURCE ID>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json`, JSON Lines.
 *
 * Limits, and what this destination does about them:
 * - An append block holds at most 4 MiB (the limit of every service version; newer ones
 *   allow 100 MiB, Azurite too), so a send is packed into as few blocks as fit, each
 *   ending at a line end: a reader never sees half a record at a block boundary.
 * - A blob holds at most 50,000 committed blocks. Packing keeps it to one block per send
 *   for all but huge sends; when the hour's blob has no room left for a send, the send is
 *   rejected before anything is written, so the caller's retry lands in the next hour's
 *   blob (the hour is the time of receipt, so that is where Azure Monitor would put it
 *   too). A caller that batches its records never gets there: 50,000 sends an hour is 14 a
 *   second.
 * - A record longer than 4 MiB cannot be stored without splitting it: such a send is
 *   rejected with `retryable: false`, and nothing of it is written.
 */
import { BlobServiceClient, type ContainerClient, RestError, type StoragePipelineOptions } from "@azure/storage-blob";
import { z } from "zod";
import type { LogCategory, LogDestination, SerializedRecord } from "../azure-monitor.js";

/** Azure's limit on one Append Block request (service versions before 2022-11-02). */
export const MAX_APPEND_BLOCK_BYTES = 4 * 1024 * 1024;
/** Azure's limit on the committed blocks of one append blob. */
export const MAX_BLOCKS_PER_BLOB = 50_000;

/** 3–63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit. */
const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;

const containerName = (field: string, fallback: string) =>
  z
    .string({ error: `${field}: must be a string` })
    .regex(CONTAINER_NAME, `${field}: must be an Azure container name (3–63 of a-z, 0-9 and single hyphens)`)
    .default(fallback);

const positiveInt = (field: string, max: number) =>
  z
    .number({ error: `${field}: must be a number` })
    .int(`${field}: must be a whole number`)
    .min(1, `${field}: must be at least 1`)
    .max(max, `${field}: must be at most ${max}`)
    .optional();

export const azureStorageSettings = z.strictObject({
  /** Account key (`AccountName=…;AccountKey=…`), SAS (`BlobEndpoint=…;SharedAccessSignature=…`) or `UseDevelopmentStorage=true`. */
  connectionString: z
    .string({ error: "connectionString: required, an Azure Storage connection string" })
    .refine(isConnectionString, {
      error:
        "connectionString: must hold AccountName and AccountKey, or BlobEndpoint and SharedAccessSignature, or UseDevelopmentStorage=true",
    }),
  containers: z
    .strictObject({
      Audit: containerName("containers.Audit", "insight-logs-audit"),
      Operational: containerName("containers.Operational", "insight-logs-operational"),
    })
    .default({ Audit: "insight-logs-audit", Operational: "insight-logs-operational" }),
  /** The ARM id of the emitting resource, `/SUBSCRIPTIONS/…/INSTANCES/{id}`; upper-cased in blob names. */
  resourceId: z
    .string({ error: "resourceId: required, the ARM id of the resource, as /SUBSCRIPTIONS/…" })
    .regex(/^(\/[^/\s?#\\]+)+$/, "resourceId: must be an ARM id: /-separated segments, no spaces, ? # or \\"),
  /** The SDK's retries of one request (its defaults: 4 tries, 4 s doubling up to 120 s). */
  retry: z
    .strictObject({
      maxTries: positiveInt("retry.maxTries", 20),
      /** Sent to the service as its `timeout`; the SDK does not abort a try on its own. */
      tryTimeoutMs: positiveInt("retry.tryTimeoutMs", 3_600_000),
      retryDelayMs: positiveInt("retry.retryDelayMs", 600_000),
    })
    .optional(),
  /** Each storage call, its retries included, is abandoned after this long: a silent endpoint cannot hang a send. */
  timeoutMs: positiveInt("timeoutMs", 3_600_000).default(60_000),
});

export type AzureStorageSettings = z.input<typeof azureStorageSettings>;

/** For tests: the clock that picks the hour's blob, and a smaller block budget. */
export interface AzureStorageOptions {
  now?: () => Date;
  maxBlocksPerBlob?: number;
}

/** Why a send failed. `retryable: false` means the same records will fail again. */
export class AzureStorageError extends Error {
  override name = "AzureStorageError";
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly statusCode?: number,
    readonly code?: string,
  ) {
    super(redact(message));
  }
}

/** Validates settings; the message names each bad field and never echoes the connection string. */
export function parseAzureStorageSettings(input: unknown): z.output<typeof azureStorageSettings> {
  const result = azureStorageSettings.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) =>
    // Custom messages start with their field; zod's own ("expected number…") get it here.
    issue.path.length && !issue.message.startsWith(`${issue.path.join(".")}:`)
      ? `${issue.path.join(".")}: ${issue.message}`
      : issue.message,
  );
  throw new Error(`Invalid Azure Storage settings: ${problems.join("; ")}`);
}

/** `resourceId=<ID>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json` of the hour (UTC) that holds `at`. */
export function blobNameFor(resourceId: string, at: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const hour = `y=${at.getUTCFullYear()}/m=${two(at.getUTCMonth() + 1)}/d=${two(at.getUTCDate())}/h=${two(at.getUTCHours())}`;
  return `resourceId=${resourceId.toUpperCase()}/${hour}/m=00/PT1H.json`;
}

export class AzureStorageDestination implements LogDestination {
  readonly #settings: z.output<typeof azureStorageSettings>;
  readonly #service: BlobServiceClient;
  readonly #now: () => Date;
  readonly #maxBlocks: number;
  /** Containers known to exist, and the blob last written per category with its block count. */
  readonly #containers = new Map<string, ContainerClient>();
  readonly #current = new Map<LogCategory, { blobName: string; blocks: number }>();
  /** Sends run one at a time, so that records reach each blob in the order they were sent. */
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(settings: AzureStorageSettings, options: AzureStorageOptions = {}) {
    this.#settings = parseAzureStorageSettings(settings);
    this.#now = options.now ?? (() => new Date());
    this.#maxBlocks = options.maxBlocksPerBlob ?? MAX_BLOCKS_PER_BLOB;
    const retry = this.#settings.retry;
    const pipeline: StoragePipelineOptions = {
      retryOptions: retry && {
        maxTries: retry.maxTries,
        tryTimeoutInMs: retry.tryTimeoutMs,
        retryDelayInMs: retry.retryDelayMs,
      },
    };
    try {
      this.#service = BlobServiceClient.fromConnectionString(this.#settings.connectionString, pipeline);
    } catch (error) {
      // No `cause`: what the SDK throws may quote the connection string to whoever logs it.
      // eslint-disable-next-line preserve-caught-error
      throw new Error(`Invalid Azure Storage settings: connectionString: ${redact(messageOf(error))}`);
    }
  }

  /** What `send` writes to, for listings: no key, no SAS. */
  describe() {
    const url = new URL(this.#service.url);
    return {
      destination: "azure-storage" as const,
      account: this.#service.accountName,
      endpoint: `${url.origin}${url.pathname}`,
      containers: { ...this.#settings.containers },
      resourceId: this.#settings.resourceId,
    };
  }

  send(category: LogCategory, records: readonly SerializedRecord[]): Promise<void> {
    if (this.#closed) return Promise.reject(new AzureStorageError("Azure Storage destination is closed", false));
    const blobName = blobNameFor(this.#settings.resourceId, this.#now());
    const run = () => this.#write(category, blobName, records);
    const done = this.#tail.then(run, run);
    this.#tail = done.catch(() => {});
    return done;
  }

  /** Lets the sends already made finish; later ones are refused. The SDK holds only idle, unref'd sockets. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
  }

  async #write(category: LogCategory, blobName: string, records: readonly SerializedRecord[]): Promise<void> {
    if (records.length === 0) return;
    const containerName = this.#settings.containers[category];
    const where = `${containerName}/${blobName}`;
    const blocks = packBlocks(records, where);
    const signal = () => AbortSignal.timeout(this.#settings.timeoutMs);
    try {
      let container = this.#containers.get(containerName);
      if (!container) {
        container = this.#service.getContainerClient(containerName);
        await container.createIfNotExists({ abortSignal: signal() });
        this.#containers.set(containerName, container);
      }
      const blob = container.getAppendBlobClient(blobName);
      let state = this.#current.get(category);
      if (state?.blobName !== blobName) {
        const created = await blob.createIfNotExists({
          abortSignal: signal(),
          blobHTTPHeaders: { blobContentType: "application/json" },
        });
        // A blob made before (by this process earlier, or another) tells its own count.
        const committed = created.succeeded
          ? 0
          : ((await blob.getProperties({ abortSignal: signal() })).blobCommittedBlockCount ?? 0);
        state = { blobName, blocks: committed };
        this.#current.set(category, state);
      }
      if (state.blocks + blocks.length > this.#maxBlocks) {
        throw new AzureStorageError(
          `Azure Storage: ${where} is full (${state.blocks} of ${this.#maxBlocks} blocks; these ${records.length} records need ${blocks.length}); retried, they go to the next hour's blob`,
          true,
        );
      }
      for (const block of blocks) {
        const appended = await blob.appendBlock(block, block.length, { abortSignal: signal() });
        state.blocks = appended.blobCommittedBlockCount ?? state.blocks + 1;
      }
    } catch (error) {
      // What was known about the container and blob may be stale now (deleted, half written): ask again next time.
      this.#containers.delete(containerName);
      this.#current.delete(category);
      if (error instanceof AzureStorageError) throw error;
      throw failure(error, records.length, where, this.#settings.timeoutMs);
    }
  }
}

/** JSON Lines in blocks of at most 4 MiB, each ending at a line end. */
function packBlocks(records: readonly SerializedRecord[], where: string): Buffer[] {
  const blocks: Buffer[] = [];
  let lines: string[] = [];
  let bytes = 0;
  records.forEach((record, index) => {
    const line = `${record.json}\n`;
    const size = Buffer.byteLength(line);
    if (size > MAX_APPEND_BLOCK_BYTES) {
      throw new AzureStorageError(
        `Azure Storage: cannot store record ${index} (eventId ${record.eventId}) in ${where}: it is ${size} bytes, over the ${MAX_APPEND_BLOCK_BYTES}-byte append-block limit`,
        false,
      );
    }
    if (bytes + size > MAX_APPEND_BLOCK_BYTES) {
      blocks.push(Buffer.from(lines.join("")));
      lines = [];
      bytes = 0;
    }
    lines.push(line);
    bytes += size;
  });
  if (lines.length) blocks.push(Buffer.from(lines.join("")));
  return blocks;
}

/** An error that says where and why, without the SDK's request (its URL may carry a SAS). */
function failure(error: unknown, count: number, where: string, timeoutMs: number): AzureStorageError {
  const prefix = `Azure Storage: could not store ${count} records in ${where}`;
  if (error instanceof Error && error.name === "AbortError") {
    return new AzureStorageError(`${prefix}: no answer within ${timeoutMs} ms`, true);
  }
  if (error instanceof RestError) {
    const status = error.statusCode ? `HTTP ${error.statusCode}` : "no response";
    const code = error.code ? ` ${error.code}` : "";
    // A hint only: no answer, timeouts, throttling, conflicts and 5xx pass by themselves; a 403 needs a fixed key first.
    const retryable = !error.statusCode || [408, 409, 429].includes(error.statusCode) || error.statusCode >= 500;
    return new AzureStorageError(
      `${prefix}: ${status}${code}: ${firstLine(error.message)}`,
      retryable,
      error.statusCode,
      error.code,
    );
  }
  return new AzureStorageError(`${prefix}: ${firstLine(messageOf(error))}`, true);
}

function isConnectionString(value: string): boolean {
  const parts = new Map<string, string>();
  for (const part of value.split(";")) {
    const at = part.indexOf("=");
    if (at > 0) parts.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  const has = (key: string) => Boolean(parts.get(key));
  return (
    parts.get("usedevelopmentstorage") === "true" ||
    (has("accountname") && has("accountkey")) ||
    (has("blobendpoint") && has("sharedaccesssignature"))
  );
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));
const firstLine = (text: string) => text.split("\n", 1)[0]!.trim();

/** Belt and braces: no account key or SAS signature leaves this file in a message. */
function redact(text: string): string {
  return text.replace(/(AccountKey=)[^;\s]*/gi, "$1***").replace(/((?:^|[?&;\s])sig=)[^&;\s]*/gi, "$1***");
}
