/**
 * Dataverse's service-protection API limits, per principal: over a sliding window (300 s),
 * at most `requests` requests and `executionMs` combined execution time, and at any moment
 * at most `concurrent` requests in flight. Pure (the clock is passed in); the Fastify side is
 * src/plugins/service-protection.ts.
 *
 * Not @fastify/rate-limit: it counts requests in a fixed window only, with no notion of
 * execution time or of requests in flight, which are two of the three limits here.
 *
 * The window is a queue of buckets (windowMs / 60 wide by default, 5 s for 300 s): per key at
 * most windowMs / bucketMs + 1 buckets, however busy the key. A bucket is forgotten only once
 * all of it has left the window (at start + bucketMs + windowMs), so nothing is forgotten
 * early: no true 300 s window ever holds more than the limits, at the cost of holding a
 * request up to one bucket (5 s) longer than Dataverse would.
 *
 * A refused request counts toward nothing: a client that retries too early is not pushed
 * further back, and a refusal costs us no execution time worth accounting.
 *
 * Keys are bounded: a key with nothing left in its window and nothing in flight holds no
 * information and is forgotten (a few per admit, from the least recently used end); beyond
 * `maxKeys` the least recently used key with nothing in flight goes (one in flight only if
 * every key has a request in flight), so a million principals cost no more than `maxKeys`
 * of them: at worst maxKeys × 61 buckets, typically one or two each.
 */

export interface ServiceProtectionLimits {
  /** Requests admitted per window. */
  requests: number;
  /** Combined execution time (ms) of the requests finished in the window. */
  executionMs: number;
  /** Requests in flight at once. */
  concurrent: number;
  windowMs: number;
}

/** Dataverse's own numbers (Microsoft's "Service protection API limits"). */
export const DATAVERSE_LIMITS: ServiceProtectionLimits = {
  requests: 6000,
  executionMs: 1_200_000,
  concurrent: 52,
  windowMs: 300_000,
};

export const ServiceProtectionCodes = {
  requests: "0x80072322",
  executionTime: "0x80072321",
  concurrency: "0x80072326",
} as const;

export interface ServiceProtectionOptions {
  /** Width of a window bucket; default windowMs / 60. */
  bucketMs?: number;
  /** Most keys remembered at once; default 100,000. */
  maxKeys?: number;
}

export type Admission =
  | { admitted: true; ticket: ServiceProtectionTicket }
  | { admitted: false; status: 429; code: string; message: string; retryAfterSeconds: number };

interface Bucket {
  start: number;
  requests: number;
  executionMs: number;
}

interface KeyState {
  key: string;
  /**
   * Neighbours in recency order. An intrusive list rather than re-inserting into the Map:
   * a Map's front deletions leave holes that every walk from its start steps over again.
   */
  older: KeyState | undefined;
  newer: KeyState | undefined;
  /** Oldest first; only buckets that saw a request, so a quiet key holds one or two. */
  buckets: Bucket[];
  requests: number;
  executionMs: number;
  inFlight: number;
}

/** One admitted request; `finish` it exactly once (again is a no-op). */
export interface ServiceProtectionTicket {
  readonly key: string;
  readonly startedAt: number;
  readonly finished: boolean;
}

class Ticket implements ServiceProtectionTicket {
  finished = false;
  constructor(
    readonly key: string,
    readonly state: KeyState,
    readonly startedAt: number,
  ) {}
}

/** Idle keys swept per admit: keeps every admit O(1) while idle keys still drain steadily. */
const SWEEP_PER_ADMIT = 4;

const thousands = (n: number) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

export class ServiceProtection {
  readonly limits: ServiceProtectionLimits;
  readonly bucketMs: number;
  readonly maxKeys: number;
  readonly #keys = new Map<string, KeyState>();
  /** Least and most recently used ends of the recency list. */
  #oldest: KeyState | undefined;
  #newest: KeyState | undefined;

