/**
 * An agent's presence and routing-status timeline, replayed from their KPI events (the
 * rules are in README "Agent timelines"). Pure: the users queries and the observations call it
 * over the events the store reads, tests call it directly.
 *
 * - Presence: CifSessionStart signs the agent in as ONLINE; PresenceChanged sets the
 *   presence its msdyn_kpieventreason names (mapped to a Genesys system presence; the reason
 *   itself is the organizationPresenceId); CifSessionEnd of the last open CIF session, a
 *   PresenceChanged to offline, or no event for `idleCloseMs` signs out (OFFLINE). Any
 *   other event of an agent who is not signed in signs them in (ONLINE) at that time.
 * - Routing status, from what is open at each moment: signed out → OFF_QUEUE; a session
 *   accepted (or started) and not closed → INTERACTING; a notification with no response yet →
 *   COMMUNICATING; after a NotificationTimedOut, until the next acceptance → NOT_RESPONDING; a
 *   presence that takes the agent off work (AWAY, BREAK, MEAL, MEETING, TRAINING) → OFF_QUEUE;
 *   otherwise IDLE.
 */
import type { AgentEvent } from "./derive.js";

export const SYSTEM_PRESENCES = [
  "AVAILABLE",
  "AWAY",
  "BUSY",
  "OFFLINE",
  "IDLE",
  "ON_QUEUE",
  "MEAL",
  "TRAINING",
  "MEETING",
  "BREAK",
  // Ours: signed in to CIF where the provider logs no PresenceChanged.
  "ONLINE",
] as const;
export type SystemPresence = (typeof SYSTEM_PRESENCES)[number];

export const ROUTING_STATUSES = ["OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING", "COMMUNICATING"] as const;
export type RoutingStatus = (typeof ROUTING_STATUSES)[number];

/** Presences in which an agent is not taking work: their routing status is OFF_QUEUE. */
const OFF_WORK: ReadonlySet<SystemPresence> = new Set(["AWAY", "BREAK", "MEAL", "MEETING", "TRAINING", "OFFLINE"]);

// Read in this order, so "Busy - Do not disturb" is BUSY and "Appear away" AWAY.
const PRESENCE_WORDS: readonly [RegExp, SystemPresence][] = [
  [/offline|sign(ed)?[ _-]?out|log(ged)?[ _-]?out/, "OFFLINE"],
  [/on[ _-]?queue/, "ON_QUEUE"],
  [/busy|dnd|do[ _-]?not[ _-]?disturb|in[ _-]?a[ _-]?call/, "BUSY"],
  [/away|be[ _-]?right[ _-]?back|brb/, "AWAY"],
  [/meal|lunch/, "MEAL"],
  [/break/, "BREAK"],
  [/train/, "TRAINING"],
  [/meet/, "MEETING"],
  [/idle/, "IDLE"],
  [/available|online|ready/, "AVAILABLE"],
];

/** The Genesys system presence a provider's presence name stands for; BUSY when no word of it is known. */
export function systemPresenceOf(reason: string | null | undefined): SystemPresence {
  const value = (reason ?? "").trim().toLowerCase();
  for (const [pattern, presence] of PRESENCE_WORDS) if (pattern.test(value)) return presence;
  return "BUSY";
}

export interface PresenceRecord {
  startTime: Date;
  endTime?: Date;
  systemPresence: SystemPresence;
  organizationPresenceId: string;
}

export interface RoutingRecord {
  startTime: Date;
  endTime?: Date;
  routingStatus: RoutingStatus;
}

export interface AgentTimeline {
  userId: string;
  primaryPresence: PresenceRecord[];
  routingStatus: RoutingRecord[];
  /** The queues of the sessions the agent's events belong to. */
  queues: Set<string>;
}

export type TimelineEvent = Pick<AgentEvent, "at" | "createdOn" | "kpiEventId" | "name" | "reason" | "cifSessionId"> & {
  /** Which session the event belongs to (conversation and provider session). */
  sessionKey: string;
  queueId: string;
};

const order = (a: TimelineEvent, b: TimelineEvent) =>
  a.at.getTime() - b.at.getTime() ||
  a.createdOn.getTime() - b.createdOn.getTime() ||
  (a.kpiEventId < b.kpiEventId ? -1 : a.kpiEventId > b.kpiEventId ? 1 : 0);

/**
 * The timeline of one agent from `events` (any order). A state still open at `now` has no
 * endTime, unless the agent had no event for `idleCloseMs` by then: then they signed out at
 * their last event.
 */
