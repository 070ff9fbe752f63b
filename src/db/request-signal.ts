/**
 * The current HTTP request's AbortSignal, aborted when its client goes away before the
 * answer, carried with AsyncLocalStorage so that deep layers (the group commit) can drop
 * work nobody waits for without every call in between passing it along.
 */
import { AsyncLocalStorage } from "node:async_hooks";

const storage = new AsyncLocalStorage<AbortSignal>();

/** Runs `fn` (and everything it awaits) with `signal` as the current request's. */
export function runWithRequestSignal<T>(signal: AbortSignal, fn: () => T): T {
  return storage.run(signal, fn);
}

/** The signal of the request being served, if any. */
export function currentRequestSignal(): AbortSignal | undefined {
  return storage.getStore();
}

/** A job dropped before it ran: the client that asked for it had gone. */
export class ClientGoneError extends Error {
  override name = "ClientGoneError";
  constructor() {
    super("The client went away before this work started; it was not done.");
  }
}