  constructor(limits: ServiceProtectionLimits, options: ServiceProtectionOptions = {}) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isFinite(value) || value < 0) throw new RangeError(`Service protection: ${name} must be a number >= 0.`);
    }
    if (limits.windowMs <= 0) throw new RangeError("Service protection: windowMs must be > 0.");
    this.limits = { ...limits };
    this.bucketMs = Math.max(1, Math.floor(options.bucketMs ?? Math.ceil(limits.windowMs / 60)));
    this.maxKeys = Math.max(1, Math.floor(options.maxKeys ?? 100_000));
  }

  admit(key: string, now: number): Admission {
    this.#sweep(now);
    let state = this.#keys.get(key);
    if (state) this.#unlink(state);
    else {
      this.#makeRoom();
      state = { key, older: undefined, newer: undefined, buckets: [], requests: 0, executionMs: 0, inFlight: 0 };
      this.#keys.set(key, state);
    }
    this.#append(state);
    this.#trim(state, now);

    const { limits } = this;
    const windowSeconds = limits.windowMs / 1000;
    // Window limits first: their Retry-After is the longer one, so a client honouring it
    // is not refused again straight away by the other.
    if (state.requests >= limits.requests) {
      return this.#refuse(
        ServiceProtectionCodes.requests,
        `Number of requests exceeded the limit of ${limits.requests} over time window of ${windowSeconds} seconds.`,
        this.#slideUntil(state, now, (left) => left.requests < limits.requests),
      );
    }
    if (state.executionMs > limits.executionMs) {
      return this.#refuse(
        ServiceProtectionCodes.executionTime,
        `Combined execution time of incoming requests exceeded limit of ${thousands(limits.executionMs)} milliseconds ` +
          `over time window of ${windowSeconds} seconds. ` +
          "Decrease number of concurrent requests or reduce the duration of requests and try again later.",
        this.#slideUntil(state, now, (left) => left.executionMs <= limits.executionMs),
      );
    }
    if (state.inFlight >= limits.concurrent) {
      return this.#refuse(
        ServiceProtectionCodes.concurrency,
        `Number of concurrent requests exceeded the limit of ${limits.concurrent}.`,
        1,
      );
    }
    this.#bucketAt(state, now).requests++;
    state.requests++;
    state.inFlight++;
    return { admitted: true, ticket: new Ticket(key, state, now) };
  }

  /** Records the request's execution time (now - admission) and releases its concurrency. */
  finish(ticket: ServiceProtectionTicket, now: number): void {
    if (!(ticket instanceof Ticket) || ticket.finished) return;
    ticket.finished = true;
    const { state } = ticket;
    state.inFlight = Math.max(0, state.inFlight - 1);
    // The key was forgotten meanwhile (only when maxKeys keys were all in flight): nothing to record.
    if (this.#keys.get(ticket.key) !== state) return;
    const elapsed = Math.max(0, now - ticket.startedAt);
    this.#trim(state, now);
    // Charged when spent: the time counts against the window that follows it.
    this.#bucketAt(state, now).executionMs += elapsed;
    state.executionMs += elapsed;
  }

  /** What is left in the key's window (for the x-ms-ratelimit-* headers). */
  remaining(key: string, now: number): { requests: number; executionMs: number } {
    const state = this.#keys.get(key);
    if (state) this.#trim(state, now);
    return {
      requests: Math.max(0, this.limits.requests - (state?.requests ?? 0)),
      executionMs: Math.max(0, this.limits.executionMs - (state?.executionMs ?? 0)),
    };
  }

  /** Keys remembered and buckets held in all (to watch memory). */
  stats(): { keys: number; buckets: number } {
    let buckets = 0;
    for (const state of this.#keys.values()) buckets += state.buckets.length;
    return { keys: this.#keys.size, buckets };
  }

  #refuse(code: string, message: string, retryAfterSeconds: number): Admission {
    return { admitted: false, status: 429, code, message, retryAfterSeconds };
  }

  /** Drops the buckets wholly out of the window, oldest first. */
  #trim(state: KeyState, now: number) {
    const { buckets } = state;
    let drop = 0;
    for (const bucket of buckets) {
      if (bucket.start + this.bucketMs + this.limits.windowMs > now) break;
      state.requests -= bucket.requests;
      state.executionMs -= bucket.executionMs;
      drop++;
    }
    if (drop) buckets.splice(0, drop);
  }

  /** The bucket `now` falls in, appended if new; a clock gone backwards reuses the newest. */
  #bucketAt(state: KeyState, now: number): Bucket {
    const start = Math.floor(now / this.bucketMs) * this.bucketMs;
    const newest = state.buckets.at(-1);
    if (newest && newest.start >= start) return newest;
    const bucket = { start, requests: 0, executionMs: 0 };
    state.buckets.push(bucket);
    return bucket;
  }

  /** Seconds until enough old buckets have slid off for `ok` to hold (at least 1). */
  #slideUntil(state: KeyState, now: number, ok: (left: { requests: number; executionMs: number }) => boolean) {
    const left = { requests: state.requests, executionMs: state.executionMs };
    for (const bucket of state.buckets) {
      left.requests -= bucket.requests;
      left.executionMs -= bucket.executionMs;
      if (ok(left)) return Math.max(1, Math.ceil((bucket.start + this.bucketMs + this.limits.windowMs - now) / 1000));
    }
    // Unreachable with limits > 0 (an empty window passes); a zero limit refuses for a whole window.
    return Math.max(1, Math.ceil((this.limits.windowMs + this.bucketMs) / 1000));
  }

  #idle(state: KeyState, now: number) {
    if (state.inFlight > 0) return false;
    this.#trim(state, now);
    return state.buckets.length === 0;
  }

  /** Forgets a few idle keys from the least recently used end. */
  #sweep(now: number) {
    for (let i = 0; i < SWEEP_PER_ADMIT; i++) {
      const state = this.#oldest;
      if (!state) return;
      if (this.#idle(state, now)) this.#forget(state);
      else if (state.inFlight > 0 && state !== this.#newest) {
        // A long request must not shelter the idle keys behind it: move it to the recent end.
        this.#unlink(state);
        this.#append(state);
      } else return;
    }
  }

  /** At maxKeys, forgets the least recently used key not in flight (the oldest, if all are). */
  #makeRoom() {
    if (this.#keys.size < this.maxKeys) return;
    let victim = this.#oldest;
    // Walks past keys in flight only, so at most as far as there are requests in flight.
    while (victim && victim.inFlight > 0) victim = victim.newer;
    victim ??= this.#oldest;
    if (victim) this.#forget(victim);
  }

  #forget(state: KeyState) {
    this.#unlink(state);
    this.#keys.delete(state.key);
  }

  #unlink(state: KeyState) {
    if (state.older) state.older.newer = state.newer;
    else this.#oldest = state.newer;
    if (state.newer) state.newer.older = state.older;
    else this.#newest = state.older;
    state.older = state.newer = undefined;
  }

  #append(state: KeyState) {
    state.older = this.#newest;
    if (this.#newest) this.#newest.newer = state;
    else this.#oldest = state;
    this.#newest = state;
  }
}
