/**
 * Intervals, granularities and time zones of analytics queries. Bucket boundaries are
 * computed in the query's IANA time zone (luxon), so a P1D bucket on a DST change is 23 or
 * 25 hours long; they are aligned to the interval's start, as Genesys aligns them.
 */
import { DateTime, Duration, IANAZone } from "luxon";
import { analyticsBadRequest } from "./errors.js";

export interface Interval {
  start: Date;
  end: Date;
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

/** `start/end` in ISO-8601 with an offset; start before end. */
export function parseInterval(value: string, field = "interval"): Interval {
  const parts = value.split("/");
  if (parts.length !== 2 || !ISO_INSTANT.test(parts[0]!) || !ISO_INSTANT.test(parts[1]!)) {
    throw analyticsBadRequest(
      `${field}: '${value.slice(0, 100)}' is not an interval; write start/end as ISO-8601 instants with an offset, e.g. 2024-05-01T00:00:00.000Z/2024-05-02T00:00:00.000Z.`,
      { field },
    );
  }
  const [start, end] = parts.map((p) => DateTime.fromISO(p, { setZone: true })) as [DateTime, DateTime];
  if (!start.isValid || !end.isValid) {
    throw analyticsBadRequest(`${field}: '${value.slice(0, 100)}' names a date that does not exist.`, {
      [field]: value.slice(0, 100),
    });
  }
  if (end <= start) {
    throw analyticsBadRequest(`${field}: the end (${parts[1]}) must be after the start (${parts[0]}).`, {
      [field]: value.slice(0, 100),
    });
  }
  return { start: start.toJSDate(), end: end.toJSDate() };
}

export const GRANULARITIES = ["PT15M", "PT30M", "PT1H", "P1D", "P7D", "P1M"] as const;
export type Granularity = (typeof GRANULARITIES)[number];

export function parseTimeZone(value: string | undefined): string {
  if (value === undefined) return "UTC";
  if (!IANAZone.isValidZone(value)) {
    throw analyticsBadRequest(
      `timeZone: '${value.slice(0, 64)}' is not an IANA time zone (e.g. America/New_York, Europe/Paris, UTC).`,
      { field: "timeZone" },
    );
  }
  return value;
}

export function parseGranularity(value: string | undefined): Granularity | undefined {
  if (value === undefined) return undefined;
  if (!(GRANULARITIES as readonly string[]).includes(value)) {
    throw analyticsBadRequest(`granularity: '${value.slice(0, 32)}' is not supported; use one of ${GRANULARITIES.join(", ")}.`, {
      field: "granularity",
    });
  }
  return value as Granularity;
}

/**
 * The bucket boundaries [b0 = start, b1, …, bn = end] of `interval` at `granularity` in
 * `zone`: steps of the period in local time from the interval's start. The period must
 * divide the interval exactly (as Genesys requires); undefined granularity is one bucket.
 */
export function bucketBoundaries(
  interval: Interval,
  granularity: Granularity | undefined,
  zone: string,
  maxBuckets: number,
): Date[] {
  if (!granularity) return [interval.start, interval.end];
  const step = Duration.fromISO(granularity);
  const end = interval.end.getTime();
  const start = DateTime.fromJSDate(interval.start, { zone });
  const boundaries: Date[] = [interval.start];
  for (let i = 1; ; i++) {
    // From the start each time (not from the previous boundary), so months keep their day.
    const next = start.plus(step.mapUnits((x) => x * i));
    const t = next.toMillis();
    if (t > end) {
      throw analyticsBadRequest(
        `granularity: ${granularity} does not divide the interval (in ${zone}, its buckets from ${interval.start.toISOString()} do not end at ${interval.end.toISOString()}).`,
        { field: "granularity" },
      );
    }
    boundaries.push(next.toJSDate());
    if (t === end) return boundaries;
    if (boundaries.length > maxBuckets) {
      throw analyticsBadRequest(
        `granularity: ${granularity} over this interval gives more than ${maxBuckets} buckets; use a coarser granularity or a shorter interval.`,
        { field: "granularity" },
      );
    }
  }
}

/** Every boundary falls on a multiple of `minutes` in UTC: the rollup grain can serve the query. */
export function alignedTo(boundaries: readonly Date[], minutes: number): boolean {
  const width = minutes * 60_000;
  return boundaries.every((b) => b.getTime() % width === 0);
}

/** The start of the `minutes`-wide UTC bucket holding `t` (15, 60 or 1440). */
export const bucketStart = (t: Date, minutes: number): Date => {
  const width = minutes * 60_000;
  return new Date(Math.floor(t.getTime() / width) * width);
};

export const formatInterval = (start: Date, end: Date) => `${start.toISOString()}/${end.toISOString()}`;
