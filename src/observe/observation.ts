/**
 * The one seam every request reports through: a plain HTTP request, every `$batch` part
 * and every action emit observations (received, stage timings, the operation, the caller,
 * records written, a correlation id, notes, the outcome). The request log subscribes to
 * them today; the audit log and metrics subscribe the same way, so no feature re-wraps
 * the handlers. Types only; it imports nothing but the model's.
 */
import type { Caller } from "../model/caller.js";

/** Which `$batch` part an observation is about (absent for the request itself). */
export interface BatchPartRef {
  /** 1-based, in the order of the batch body. */
  index: number;
  contentId?: string;
  url: string;
  /** 1-based index of its change set, when it is in one. */
  changeSet?: number;
}

export type StageName = "parse" | "plan" | "authorize" | "execute" | "respond";

export type Observation = { part?: BatchPartRef } & (
  | { kind: "received"; method: string; target: string; caller: Caller }
  /** The organisation the request reached (before its token is checked). */
  | { kind: "organization"; id: string; name: string }
  /** Who the request is from, once its token is checked (for audit: principal, roles and the token's claims). */
  | {
      kind: "caller";
      caller: Caller;
      principalId: string;
      roles: readonly string[];
      organization: string;
      claims?: Readonly<Record<string, unknown>>;
    }
  | { kind: "stage"; stage: StageName; ms: number }
  /** A stable name such as `msdyn_kpieventsdata.Create`, `$batch` or `msdyn_LogAnalyticsEvent`. */
  | { kind: "operation"; name: string; entitySet?: string }
  /**
   * What the planned operation needs, before it is authorized: its privileges
   * (`prv<Verb><table>`) and the status it answers when it succeeds (the audit record
   * committed with a write carries it).
   */
  | { kind: "requirements"; privileges: readonly string[]; successStatus: number }
  | { kind: "correlation"; correlationId: string }
  | { kind: "written"; entitySet: string; ids: readonly string[] }
  /** A line worth logging, with its fields (e.g. what an action stored). */
  | { kind: "note"; message: string; fields: Record<string, unknown> }
  | { kind: "outcome"; status: number; ms: number; errorCode?: string }
);

export type Observer = (observation: Observation) => void;

/** An observer that hands every observation to each of `observers`. */
export function fanOut(observers: readonly Observer[]): Observer {
  return (observation) => {
    for (const observe of observers) observe(observation);
  };
}

/** The same observer, with every observation marked as being about `part`. */
export const forPart =
  (observe: Observer, part: BatchPartRef): Observer =>
  (observation) =>
    observe({ ...observation, part });

export const ignoreObservations: Observer = () => {};
