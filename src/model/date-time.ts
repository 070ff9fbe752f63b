/** Strict ISO 8601 date-times, as the Web API takes them in bodies and $filter literals. */

// A date, or a date and time; a time without an offset is taken as UTC.
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,7})?)?(Z|[+-](\d{2}):?(\d{2}))?)?$/i;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeapYear = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
const daysInMonth = (year: number, month: number) => (month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1]!);

/**
 * The instant `text` names, or undefined when it is not a real ISO 8601 date-time:
 * Date() would roll 2026-02-30 over to March 2, and PostgreSQL stores years 1 to 9999.
 */
export function parseIsoDateTime(text: string): Date | undefined {
  const match = ISO_DATE_TIME.exec(text);
  if (!match) return undefined;
  // (Every part the pattern captures is digits, but for the offset's sign or Z in group 7.)
  const number = (i: number) => (match[i] === undefined ? 0 : Number(match[i]));
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = [1, 2, 3, 4, 5, 6, 8, 9].map(number) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const valid =
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth(year, month) &&
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
