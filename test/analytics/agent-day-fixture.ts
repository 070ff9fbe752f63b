/**
 * Two agents' day (2024-03-10, UTC) with hand-computed timelines. Ada signs in, sets her
 * presence, answers a call, times out on a second call and then answers it, switches focus,
 * takes lunch, rejects a third call and never logs CifSessionEnd (so she is signed out at
 * her last event once ANALYTICS_AGENT_IDLE_MINUTES pass). Bo opens CIF in two tabs, logs no
 * presence, and closes both; he is signed out when the last closes.
 */
import type { ConversationSpec } from "../helpers/analytics.js";

export const AQ1 = "7b2e0d1f-0000-4000-8000-000000000001";
export const AQ2 = "7b2e0d1f-0000-4000-8000-000000000002";
export const AGENT_DAY = "2024-03-10T00:00:00.000Z/2024-03-11T00:00:00.000Z";

const at = (hms: string) => `2024-03-10T${hms}.000Z`;

/** The CIF client logs its sign-in events under a conversation of the agent's own. */
const cif = (id: string, events: ConversationSpec["events"]): ConversationSpec => ({
  id,
  at: events[0]!.at,
  sessions: [{ id: "default", participants: [{ id: events[0]!.participant! }] }],
  events,
});

export const AGENT_DAY_CONVERSATIONS: ConversationSpec[] = [
  cif("ada-cif", [
    { name: "CifSessionStart", at: at("08:00:00"), session: "default", participant: "ada", cifSession: "ada-1" },
    {
      name: "PresenceChanged",
      at: at("08:05:00"),
      session: "default",
      participant: "ada",
      reason: "Available",
      cifSession: "ada-1",
    },
    { name: "PresenceChanged", at: at("12:00:00"), session: "default", participant: "ada", reason: "Lunch", cifSession: "ada-1" },
    {
      name: "PresenceChanged",
      at: at("12:30:00"),
      session: "default",
      participant: "ada",
      reason: "Available",
      cifSession: "ada-1",
    },
  ]),
  {
    id: "ada-call-1",
    at: at("08:59:50"),
    channel: "Voice",
    sessions: [{ id: "s1", queueId: AQ1, queueAssigned: at("08:59:50"), participants: [{ id: "ada" }] }],
    events: [
      { name: "NotificationReceived", at: at("09:00:00"), session: "s1", participant: "ada", cifSession: "ada-1" },
      { name: "NotificationAccepted", at: at("09:00:10"), session: "s1", participant: "ada", cifSession: "ada-1" },
      { name: "SessionStarted", at: at("09:00:11"), session: "s1", participant: "ada", cifSession: "ada-1" },
      { name: "SessionClosed", at: at("09:10:00"), session: "s1", participant: "ada", cifSession: "ada-1" },
    ],
  },
  {
    id: "ada-call-2",
    at: at("09:59:00"),
    channel: "Voice",
    sessions: [{ id: "s1", queueId: AQ1, queueAssigned: at("09:59:00"), participants: [{ id: "ada" }] }],
    events: [
      { name: "NotificationReceived", at: at("10:00:00"), session: "s1", participant: "ada", cifSession: "ada-1" },
      { name: "NotificationTimedOut", at: at("10:00:30"), session: "s1", participant: "ada", cifSession: "ada-1" },
      { name: "NotificationReceived", at: at("10:05:00"), session: "s1", participant: "ada", cifSession: "ada-1" },
      { name: "NotificationAccepted", at: at("10:05:05"), session: "s1", participant: "ada", cifSession: "ada-1" },
      { name: "SessionStarted", at: at("10:05:06"), session: "s1", participant: "ada", cifSession: "ada-1" },
      // A focus switch: it changes neither presence nor routing status.
      { name: "SessionFocusOut", at: at("10:06:00"), session: "s1", participant: "ada", cifSession: "ada-1" },
      { name: "SessionFocusIn", at: at("10:07:00"), session: "s1", participant: "ada", cifSession: "ada-1" },
      { name: "SessionClosed", at: at("10:20:00"), session: "s1", participant: "ada", cifSession: "ada-1" },
    ],
  },
  {
    id: "ada-call-3",
    at: at("12:59:00"),
    channel: "Voice",
    sessions: [{ id: "s1", queueId: AQ2, queueAssigned: at("12:59:00"), participants: [{ id: "ada" }] }],
    events: [
      { name: "NotificationReceived", at: at("13:00:00"), session: "s1", participant: "ada", cifSession: "ada-1" },
      { name: "NotificationRejected", at: at("13:00:20"), session: "s1", participant: "ada", cifSession: "ada-1" },
    ],
  },
  cif("bo-cif", [
    { name: "CifSessionStart", at: at("09:30:00"), session: "default", participant: "bo", cifSession: "bo-1" },
    { name: "CifSessionStart", at: at("09:45:00"), session: "default", participant: "bo", cifSession: "bo-2" },
    { name: "CifSessionEnd", at: at("10:30:00"), session: "default", participant: "bo", cifSession: "bo-1" },
    { name: "CifSessionEnd", at: at("11:00:00"), session: "default", participant: "bo", cifSession: "bo-2" },
  ]),
];

