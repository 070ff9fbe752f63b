/**
 * A `LogDestination` that forwards records to NATS JetStream, one stream per category, as
 * Customer Insights forwards them to the Event Hubs `insight-logs-audit` /
 * `insight-logs-operational` (shared/reference/analytics-and-audit.md B.3). One message per
 * record (its JSON), with the record's eventId as `Nats-Msg-Id`, so a retried `send` is
 * de-duplicated by the stream within its duplicate window.
 */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type StreamInfo,
} from "@nats-io/jetstream";
import { connect, errors, headers, type NatsConnection } from "@nats-io/transport-node";
import { z } from "zod";
import type { LogCategory, LogDestination, SerializedRecord } from "../azure-monitor.js";

/** Publishes awaiting their PubAck at once: enough to pipeline, bounded so a big batch cannot flood the buffer. */
const MAX_IN_FLIGHT = 256;

// Stream names become file and API subject names on the server: no `.`, wildcards, separators or spaces.
const streamName = z
  .string()
  .regex(/^[^.*>/\\\s]+$/, 'must be a JetStream stream name (no ".", "*", ">", "/", "\\" or whitespace)');
const server = z.string().regex(/^(?:(?:nats|tls):\/\/)?[^\s/?#]+$/, 'must be "host:port" or "nats://host:port" (or tls://)');

export const jetStreamSettings = z
  .strictObject({
    servers: z.union([server, z.array(server).min(1, "must list at least one server")], {
      error: (issue) => (issue.input === undefined ? "is required" : 'must be "host:port", "nats://host:port" or a list of them'),
    }),
    streams: z.strictObject({ Audit: streamName.optional(), Operational: streamName.optional() }).optional(),
    subjectPrefix: z
      .string()
      .regex(/^[^.*>\s]+(?:\.[^.*>\s]+)*$/, 'must be dot-separated subject tokens without "*", ">" or whitespace')
      .optional(),
    duplicateWindowSeconds: z.number().int("must be a whole number of seconds").positive("must be positive").optional(),
    /** How long to wait for the connection handshake, a JetStream API reply or a PubAck. */
    timeoutMs: z.number().int().min(100, "must be at least 100").max(120_000, "must be at most 120000").optional(),
    user: z.string().min(1, "must not be empty").optional(),
    pass: z.string().optional(),
    token: z.string().min(1, "must not be empty").optional(),
  })
  .superRefine((settings, context) => {
    if (settings.pass !== undefined && settings.user === undefined) {
      context.addIssue({ code: "custom", path: ["pass"], message: "is only used together with user" });
    }
    if (settings.token !== undefined && settings.user !== undefined) {
      context.addIssue({ code: "custom", path: ["token"], message: "use either token or user/pass, not both" });
    }
  });

export type JetStreamSettings = z.input<typeof jetStreamSettings>;

/** Errors of this destination: they name the servers, stream and subject, never a credential. */
export class JetStreamDestinationError extends Error {
  override name = "JetStreamDestinationError";
}

/** Parses settings into a one-line error that names each bad field (and never echoes a value). */
export function parseJetStreamSettings(input: unknown): z.output<typeof jetStreamSettings> {
  const result = jetStreamSettings.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const field = issue.path.join(".");
    return field ? `${field}: ${issue.message}` : issue.message;
  });
  throw new JetStreamDestinationError(`Invalid JetStream destination settings: ${problems.join("; ")}`);
}

interface Target {
  stream: string;
  subject: string;
}

interface Connected {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export class JetStreamDestination implements LogDestination {
  private readonly servers: string[];
  private readonly targets: Record<LogCategory, Target>;
  private readonly duplicateWindowSeconds: number;
  private readonly timeoutMs: number;
  private readonly auth: { user?: string; pass?: string; token?: string };
  private connection: Promise<Connected> | undefined;
  /** Categories whose stream was found or created, so `send` checks it once, not per batch. */
  private readonly ensured = new Map<LogCategory, Promise<void>>();
  private current: NatsConnection | undefined;
  private disconnected = false;
  private closed = false;

