/**
 * From one conversation's stored tree (conversation, sessions, participants, KPI events) to
 * its metrics and its detail record, by the formulas of metrics.ts. Pure: the refresher
 * stores what it returns, the details endpoint shapes it, tests call it directly.
 *
 * Events are taken in time order (then by creation), so an event that arrives late or out
 * of order lands where its timestamp puts it, and re-deriving gives the corrected metrics.
 */
import { nonNegative } from "./metrics.js";

export interface ConversationRow {
  conversationId: string;
  timestamp: Date | null;
  channel: string | null;
  providerId: string | null;
  createdOn: Date;
  /** The value of the configured direction column when it is a conversation column. */
  directionSource: string | null;
}

export interface SessionRow {
  providerSessionId: string;
  channel: string | null;
  creationReason: string | null;
  queueId: string | null;
  queueName: string | null;
  createdTimestamp: Date | null;
  agentAssignedTimestamp: Date | null;
  queueAssignedTimestamp: Date | null;
  createdOn: Date;
  /** The value of the configured direction column when it is a session column. */
  directionSource: string | null;
}

export interface ParticipantRow {
  providerSessionId: string;
  participantId: string;
  name: string | null;
  type: string | null;
  addedTimestamp: Date | null;
}

export interface EventRow {
  id: string;
  name: string | null;
  reason: string | null;
  timestamp: Date | null;
  providerSessionId: string;
  participantId: string | null;
  providerId: string | null;
  /** msdyn_cifSessionId: one per CIF page load of the agent. */
  cifSessionId: string | null;
  createdOn: Date;
}

export interface ConversationTree {
  conversation: ConversationRow;
  sessions: readonly SessionRow[];
  participants: readonly ParticipantRow[];
  events: readonly EventRow[];
}

export interface ServiceLevel {
  /** 0..1, e.g. 0.8. */
  target: number;
  thresholdMs: number;
}

export interface DeriveSettings {
  serviceLevelOf(queueId: string): ServiceLevel;
  /** Whether abandons count in oServiceLevel's denominator (Genesys: yes; D365: no). */
  serviceLevelCountsAbandons: boolean;
}

export interface Dimensions {
  queueId: string;
  mediaType: string;
  providerId: string;
  userId: string;
  direction: string;
}

/** One emitted metric value. Dimensions are '' where the conversation does not say. */
export interface Fact extends Dimensions {
  metric: string;
  value: number;
  emittedOn: Date;
  providerSessionId: string;
  participantId: string;
  kpiEventName: string;
}

export type SegmentType = "alert" | "interact" | "hold" | "wrapup";

export interface Segment {
  segmentStart: Date;
  segmentEnd?: Date;
  segmentType: SegmentType;
  queueId?: string;
  disconnectType?: string;
}

export interface DetailSession {
  sessionId: string;
  /** The CIF session's queue (kept for segment filters; Genesys puts it on segments). */
  queueId?: string;
  mediaType?: string;
  direction?: string;
  provider?: string;
  metrics: { name: string; value: number; emitDate: Date }[];
  segments: Segment[];
}

export interface DetailParticipant {
  participantId: string;
  participantName?: string;
  purpose: string;
  userId?: string;
  sessions: DetailSession[];
}

export interface ConversationSummary {
  conversationId: string;
  conversationStart: Date;
  conversationEnd?: Date;
  originatingDirection?: string;
}

/** A KPI event of an agent, for their presence and routing timeline (agents.ts). */
export interface AgentEvent {
  userId: string;
  at: Date;
  createdOn: Date;
  kpiEventId: string;
  name: string;
  reason: string | null;
  providerSessionId: string;
  cifSessionId: string;
  queueId: string;
  mediaType: string;
}

/** The events an agent's timeline is replayed from. */
export const AGENT_TIMELINE_EVENTS: ReadonlySet<string> = new Set([
  "CifSessionStart",
  "CifSessionEnd",
  "PresenceChanged",
  "NotificationReceived",
  "NotificationAccepted",
  "NotificationRejected",
  "NotificationTimedOut",
  "SessionStarted",
  "SessionClosed",
]);

