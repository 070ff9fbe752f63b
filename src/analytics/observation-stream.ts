/**
 * The push side of queue observations: each subscriber (a Server-Sent Events stream) gets
 * its queues' observations when they change, checked once a tick (a second), at most one
 * message a tick. Subscribers asking the same thing of the same database share one query.
 */
import type pg from "pg";
import { queueObservations } from "./agent-service.js";
import type { AnalyticsSettings } from "./settings.js";

interface Subscriber {
  pool: pg.Pool;
  body: unknown;
  key: string;
  last?: string;
  send(json: string): void;
  end(): void;
}

export interface StreamLog {
  warn(object: object, message: string): void;
}

export class ObservationStreams {
  private readonly subscribers = new Set<Subscriber>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private lastWarning = 0;

  constructor(
    private readonly settings: AnalyticsSettings,
    private readonly log: StreamLog,
    private readonly tickMs = 1000,
  ) {}

  get size(): number {
    return this.subscribers.size;
  }

  /** Sends the first observations at once, then each change; returns the unsubscribe. */
  subscribe(pool: pg.Pool, body: unknown, send: (json: string) => void, end: () => void): () => void {
    const subscriber: Subscriber = { pool, body, key: JSON.stringify(body), send, end };
    this.subscribers.add(subscriber);
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), this.tickMs);
      this.timer.unref();
    }
    void this.tick();
    return () => {
      this.subscribers.delete(subscriber);
      if (this.subscribers.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  /** Ends every stream (the server is closing). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const s of this.subscribers) s.end();
    this.subscribers.clear();
  }

  private async tick(): Promise<void> {
    // A slow tick is not overlapped by the next: the next one simply comes later.
    if (this.running) return;
    this.running = true;
    try {
      const answers = new Map<pg.Pool, Map<string, Promise<string>>>();
      for (const s of [...this.subscribers]) {
        let byKey = answers.get(s.pool);
        if (!byKey) answers.set(s.pool, (byKey = new Map<string, Promise<string>>()));
        let answer = byKey.get(s.key);
        if (!answer) {
          answer = queueObservations(s.pool, s.body, this.settings).then((r) => JSON.stringify(r));
          byKey.set(s.key, answer);
        }
        try {
          const json = await answer;
          if (json !== s.last && this.subscribers.has(s)) {
            s.last = json;
            s.send(json);
          }
        } catch (error) {
          if (Date.now() - this.lastWarning > 10_000) {
            this.lastWarning = Date.now();
            this.log.warn({ err: error }, "queue observations for a stream failed; trying again next second");
          }
        }
      }
    } finally {
      this.running = false;
    }
  }
}