  constructor(settings: JetStreamSettings) {
    const parsed = parseJetStreamSettings(settings);
    this.servers = typeof parsed.servers === "string" ? [parsed.servers] : parsed.servers;
    const prefix = parsed.subjectPrefix ?? "insight-logs";
    this.targets = {
      Audit: { stream: parsed.streams?.Audit ?? "INSIGHT_LOGS_AUDIT", subject: `${prefix}.audit` },
      Operational: { stream: parsed.streams?.Operational ?? "INSIGHT_LOGS_OPERATIONAL", subject: `${prefix}.operational` },
    };
    this.duplicateWindowSeconds = parsed.duplicateWindowSeconds ?? 120;
    this.timeoutMs = parsed.timeoutMs ?? 5_000;
    this.auth = { user: parsed.user, pass: parsed.pass, token: parsed.token };
  }

  /** What this destination writes to, for logs and health output: no credentials. */
  describe() {
    return {
      type: "nats-jetstream" as const,
      servers: this.servers.map(redactUrl),
      streams: { Audit: { ...this.targets.Audit }, Operational: { ...this.targets.Operational } },
      duplicateWindowSeconds: this.duplicateWindowSeconds,
    };
  }

  async send(category: LogCategory, records: readonly SerializedRecord[]): Promise<void> {
    if (records.length === 0) return;
    const { stream, subject } = this.targets[category];
    const missing = records.findIndex((record) => !record.eventId);
    // Without an id the stream cannot drop the repeats a retry makes.
    if (missing >= 0) throw this.error(`the record at index ${missing} for stream ${stream} has no properties.eventId`);

    const { js, jsm } = await this.connected();
    await this.ensureStream(category, jsm);

    let next = 0;
    let acknowledged = 0;
    let failure: unknown;
    const worker = async () => {
      while (failure === undefined && next < records.length) {
        const record = records[next++]!;
        const h = headers();
        h.set("Content-Type", "application/json");
        try {
          // expect.streamName: the server refuses the message unless it lands in our stream.
          await js.publish(subject, record.json, {
            msgID: record.eventId,
            headers: h,
            timeout: this.timeoutMs,
            expect: { streamName: stream },
          });
          acknowledged++;
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(MAX_IN_FLIGHT, records.length) }, worker));
    if (failure === undefined) return;

    // The stream may have been deleted: look it up (and recreate it) again on the retry.
    if (isNoResponders(failure)) this.ensured.delete(category);
    throw this.error(
      `${records.length - acknowledged} of ${records.length} records to stream ${stream} (subject ${subject}) ` +
        `not acknowledged: ${this.reason(failure, subject)}`,
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = this.connection;
    this.connection = undefined;
    const connection = await pending?.catch(() => undefined);
    if (!connection) return;
    // Drain flushes what is buffered, but waits on a server that is gone: bound it, then close.
    const drained = connection.nc.drain().catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise((resolve) => (timer = setTimeout(resolve, this.timeoutMs)))]);
    clearTimeout(timer);
    if (!connection.nc.isClosed()) await connection.nc.close().catch(() => {});
  }

  private connected(): Promise<Connected> {
    if (this.closed) return Promise.reject(this.error("the destination is closed"));
    if (!this.connection) {
      const opening = this.open();
      this.connection = opening;
      // A failed attempt is forgotten so that the next send tries again.
      opening.catch(() => {
        if (this.connection === opening) this.connection = undefined;
      });
    }
    return this.connection;
  }

