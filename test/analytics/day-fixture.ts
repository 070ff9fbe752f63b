/**
 * A day of conversations with hand-computed metrics (2024-03-10, the day New York moves
 * its clocks forward): an answered call with a hold and wrap-up, an abandoned chat, a call
 * that times out on one agent, is answered by another and transferred, and a call whose
 * events arrive out of order and late, with a rejection.
 */
import type { ConversationSpec, EventSpec } from "../helpers/analytics.js";

export const Q1 = "6a1f0c9e-0000-4000-8000-000000000001";
export const Q2 = "6a1f0c9e-0000-4000-8000-000000000002";

export const ANSWERED: ConversationSpec = {
  id: "day-answered",
  at: "2024-03-10T14:00:00.000Z",
  channel: "Voice",
  sessions: [
    {
      id: "s1",
      queueId: Q1,
      queueName: "Support",
      channel: "Voice",
      created: "2024-03-10T14:00:00.000Z",
      queueAssigned: "2024-03-10T14:00:05.000Z",
      agentAssigned: "2024-03-10T14:00:15.000Z",
      participants: [{ id: "agent-1", name: "Ada" }],
    },
  ],
  events: [
    { name: "NotificationReceived", at: "2024-03-10T14:00:15.000Z", session: "s1", participant: "agent-1" },
    { name: "NotificationAccepted", at: "2024-03-10T14:00:25.000Z", session: "s1", participant: "agent-1" },
    { name: "SessionStarted", at: "2024-03-10T14:00:26.000Z", session: "s1", participant: "agent-1" },
    { name: "CallHold", at: "2024-03-10T14:02:00.000Z", session: "s1", participant: "agent-1" },
    { name: "CallUnhold", at: "2024-03-10T14:03:00.000Z", session: "s1", participant: "agent-1" },
    { name: "WrapUpStarted", at: "2024-03-10T14:05:00.000Z", session: "s1", participant: "agent-1" },
    { name: "SessionClosed", at: "2024-03-10T14:06:00.000Z", session: "s1", participant: "agent-1" },
  ],
};

export const ABANDONED: ConversationSpec = {
  id: "day-abandoned",
  at: "2024-03-10T14:10:00.000Z",
  channel: "Chat",
  sessions: [{ id: "s1", queueId: Q1, channel: "Live chat", queueAssigned: "2024-03-10T14:10:00.000Z" }],
  events: [{ name: "ConversationAbandoned", at: "2024-03-10T14:10:45.000Z", session: "s1" }],
};

export const TRANSFERRED: ConversationSpec = {
  id: "day-transferred",
  at: "2024-03-10T15:00:00.000Z",
  channel: "Voice",
  sessions: [
    {
      id: "s1",
      queueId: Q2,
      channel: "Voice",
      queueAssigned: "2024-03-10T15:00:00.000Z",
      participants: [{ id: "agent-1" }, { id: "agent-2" }],
    },
    {
      id: "s2",
      queueId: Q1,
      channel: "Voice",
      creationReason: "Transfer",
      created: "2024-03-10T15:02:00.000Z",
      participants: [{ id: "agent-3" }],
    },
  ],
  events: [
    { name: "NotificationReceived", at: "2024-03-10T15:00:10.000Z", session: "s1", participant: "agent-1" },
    { name: "NotificationTimedOut", at: "2024-03-10T15:00:40.000Z", session: "s1", participant: "agent-1" },
    { name: "NotificationReceived", at: "2024-03-10T15:00:45.000Z", session: "s1", participant: "agent-2" },
    { name: "NotificationAccepted", at: "2024-03-10T15:00:50.000Z", session: "s1", participant: "agent-2" },
    { name: "ConversationTransferred", at: "2024-03-10T15:02:00.000Z", session: "s1", participant: "agent-2" },
    { name: "SessionClosed", at: "2024-03-10T15:02:10.000Z", session: "s1", participant: "agent-2" },
    { name: "NotificationReceived", at: "2024-03-10T15:02:05.000Z", session: "s2", participant: "agent-3" },
    { name: "NotificationAccepted", at: "2024-03-10T15:02:08.000Z", session: "s2", participant: "agent-3" },
    { name: "SessionClosed", at: "2024-03-10T15:04:00.000Z", session: "s2", participant: "agent-3" },
  ],
};

/** Posted in this order: the acceptance before its notification; the close comes later still (LATE_CLOSE). */
export const OUT_OF_ORDER: ConversationSpec = {
  id: "day-out-of-order",
  at: "2024-03-10T16:00:00.000Z",
  channel: "Voice",
  sessions: [
    {
      id: "s1",
      queueId: Q2,
      channel: "Voice",
      queueAssigned: "2024-03-10T16:00:00.000Z",
      participants: [{ id: "agent-1" }, { id: "agent-2" }],
    },
  ],
  events: [
    { name: "NotificationAccepted", at: "2024-03-10T16:00:20.000Z", session: "s1", participant: "agent-1" },
    { name: "NotificationRejected", at: "2024-03-10T16:00:03.000Z", session: "s1", participant: "agent-2" },
    { name: "NotificationReceived", at: "2024-03-10T16:00:05.000Z", session: "s1", participant: "agent-1" },
    { name: "NotificationReceived", at: "2024-03-10T16:00:01.000Z", session: "s1", participant: "agent-2" },
  ],
};

export const LATE_CLOSE: EventSpec = {
  name: "SessionClosed",
  at: "2024-03-10T16:05:20.000Z",
  session: "s1",
  participant: "agent-1",
};

/** The agent's clock is behind: the close is stamped before the acceptance. */
export const SKEWED: ConversationSpec = {
  id: "day-skewed",
  at: "2024-03-10T17:00:00.000Z",
  channel: "Voice",
  sessions: [
    { id: "s1", queueId: Q2, channel: "Voice", queueAssigned: "2024-03-10T17:00:00.000Z", participants: [{ id: "agent-2" }] },
  ],
  events: [
    { name: "NotificationAccepted", at: "2024-03-10T17:00:10.000Z", session: "s1", participant: "agent-2" },
    { name: "SessionClosed", at: "2024-03-10T17:00:07.000Z", session: "s1", participant: "agent-2" },
  ],
};

export const DAY = [ANSWERED, ABANDONED, TRANSFERRED, OUT_OF_ORDER, SKEWED];
/** The UTC day of the fixtures. */
export const DAY_INTERVAL = "2024-03-10T00:00:00.000Z/2024-03-11T00:00:00.000Z";
/** The New York day (23 hours: clocks go forward at 2:00). */
export const NEW_YORK_DAY = "2024-03-10T00:00:00-05:00/2024-03-11T00:00:00-04:00";