export type OpenStateKind = "waiting" | "alerting" | "interacting";

/** A session that is, as far as its events say, still waiting, alerting or being handled. */
export interface OpenState {
  providerSessionId: string;
  state: OpenStateKind;
  since: Date;
  /** The conversation's latest event (a state with no activity for long is stale). */
  lastActivity: Date;
  queueId: string;
  mediaType: string;
  userId: string;
}

export interface DerivedConversation {
  summary: ConversationSummary;
  facts: Fact[];
  participants: DetailParticipant[];
  agentEvents: AgentEvent[];
  openStates: OpenState[];
}

/**
 * Events nothing here reads: focus switches (D365 counts only focused time as handle time;
 * Genesys has no such rule, and neither do we). They are left out of every derivation, and
 * the KPI event trigger does not mark a conversation for them
 * (migration 20261204204500_analytics_ignore_focus_events names the same list; a test checks).
 */
export const IGNORED_EVENTS: readonly string[] = ["SessionFocusIn", "SessionFocusOut"];
const IGNORED: ReadonlySet<string> = new Set(IGNORED_EVENTS);

const RESPONSES = new Set(["NotificationAccepted", "NotificationRejected", "NotificationTimedOut"]);

/** Genesys' media types from CIF channel names (free text); anything else is kept, lower-cased. */
export function mediaTypeOf(channel: string | null | undefined): string {
  const value = (channel ?? "").trim().toLowerCase();
  if (!value) return "";
  if (/voice|phone|call|telephony|pstn/.test(value)) return "voice";
  if (/chat/.test(value)) return "chat";
  if (/sms|whatsapp|facebook|messag|twitter|line|wechat|teams/.test(value)) return "message";
  if (/mail/.test(value)) return "email";
  if (/video/.test(value)) return "video";
  return value;
}

/** inbound / outbound from the configured direction column's value; '' when it says neither. */
export function directionOf(value: string | null | undefined): string {
  const v = (value ?? "").toLowerCase();
  if (v.includes("outbound")) return "outbound";
  if (v.includes("inbound")) return "inbound";
  return "";
}

/** Genesys' participant purpose from msdyn_participanttype. */
export function purposeOf(type: string | null | undefined): string {
  const v = (type ?? "").toLowerCase();
  if (v.includes("customer")) return "customer";
  if (v.includes("bot")) return "botflow";
  if (v.includes("external")) return "external";
  return "agent";
}

const eventTime = (e: EventRow) => e.timestamp ?? e.createdOn;
const ms = (later: Date, earlier: Date) => nonNegative(later.getTime() - earlier.getTime());