  private async open(): Promise<Connected> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: this.servers,
        name: "cif-analytics-server audit log",
        timeout: this.timeoutMs,
        // Keep reconnecting through an outage; sends meanwhile fail by their ack timeout.
        maxReconnectAttempts: -1,
        // Otherwise every publish builds two Error objects with stack traces in advance
        // (most of the client's cost under load); our errors name the stream and subject.
        noAsyncTraces: true,
        ...this.auth,
      });
    } catch (error) {
      throw this.error(`cannot connect: ${this.reason(error)}`);
    }
    this.disconnected = false;
    void this.watch(nc);
    try {
      const jsm = await jetstreamManager(nc, { timeout: this.timeoutMs });
      return { nc, js: jetstream(nc, { timeout: this.timeoutMs }), jsm };
    } catch (error) {
      await nc.close().catch(() => {});
      throw this.error(`JetStream is not available: ${this.reason(error)}`);
    }
  }

  /** Tracks the connection's state for error messages, and forgets it once it is closed for good. */
  private async watch(nc: NatsConnection): Promise<void> {
    this.current = nc;
    void nc.closed().then(() => {
      if (this.current === nc) {
        this.current = undefined;
        this.connection = undefined;
      }
    });
    for await (const status of nc.status()) {
      if (status.type === "disconnect") this.disconnected = true;
      if (status.type === "reconnect") this.disconnected = false;
    }
  }

  private ensureStream(category: LogCategory, jsm: JetStreamManager): Promise<void> {
    let ensuring = this.ensured.get(category);
    if (!ensuring) {
      ensuring = this.findOrCreate(this.targets[category], jsm);
      this.ensured.set(category, ensuring);
      ensuring.catch(() => this.ensured.delete(category));
    }
    return ensuring;
  }

  private async findOrCreate({ stream, subject }: Target, jsm: JetStreamManager): Promise<void> {
    let info = await this.streamInfo(stream, jsm);
    if (!info) {
      try {
        await jsm.streams.add({
          name: stream,
          subjects: [subject],
          duplicate_window: this.duplicateWindowSeconds * 1_000_000_000, // nanoseconds
        });
        return;
      } catch (error) {
        // Another instance may have created it meanwhile: then check that one.
        info = await this.streamInfo(stream, jsm);
        if (!info) throw this.error(`cannot create stream ${stream} for subject ${subject}: ${this.reason(error)}`);
      }
    }
    // An existing stream is the operator's: leave its config alone, but it must capture our subject.
    const subjects = info.config.subjects ?? [];
    if (!subjects.some((pattern) => subjectMatches(pattern, subject))) {
      throw this.error(
        `stream ${stream} exists but does not capture subject ${subject} (its subjects: ${subjects.join(", ") || "none"}); ` +
          `add the subject to the stream or configure another stream name`,
      );
    }
  }

  private async streamInfo(stream: string, jsm: JetStreamManager): Promise<StreamInfo | undefined> {
    try {
      return await jsm.streams.info(stream);
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return undefined;
      throw this.error(`cannot look up stream ${stream}: ${this.reason(error)}`);
    }
  }

  private reason(error: unknown, subject?: string): string {
    if (error instanceof errors.TimeoutError) {
      const state = this.disconnected ? " (the connection to NATS is lost; the client is reconnecting)" : "";
      return `no reply within ${this.timeoutMs} ms${state}`;
    }
    if (isNoResponders(error) && subject) {
      return `no responders: no stream captures subject ${subject}, or JetStream is not enabled`;
    }
    if (error instanceof errors.ClosedConnectionError) return "the NATS connection is closed";
    if (error instanceof errors.ConnectionError && error.cause instanceof Error) {
      return `${error.message} (${error.cause.message})`;
    }
    return error instanceof Error ? error.message : String(error);
  }

  /** Prefixes the servers and strips every credential from the message. */
  private error(message: string): JetStreamDestinationError {
    let text = `JetStream destination (${this.servers.map(redactUrl).join(", ")}): ${message}`;
    for (const secret of [this.auth.pass, this.auth.token]) {
      if (secret) text = text.split(secret).join("***");
    }
    return new JetStreamDestinationError(text);
  }
}

/** A publish nobody answered: the client reports it as "jetstream is not enabled", with the cause. */
function isNoResponders(error: unknown): boolean {
  return error instanceof Error && error.cause instanceof errors.RequestError && error.cause.isNoResponders();
}

/** `nats://user:pass@host:4222` → `nats://***@host:4222`. */
function redactUrl(server: string): string {
  return server.replace(/^((?:[a-z]+:\/\/)?)[^@/]*@/i, "$1***@");
}

/** Whether a stream subject (with `*` / `>` wildcards) captures a literal subject. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const wanted = pattern.split(".");
  const tokens = subject.split(".");
  for (const [i, token] of wanted.entries()) {
    if (token === ">") return tokens.length > i;
    if (i >= tokens.length || (token !== "*" && token !== tokens[i])) return false;
  }
  return wanted.length === tokens.length;
}
