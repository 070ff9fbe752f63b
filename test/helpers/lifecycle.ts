/** A resource made in `beforeAll` and disposed of in `afterAll` of the calling `describe`. */
import { afterAll, beforeAll } from "vitest";

/**
 * Registers the hooks and returns a handle that forwards to the resource once it is made
 * (use it inside tests and hooks, not while the suite is being collected).
 */
export function useResource<T extends object>(what: string, make: () => Promise<T>, dispose: (resource: T) => Promise<void>): T {
  let current: T | undefined;
  beforeAll(async () => {
    current = await make();
  });
  afterAll(async () => {
    if (current) await dispose(current);
    current = undefined;
  });
  return new Proxy({} as T, {
    get(_target, key) {
      if (!current) throw new Error(`${what} is made in beforeAll; use it inside a test or a hook`);
      const value: unknown = Reflect.get(current, key);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(current) : value;
    },
  });
}