export const ADA_PRESENCE = [
  { startTime: at("08:00:00"), endTime: at("08:05:00"), systemPresence: "ONLINE", organizationPresenceId: "ONLINE" },
  { startTime: at("08:05:00"), endTime: at("12:00:00"), systemPresence: "AVAILABLE", organizationPresenceId: "Available" },
  { startTime: at("12:00:00"), endTime: at("12:30:00"), systemPresence: "MEAL", organizationPresenceId: "Lunch" },
  { startTime: at("12:30:00"), endTime: at("13:00:20"), systemPresence: "AVAILABLE", organizationPresenceId: "Available" },
  { startTime: at("13:00:20"), systemPresence: "OFFLINE", organizationPresenceId: "OFFLINE" },
];

export const ADA_ROUTING = [
  { startTime: at("08:00:00"), endTime: at("09:00:00"), routingStatus: "IDLE" },
  { startTime: at("09:00:00"), endTime: at("09:00:10"), routingStatus: "COMMUNICATING" },
  { startTime: at("09:00:10"), endTime: at("09:10:00"), routingStatus: "INTERACTING" },
  { startTime: at("09:10:00"), endTime: at("10:00:00"), routingStatus: "IDLE" },
  { startTime: at("10:00:00"), endTime: at("10:00:30"), routingStatus: "COMMUNICATING" },
  { startTime: at("10:00:30"), endTime: at("10:05:00"), routingStatus: "NOT_RESPONDING" },
  { startTime: at("10:05:00"), endTime: at("10:05:05"), routingStatus: "COMMUNICATING" },
  { startTime: at("10:05:05"), endTime: at("10:20:00"), routingStatus: "INTERACTING" },
  { startTime: at("10:20:00"), endTime: at("12:00:00"), routingStatus: "IDLE" },
  { startTime: at("12:00:00"), endTime: at("12:30:00"), routingStatus: "OFF_QUEUE" },
  { startTime: at("12:30:00"), endTime: at("13:00:00"), routingStatus: "IDLE" },
  { startTime: at("13:00:00"), endTime: at("13:00:20"), routingStatus: "COMMUNICATING" },
  { startTime: at("13:00:20"), routingStatus: "OFF_QUEUE" },
];

export const BO_PRESENCE = [
  { startTime: at("09:30:00"), endTime: at("11:00:00"), systemPresence: "ONLINE", organizationPresenceId: "ONLINE" },
  { startTime: at("11:00:00"), systemPresence: "OFFLINE", organizationPresenceId: "OFFLINE" },
];

export const BO_ROUTING = [
  { startTime: at("09:30:00"), endTime: at("11:00:00"), routingStatus: "IDLE" },
  { startTime: at("11:00:00"), routingStatus: "OFF_QUEUE" },
];
