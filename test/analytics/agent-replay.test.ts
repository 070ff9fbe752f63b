/** The timeline replay's rules on their own (src/analytics/agents.ts): pure, no database. */
import { describe, expect, it } from "vitest";
import { type TimelineEvent, replayAgent, splitIntoBuckets, systemPresenceOf } from "../../src/analytics/agents.js";

const T0 = Date.parse("2024-06-01T08:00:00Z");
const min = (m: number) => new Date(T0 + m * 60_000);
let seq = 0;
const ev = (m: number, name: string, extra: Partial<TimelineEvent> = {}): TimelineEvent => ({
  at: min(m),
  createdOn: min(m),
  kpiEventId: `e${String(seq++).padStart(4, "0")}`,
  name,
  reason: null,
  sessionKey: "c1\ns1",
  cifSessionId: "",
  queueId: "",
  ...extra,
});
const FAR = { now: min(10_000), idleCloseMs: 60 * 60_000 };
const states = <R extends { startTime: Date; endTime?: Date }>(records: R[], key: keyof R & string) =>
  records.map(
    (r) => `${(r.startTime.getTime() - T0) / 60_000}-${r.endTime ? (r.endTime.getTime() - T0) / 60_000 : ""} ${String(r[key])}`,
  );

describe("agent timeline replay", () => {
  it("signs out at the last event before a gap longer than the idle time, and in again at the next event", () => {
    const back = replayAgent("u", [ev(0, "CifSessionStart"), ev(10, "SessionFocusIn"), ev(200, "CifSessionStart")], {
      now: min(210),
      idleCloseMs: 60 * 60_000,
    });
    expect(states(back.primaryPresence, "systemPresence")).toEqual(["0-10 ONLINE", "10-200 OFFLINE", "200- ONLINE"]);
    expect(states(back.routingStatus, "routingStatus")).toEqual(["0-10 IDLE", "10-200 OFF_QUEUE", "200- IDLE"]);
    const t = replayAgent("u", [ev(0, "CifSessionStart"), ev(10, "SessionFocusIn"), ev(200, "NotificationReceived")], FAR);
    // The lone event at 200 signs in and, being the last, out again at once: no state of any length.
    expect(states(t.primaryPresence, "systemPresence")).toEqual(["0-10 ONLINE", "10- OFFLINE"]);
    expect(states(t.routingStatus, "routingStatus")).toEqual(["0-10 IDLE", "10- OFF_QUEUE"]);
  });

  it("keeps a state open while the idle time has not passed", () => {
    const t = replayAgent("u", [ev(0, "CifSessionStart"), ev(5, "NotificationReceived")], {
      now: min(30),
      idleCloseMs: 60 * 60_000,
    });
    expect(states(t.primaryPresence, "systemPresence")).toEqual(["0- ONLINE"]);
    expect(states(t.routingStatus, "routingStatus")).toEqual(["0-5 IDLE", "5- COMMUNICATING"]);
  });

  it("takes events in time order whatever order they come in, and drops states of no length", () => {
    const events = [
      ev(9, "SessionClosed"),
      ev(1, "NotificationAccepted"),
      ev(0, "CifSessionStart"),
      ev(1, "NotificationReceived", { at: min(1), createdOn: min(0.5) }),
    ];
    const t = replayAgent("u", events, { now: min(10), idleCloseMs: 3_600_000 });
    expect(states(t.routingStatus, "routingStatus")).toEqual(["0-1 IDLE", "1-9 INTERACTING", "9- IDLE"]);
  });

  it("stays signed in while another CIF session is open, and a PresenceChanged to offline signs out", () => {
    const t = replayAgent(
      "u",
      [
        ev(0, "CifSessionStart", { cifSessionId: "a" }),
        ev(1, "CifSessionStart", { cifSessionId: "b" }),
        ev(2, "CifSessionEnd", { cifSessionId: "a" }),
        ev(3, "PresenceChanged", { reason: "Busy - Do not disturb" }),
        ev(4, "PresenceChanged", { reason: "Appear offline" }),
      ],
      { now: min(5), idleCloseMs: 3_600_000 },
    );
    expect(states(t.primaryPresence, "systemPresence")).toEqual(["0-3 ONLINE", "3-4 BUSY", "4- OFFLINE"]);
    expect(t.primaryPresence[1]!.organizationPresenceId).toBe("Busy - Do not disturb");
  });

  it("maps presence names by their words", () => {
    expect(
      [
        "Available",
        "Busy",
        "Do not disturb",
        "Be right back",
        "Away",
        "Lunch",
        "On break",
        "Training",
        "In a meeting",
        "On Queue",
        "Offline",
        "Wrap-up",
      ].map(systemPresenceOf),
    ).toEqual([
      "AVAILABLE",
      "BUSY",
      "BUSY",
      "AWAY",
      "AWAY",
      "MEAL",
      "BREAK",
      "TRAINING",
      "MEETING",
      "ON_QUEUE",
      "OFFLINE",
      "BUSY",
    ]);
  });

  it("splits a state across buckets, an open one until now", () => {
    const b = [min(0), min(60), min(120)];
    expect(splitIntoBuckets({ startTime: min(30), endTime: min(90) }, b, min(500))).toEqual([
      [0, 30 * 60_000],
      [1, 30 * 60_000],
    ]);
    expect(splitIntoBuckets({ startTime: min(30) }, b, min(75))).toEqual([
      [0, 30 * 60_000],
      [1, 15 * 60_000],
    ]);
  });
});