function byTime(a: EventRow, b: EventRow): number {
  return (
    eventTime(a).getTime() - eventTime(b).getTime() ||
    a.createdOn.getTime() - b.createdOn.getTime() ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

export function deriveConversation(tree: ConversationTree, settings: DeriveSettings): DerivedConversation {
  const { conversation } = tree;
  const events = tree.events.filter((e) => !IGNORED.has(e.name ?? "")).sort(byTime);
  // Sessions in the order they began (a stored time, else when the row was written).
  const began = (s: SessionRow) =>
    (s.createdTimestamp ?? s.queueAssignedTimestamp ?? s.agentAssignedTimestamp ?? s.createdOn).getTime();
  const sessions = [...tree.sessions].sort((a, b) => began(a) - began(b) || (a.providerSessionId < b.providerSessionId ? -1 : 1));
  const sessionById = new Map(sessions.map((s) => [s.providerSessionId, s]));
  const facts: Fact[] = [];
  const openStates: Omit<OpenState, "lastActivity">[] = [];
  const conversationStart = conversation.timestamp ?? (events[0] ? eventTime(events[0]) : conversation.createdOn);

  const sessionDims = (s: SessionRow | undefined, userId: string, providerId?: string | null): Dimensions => ({
    queueId: s?.queueId ?? "",
    mediaType: mediaTypeOf(s?.channel ?? conversation.channel),
    providerId: providerId ?? conversation.providerId ?? "",
    userId,
    direction: directionOf(s ? (s.directionSource ?? conversation.directionSource) : conversation.directionSource),
  });
  const emit = (
    metric: string,
    value: number,
    at: Date,
    s: SessionRow | undefined,
    participantId: string,
    kpiEventName: string,
    providerId?: string | null,
  ) => {
    facts.push({
      metric,
      value,
      emittedOn: at,
      providerSessionId: s?.providerSessionId ?? "",
      participantId,
      kpiEventName,
      ...sessionDims(s, participantId, providerId),
    });
  };

  emit("nConversations", 1, conversationStart, sessions[0], "", "");

  // The participants: the stored ones, and any an event names that was never stored.
  const participantKey = (sessionId: string, participantId: string) => `${sessionId}\n${participantId}`;
  const participants = new Map<string, ParticipantRow>();
  for (const p of tree.participants) participants.set(participantKey(p.providerSessionId, p.participantId), p);
  const eventsBy = new Map<string, EventRow[]>();
  for (const e of events) {
    const key = participantKey(e.providerSessionId, e.participantId ?? "");
    let list = eventsBy.get(key);
    if (!list) eventsBy.set(key, (list = []));
    list.push(e);
  }

  const detail = new Map<string, DetailParticipant>();
  const detailSession = (participant: DetailParticipant, s: SessionRow | undefined, sessionId: string) => {
    let found = participant.sessions.find((x) => x.sessionId === sessionId);
    if (!found) {
      const dims = sessionDims(s, "");
      found = {
        sessionId,
        ...(dims.queueId && { queueId: dims.queueId }),
        ...(dims.mediaType && { mediaType: dims.mediaType }),
        ...(dims.direction && { direction: dims.direction }),
        ...(dims.providerId && { provider: dims.providerId }),
        metrics: [],
        segments: [],
      };
      participant.sessions.push(found);
    }
    return found;
  };
  const participantOf = (sessionId: string, participantId: string): DetailParticipant => {
    const id = participantId || `${sessionId}:system`;
    let found = detail.get(id);
    if (!found) {
      const row = participants.get(participantKey(sessionId, participantId));
      found = {
        participantId: id,
        ...(row?.name && { participantName: row.name }),
        purpose: participantId ? purposeOf(row?.type) : "agent",
        ...(participantId && purposeOf(row?.type) === "agent" && { userId: participantId }),
        sessions: [],
      };
      detail.set(id, found);
    }
    return found;
  };

  // Per session: when it left the queue, and whether an agent had accepted it by then.
  const firstAccepted = new Map<string, EventRow>();
  for (const e of events) {
    if (e.name === "NotificationAccepted" && !firstAccepted.has(e.providerSessionId)) firstAccepted.set(e.providerSessionId, e);
  }
  const queueStart = (s: SessionRow | undefined) =>
    s?.queueAssignedTimestamp ?? s?.createdTimestamp ?? conversation.timestamp ?? conversationStart;

  // Per session and participant: offers, answers, talk, holds, wrap-up.
  for (const [key, list] of eventsBy) {
    const [sessionId, participantId] = key.split("\n") as [string, string];
    const s = sessionById.get(sessionId);
    const participant = participantOf(sessionId, participantId);
    const segments = detailSession(participant, s, sessionId).segments;
    const queueId = s?.queueId ?? undefined;
    const at = (e: EventRow, metric: string, value: number) =>
      emit(metric, value, eventTime(e), s, participantId, e.name ?? "", e.providerId);

    let received: EventRow | undefined;
    let handleStart: Date | undefined;
    let wrapStart: Date | undefined;
    let closed: EventRow | undefined;
    let holdStart: Date | undefined;
    const holds: { start: Date; end: Date; endEvent?: EventRow }[] = [];
    for (const e of list) {
      const t = eventTime(e);
      if (e.name === "NotificationReceived") {
        received = e;
      } else if (e.name && RESPONSES.has(e.name)) {
        if (received) {
          at(received, "nOffered", 1);
          at(e, "tAlert", ms(t, eventTime(received)));
          segments.push({
            segmentStart: eventTime(received),
            segmentEnd: t,
            segmentType: "alert",
            ...(queueId && { queueId }),
            ...(e.name === "NotificationTimedOut" && { disconnectType: "timeout" }),
            ...(e.name === "NotificationRejected" && { disconnectType: "client" }),
          });
        }
        if (e.name === "NotificationAccepted") {
          at(e, "nConnected", 1);
          if (!handleStart || t < handleStart) handleStart = t;
        } else if (e.name === "NotificationRejected") {
          at(e, "nRejected", 1);
        } else {
          at(e, "nNotResponding", 1);
          if (received) at(e, "tNotResponding", ms(t, eventTime(received)));
        }
        received = undefined;
      } else if (e.name === "SessionStarted") {
        if (!handleStart || t < handleStart) handleStart = t;
      } else if (e.name === "CallHold") {
        if (!holdStart) holdStart = t;
      } else if (e.name === "CallUnhold") {
        if (holdStart) holds.push({ start: holdStart, end: t, endEvent: e });
        holdStart = undefined;
      } else if (e.name === "WrapUpStarted") {
        if (!wrapStart) wrapStart = t;
      } else if (e.name === "SessionClosed") {
        closed = e;
      } else if (e.name === "ConversationTransferred") {
        at(e, "nTransferred", 1);
      }
    }

    // The session's first acceptance (whoever made it) answers it: tAnswered, SLA.
    const answer = firstAccepted.get(sessionId);
    if (answer && (answer.participantId ?? "") === participantId) {
      const waited = ms(eventTime(answer), queueStart(s));
      const level = settings.serviceLevelOf(s?.queueId ?? "");
      at(answer, "nAnswered", 1);
      at(answer, "tAnswered", waited);
      at(answer, "tWait", waited);
      at(answer, "oServiceLevel", waited <= level.thresholdMs ? 1 : 0);
      if (waited > level.thresholdMs) at(answer, "nOverSla", 1);
    }

    // Still alerting: a notification with no response after it.
    if (received && participantId) {
      openStates.push({ ...openState(s, "alerting", eventTime(received)), userId: participantId });
    }
    if (!handleStart) continue;
    if (!closed && participantId) openStates.push({ ...openState(s, "interacting", handleStart), userId: participantId });
    const closedAt = closed ? eventTime(closed) : undefined;
    const talkEnd = wrapStart ?? closedAt;
    if (holdStart && talkEnd) holds.push({ start: holdStart, end: talkEnd });
    let heldInTalk = 0;
    for (const hold of holds) {
      const start = hold.start < handleStart ? handleStart : hold.start;
      const end = talkEnd && hold.end > talkEnd ? talkEnd : hold.end;
      const held = ms(end, start);
      heldInTalk += held;
      emit("tHeld", held, hold.end, s, participantId, hold.endEvent?.name ?? "", hold.endEvent?.providerId);
    }
    // Talk, hold and wrap-up as segments, in order.
    let cursor = handleStart;
    for (const hold of holds) {
      if (hold.start > cursor)
        segments.push({ segmentStart: cursor, segmentEnd: hold.start, segmentType: "interact", ...(queueId && { queueId }) });
      segments.push({ segmentStart: hold.start, segmentEnd: hold.end, segmentType: "hold", ...(queueId && { queueId }) });
      if (hold.end > cursor) cursor = hold.end;
    }
    segments.push({
      segmentStart: cursor,
      ...(talkEnd && { segmentEnd: talkEnd > cursor ? talkEnd : cursor }),
      segmentType: "interact",
      ...(queueId && { queueId }),
      ...(!wrapStart && closedAt && { disconnectType: "client" }),
    });
    if (talkEnd) {
      const talkEvent = wrapStart ? list.find((e) => e.name === "WrapUpStarted") : closed;
      emit(
        "tTalk",
        nonNegative(ms(talkEnd, handleStart) - heldInTalk),
        talkEnd,
        s,
        participantId,
        talkEvent?.name ?? "",
        talkEvent?.providerId,
      );
    }
    if (wrapStart && closed && closedAt) {
      at(closed, "tAcw", ms(closedAt, wrapStart));
      segments.push({
        segmentStart: wrapStart,
        segmentEnd: closedAt > wrapStart ? closedAt : wrapStart,
        segmentType: "wrapup",
        disconnectType: "client",
      });
    }
    if (closed && closedAt) at(closed, "tHandle", ms(closedAt, handleStart));
  }

  // Per session: the queue's view (acd): queue time, abandons, agent assignment.
  let transfersLogged = false;
  for (const e of events) if (e.name === "ConversationTransferred") transfersLogged = true;
  sessions.forEach((s, index) => {
    const answer = firstAccepted.get(s.providerSessionId);
    const abandon = events.find(
      (e) =>
        e.name === "ConversationAbandoned" &&
        e.providerSessionId === s.providerSessionId &&
        (!answer || eventTime(e) < eventTime(answer)),
    );
    const acdId = `${s.providerSessionId}:acd`;
    const acd = (): DetailSession => {
      let participant = detail.get(acdId);
      if (!participant) {
        participant = {
          participantId: acdId,
          ...(s.queueName && { participantName: s.queueName }),
          purpose: "acd",
          sessions: [],
        };
        detail.set(acdId, participant);
      }
      return detailSession(participant, s, s.providerSessionId);
    };
    const queueId = s.queueId ?? undefined;
    if (s.queueAssignedTimestamp && s.agentAssignedTimestamp) {
      emit("tAcd", ms(s.agentAssignedTimestamp, s.queueAssignedTimestamp), s.agentAssignedTimestamp, s, "", "");
    }
    if (abandon) {
      const waited = ms(eventTime(abandon), queueStart(s));
      emit("tAbandon", waited, eventTime(abandon), s, "", abandon.name ?? "", abandon.providerId);
      emit("tWait", waited, eventTime(abandon), s, "", abandon.name ?? "", abandon.providerId);
      if (settings.serviceLevelCountsAbandons)
        emit("oServiceLevel", 0, eventTime(abandon), s, "", abandon.name ?? "", abandon.providerId);
    }
    if (!transfersLogged && index > 0 && /transfer/i.test(s.creationReason ?? "")) {
      emit("nTransferred", 1, new Date(began(s)), s, "", "");
    }
    const ended = events.some(
      (e) => e.providerSessionId === s.providerSessionId && (e.name === "SessionClosed" || e.name === "ConversationAbandoned"),
    );
    if ((queueId || s.queueAssignedTimestamp) && !answer && !ended) openStates.push(openState(s, "waiting", queueStart(s)));
    if (queueId || abandon) {
      const start = queueStart(s);
      const left = answer ? eventTime(answer) : abandon ? eventTime(abandon) : undefined;
      acd().segments.push({
        segmentStart: start,
        ...(left && { segmentEnd: left > start ? left : start }),
        segmentType: "interact",
        ...(queueId && { queueId }),
        ...(abandon && { disconnectType: "peer" }),
        ...(answer && !abandon && { disconnectType: "transfer" }),
      });
    }
  });

  // The conversation's first acceptance: tFirstWait.
  const first = events.find((e) => e.name === "NotificationAccepted");
  if (first) {
    const s = sessionById.get(first.providerSessionId);
    emit(
      "tFirstWait",
      ms(eventTime(first), conversation.timestamp ?? conversationStart),
      eventTime(first),
      s,
      first.participantId ?? "",
      first.name ?? "",
      first.providerId,
    );
  }

  // Each fact also appears on its participant's session in the detail record.
  for (const fact of facts) {
    if (fact.metric === "nConversations") continue;
    const s = sessionById.get(fact.providerSessionId);
    const session = fact.participantId
      ? detailSession(participantOf(fact.providerSessionId, fact.participantId), s, fact.providerSessionId)
      : detail.has(`${fact.providerSessionId}:acd`) || s
        ? acdSession(fact.providerSessionId, s)
        : undefined;
    session?.metrics.push({ name: fact.metric, value: fact.value, emitDate: fact.emittedOn });
  }
  function acdSession(sessionId: string, s: SessionRow | undefined): DetailSession {
    const acdId = `${sessionId}:acd`;
    let participant = detail.get(acdId);
    if (!participant) {
      participant = { participantId: acdId, ...(s?.queueName && { participantName: s.queueName }), purpose: "acd", sessions: [] };
      detail.set(acdId, participant);
    }
    return detailSession(participant, s, sessionId);
  }

  // Stored participants no event names still appear.
  for (const p of tree.participants)
    detailSession(participantOf(p.providerSessionId, p.participantId), sessionById.get(p.providerSessionId), p.providerSessionId);

  // The conversation ends when every session that was worked or queued has ended.
  let conversationEnd: Date | undefined;
  let open = false;
  for (const s of sessions) {
    const ends = events.filter(
      (e) => e.providerSessionId === s.providerSessionId && (e.name === "SessionClosed" || e.name === "ConversationAbandoned"),
    );
    const worked = events.some((e) => e.providerSessionId === s.providerSessionId);
    if (!worked) continue;
    if (ends.length === 0) {
      open = true;
      continue;
    }
    const end = eventTime(ends[ends.length - 1]!);
    if (!conversationEnd || end > conversationEnd) conversationEnd = end;
  }
  if (open) conversationEnd = undefined;
  if (conversationEnd && conversationEnd < conversationStart) conversationEnd = conversationStart;

  for (const participant of detail.values()) {
    for (const session of participant.sessions) {
      session.segments.sort((a, b) => a.segmentStart.getTime() - b.segmentStart.getTime());
      session.metrics.sort((a, b) => a.emitDate.getTime() - b.emitDate.getTime());
    }
  }
  const direction = directionOf(sessions[0]?.directionSource ?? conversation.directionSource);
  const lastEvent = events[events.length - 1];
  const lastActivity = lastEvent ? eventTime(lastEvent) : conversationStart;
  const agentEvents = events.flatMap((e): AgentEvent[] => {
    if (!e.participantId || !e.name || !AGENT_TIMELINE_EVENTS.has(e.name)) return [];
    const s = sessionById.get(e.providerSessionId);
    return [
      {
        userId: e.participantId,
        at: eventTime(e),
        createdOn: e.createdOn,
        kpiEventId: e.id,
        name: e.name,
        reason: e.reason,
        providerSessionId: e.providerSessionId,
        cifSessionId: e.cifSessionId ?? "",
        queueId: s?.queueId ?? "",
        mediaType: mediaTypeOf(s?.channel ?? conversation.channel),
      },
    ];
  });
  return {
    summary: {
      conversationId: conversation.conversationId,
      conversationStart,
      ...(conversationEnd && { conversationEnd }),
      ...(direction && { originatingDirection: direction }),
    },
    facts,
    participants: [...detail.values()].sort((a, b) => rank(a.purpose) - rank(b.purpose)),
    agentEvents,
    openStates: openStates.map((o) => ({ ...o, lastActivity })),
  };

  function openState(s: SessionRow | undefined, state: OpenStateKind, since: Date): Omit<OpenState, "lastActivity"> {
    return {
      providerSessionId: s?.providerSessionId ?? "",
      state,
      since,
      queueId: s?.queueId ?? "",
      mediaType: mediaTypeOf(s?.channel ?? conversation.channel),
      userId: "",
    };
  }
}

const PURPOSE_ORDER = ["customer", "acd", "agent"];
const rank = (purpose: string) => {
  const i = PURPOSE_ORDER.indexOf(purpose);
  return i < 0 ? PURPOSE_ORDER.length : i;
};