export function replayAgent(
  userId: string,
  events: readonly TimelineEvent[],
  options: { now: Date; idleCloseMs: number },
): AgentTimeline {
  const primaryPresence: PresenceRecord[] = [];
  const routingStatus: RoutingRecord[] = [];
  const queues = new Set<string>();

  let signedIn = false;
  let presence: { system: SystemPresence; org: string } | undefined;
  const cifSessions = new Set<string>();
  const openSessions = new Set<string>();
  let alerting = false;
  let notResponding = false;
  let last: Date | undefined;

  const setPresence = (at: Date, system: SystemPresence, org: string) => {
    const current = primaryPresence[primaryPresence.length - 1];
    if (current && current.endTime === undefined) {
      if (current.systemPresence === system && current.organizationPresenceId === org) return;
      close(primaryPresence, at);
    }
    primaryPresence.push({ startTime: at, systemPresence: system, organizationPresenceId: org });
    presence = { system, org };
  };
  const routingNow = (): RoutingStatus => {
    if (!signedIn) return "OFF_QUEUE";
    if (openSessions.size > 0) return "INTERACTING";
    if (alerting) return "COMMUNICATING";
    if (notResponding) return "NOT_RESPONDING";
    if (presence && OFF_WORK.has(presence.system)) return "OFF_QUEUE";
    return "IDLE";
  };
  const updateRouting = (at: Date) => {
    const status = routingNow();
    const current = routingStatus[routingStatus.length - 1];
    if (current && current.endTime === undefined) {
      if (current.routingStatus === status) return;
      close(routingStatus, at);
    }
    routingStatus.push({ startTime: at, routingStatus: status });
  };
  const signIn = (at: Date) => {
    signedIn = true;
    setPresence(at, "ONLINE", "ONLINE");
  };
  const signOut = (at: Date) => {
    signedIn = false;
    cifSessions.clear();
    openSessions.clear();
    alerting = false;
    notResponding = false;
    setPresence(at, "OFFLINE", "OFFLINE");
    updateRouting(at);
  };

  for (const e of [...events].sort(order)) {
    if (signedIn && last && e.at.getTime() - last.getTime() > options.idleCloseMs) signOut(last);
    if (e.queueId) queues.add(e.queueId);
    switch (e.name) {
      case "CifSessionStart":
        cifSessions.add(e.cifSessionId);
        if (!signedIn) signIn(e.at);
        break;
      case "CifSessionEnd":
        cifSessions.delete(e.cifSessionId);
        if (signedIn && cifSessions.size === 0) signOut(e.at);
        break;
      case "PresenceChanged": {
        const system = systemPresenceOf(e.reason);
        if (system === "OFFLINE") {
          if (signedIn) signOut(e.at);
          break;
        }
        if (!signedIn) signedIn = true;
        setPresence(e.at, system, (e.reason ?? "").trim().slice(0, 100) || system);
        break;
      }
      default:
        if (!signedIn) signIn(e.at);
        if (e.name === "NotificationReceived") alerting = true;
        else if (e.name === "NotificationAccepted") {
          alerting = false;
          notResponding = false;
          openSessions.add(e.sessionKey);
        } else if (e.name === "NotificationRejected") alerting = false;
        else if (e.name === "NotificationTimedOut") {
          alerting = false;
          notResponding = true;
        } else if (e.name === "SessionStarted") openSessions.add(e.sessionKey);
        else if (e.name === "SessionClosed") openSessions.delete(e.sessionKey);
    }
    updateRouting(e.at);
    last = e.at;
  }
  if (signedIn && last && options.now.getTime() - last.getTime() > options.idleCloseMs) signOut(last);
  return {
    userId,
    primaryPresence: settle(
      primaryPresence,
      (a, b) => a.systemPresence === b.systemPresence && a.organizationPresenceId === b.organizationPresenceId,
    ),
    routingStatus: settle(routingStatus, (a, b) => a.routingStatus === b.routingStatus),
    queues,
  };
}

/** Ends the open record of `records` at `at`. */
function close(records: { startTime: Date; endTime?: Date }[], at: Date) {
  const current = records[records.length - 1];
  if (current && current.endTime === undefined) current.endTime = at;
}

/**
 * Drops the states that ended the instant they began (two events at one time), then joins
 * the neighbours that dropping left side by side in the same state.
 */
function settle<R extends { startTime: Date; endTime?: Date }>(records: readonly R[], same: (a: R, b: R) => boolean): R[] {
  const out: R[] = [];
  for (const r of records) {
    if (r.endTime !== undefined && r.endTime <= r.startTime) continue;
    const previous = out[out.length - 1];
    if (previous && previous.endTime?.getTime() === r.startTime.getTime() && same(previous, r)) {
      if (r.endTime === undefined) delete previous.endTime;
      else previous.endTime = r.endTime;
    } else out.push({ ...r });
  }
  return out;
}

/** The records that overlap [from, to). */
export function overlapping<R extends { startTime: Date; endTime?: Date }>(records: readonly R[], from: Date, to: Date): R[] {
  return records.filter((r) => r.startTime < to && (r.endTime === undefined || r.endTime > from));
}

/**
 * The milliseconds each record spends in each bucket of `boundaries`, an open record running
 * until `now`: [bucket index, ms] pairs, for the users aggregates.
 */
export function splitIntoBuckets(
  record: { startTime: Date; endTime?: Date },
  boundaries: readonly Date[],
  now: Date,
): [bucket: number, ms: number][] {
  const start = record.startTime.getTime();
  const end = (record.endTime ?? now).getTime();
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < boundaries.length; i++) {
    const from = Math.max(start, boundaries[i]!.getTime());
    const to = Math.min(end, boundaries[i + 1]!.getTime());
    if (to > from) out.push([i, to - from]);
  }
  return out;
}
