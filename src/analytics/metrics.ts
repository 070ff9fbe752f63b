/**
 * The metrics the analytics API serves: each one's kind, the formula it is derived by
 * (src/analytics/derive.ts computes exactly this), and when it is emitted. The README, the
 * OpenAPI description and the error for an unknown metric are written from this list.
 */

/** `count`: n* metrics ({count}); `duration`: t* metrics in ms ({max, min, count, sum}); `ratio`: o* ({ratio, numerator, denominator, target}). */
export type MetricKind = "count" | "duration" | "ratio" | "target";

export interface MetricDef {
  name: string;
  kind: MetricKind;
  formula: string;
  /** When the value is emitted: the bucket it falls in. */
  emitted: string;
  /** Another metric's facts serve this one (oServiceTarget needs none of its own). */
  from?: string;
}

// Notation for the formulas: e(X) is a KPI event whose msdyn_kpieventname is X, within one
// session (msdyn_providersessionid) and participant (msdyn_participantid); s is the session
// row, c the conversation row. Times are msdyn_eventtimestamp (else the row's createdon).
const QUEUE_START =
  "s.msdyn_sessionqueueassignedtimestamp, else s.msdyn_sessioncreatedtimestamp, else c.msdyn_conversationtimestamp";

export const METRICS: readonly MetricDef[] = [
  {
    name: "nConversations",
    kind: "count",
    formula: "1 per conversation (msdyn_conversationdata row)",
    emitted: "c.msdyn_conversationtimestamp (else the earliest event)",
  },
  {
    name: "nOffered",
    kind: "count",
    formula:
      "1 per e(NotificationReceived) answered by the next notification response of the same session and participant (Accepted, Rejected or TimedOut); a Received followed by another Received is not counted",
    emitted: "the NotificationReceived time",
  },
  {
    name: "nConnected",
    kind: "count",
    formula: "1 per e(NotificationAccepted)",
    emitted: "the NotificationAccepted time",
  },
  {
    name: "nAnswered",
    kind: "count",
    formula: "1 per session that an agent accepted: its first e(NotificationAccepted) (the population of tAnswered)",
    emitted: "that NotificationAccepted time",
  },
  {
    name: "nRejected",
    kind: "count",
    formula: "1 per e(NotificationRejected)",
    emitted: "the NotificationRejected time",
  },
  {
    name: "nNotResponding",
    kind: "count",
    formula: "1 per e(NotificationTimedOut)",
    emitted: "the NotificationTimedOut time",
  },
  {
    name: "nTransferred",
    kind: "count",
    formula:
      "1 per e(ConversationTransferred); in a conversation with none, 1 per session after the first whose msdyn_sessioncreationreason contains 'transfer'",
    emitted: "the event's time (the new session's msdyn_sessioncreatedtimestamp)",
  },
  {
    name: "nOverSla",
    kind: "count",
    formula: "1 per answered session (nAnswered) whose tAnswered is over its queue's service-level threshold",
    emitted: "the NotificationAccepted time",
  },
  {
    name: "tAlert",
    kind: "duration",
    formula: "notification response time − its e(NotificationReceived) time (the pairs of nOffered)",
    emitted: "the response time",
  },
  {
    name: "tNotResponding",
    kind: "duration",
    formula: "e(NotificationTimedOut) time − its e(NotificationReceived) time",
    emitted: "the NotificationTimedOut time",
  },
  {
    name: "tAnswered",
    kind: "duration",
    formula: `the session's first e(NotificationAccepted) time − queue start (${QUEUE_START})`,
    emitted: "the NotificationAccepted time",
  },
  {
    name: "tAcd",
    kind: "duration",
    formula: "s.msdyn_sessionagentassignedtimestamp − s.msdyn_sessionqueueassignedtimestamp (sessions with both)",
    emitted: "s.msdyn_sessionagentassignedtimestamp",
  },
  {
    name: "tWait",
    kind: "duration",
    formula: `time the session left the queue (its first e(NotificationAccepted), else its e(ConversationAbandoned)) − queue start (${QUEUE_START})`,
    emitted: "the time the session left the queue",
  },
  {
    name: "tFirstWait",
    kind: "duration",
    formula: "the conversation's first e(NotificationAccepted) time − c.msdyn_conversationtimestamp",
    emitted: "that NotificationAccepted time",
  },
  {
    name: "tTalk",
    kind: "duration",
    formula:
      "talk end (e(WrapUpStarted), else e(SessionClosed)) − handle start (the first of e(NotificationAccepted) and e(SessionStarted)) − the hold time within it",
    emitted: "the talk end",
  },
  {
    name: "tHeld",
    kind: "duration",
    formula: "e(CallUnhold) time − the preceding e(CallHold) time, per hold; a hold still open at talk end is closed there",
    emitted: "the CallUnhold time (or the talk end)",
  },
  {
    name: "tAcw",
    kind: "duration",
    formula: "e(SessionClosed) time − e(WrapUpStarted) time",
    emitted: "the SessionClosed time",
  },
  {
    name: "tHandle",
    kind: "duration",
    formula:
      "e(SessionClosed) time (the last) − handle start (the first of e(NotificationAccepted) and e(SessionStarted)); = tTalk + tHeld + tAcw",
    emitted: "the SessionClosed time",
  },
  {
    name: "tAbandon",
    kind: "duration",
    formula: `e(ConversationAbandoned) time − queue start (${QUEUE_START}), for a session no agent had accepted`,
    emitted: "the ConversationAbandoned time",
  },
  {
    name: "oServiceLevel",
    kind: "ratio",
    formula:
      "numerator: answered sessions (nAnswered) with tAnswered ≤ the queue's threshold; denominator: answered sessions + abandoned sessions (tAbandon count; ANALYTICS_SERVICE_LEVEL_ABANDONS=exclude leaves them out); ratio = numerator / denominator; target = the queue's target",
    emitted: "the NotificationAccepted or ConversationAbandoned time",
  },
  {
    name: "oServiceTarget",
    kind: "target",
    formula:
      "the configured service-level target of the group's queue (ANALYTICS_SERVICE_LEVEL, per queue ANALYTICS_QUEUE_SERVICE_LEVELS; default 80 % within 20 s)",
    emitted: "every bucket that has oServiceLevel data",
    from: "oServiceLevel",
  },
];

export const METRIC_NAMES: readonly string[] = METRICS.map((m) => m.name);
const byName = new Map(METRICS.map((m) => [m.name, m]));

export const metricDef = (name: string): MetricDef | undefined => byName.get(name);

/** The stored metric whose rows serve `name`. */
export const sourceMetric = (name: string): string => byName.get(name)?.from ?? name;

/** Durations are never negative: agent clocks skew, events arrive out of order. */
export const nonNegative = (ms: number): number => (ms > 0 ? Math.round(ms) : 0);

/** The formulas as the README's table shows them (a test keeps the two the same). */
export function metricsMarkdownTable(): string {
  const rows = METRICS.map((m) => `| \`${m.name}\` | ${m.kind} | ${m.formula} | ${m.emitted} |`);
  return ["| Metric | Kind | Formula | Emitted at |", "|---|---|---|---|", ...rows].join("\n");
}
