/** Strict ISO 8601 date-times, as the Web API takes them in bodies and $filter literals. */

// A date, or a date and time; a time without an offset is taken as UTC.
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,7})?)?(Z|[+-](\d{2}):?(\d{2}))?)?$/i;

const daysInMonth = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();

/**
 * The instant `text` names, or undefined when it is not a real ISO 8601 date-time:
 * Date() would roll 2026-02-30 over to March 2, and PostgreSQL stores years 1 to 9999.
 */
export function parseIsoDateTime(text: string): Date | undefined {
  const match = ISO_DATE_TIME.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour = 0, minute = 0, second = 0, , offsetHours = 0, offsetMinutes = 0] = match
    .slice(1)
    .map((part) => (part === undefined || /^[zZ+-]/.test(part) ? undefined : Number(part)));
  const valid =
    month! >= 1 &&
    month! <= 12 &&
    day! >= 1 &&
    day! <= daysInMonth(year!, month!) &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetHours <= 14 &&
    offsetMinutes <= 59;
  if (!valid) return undefined;
  const hasOffset = match[7] !== undefined || match[4] === undefined;
  const date = new Date(hasOffset ? text : `${text}Z`);
  const utcYear = date.getUTCFullYear();
  return Number.isNaN(date.getTime()) || utcYear < 1 || utcYear > 9999 ? undefined : date;
}

/** PostgreSQL text cannot hold NUL; such input is refused before it reaches SQL. */
export const hasNulCharacter = (text: string) => text.includes("\u0000");
