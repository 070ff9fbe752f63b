/**
 * Values quoted back in error messages, cut to a short prefix: a 9 MB value must not make
 * a 9 MB error body. Short values read exactly as before.
 */
export const ECHO_LENGTH = 100;

/** A text as it was given, or its first characters with how long it was. */
export function echoText(text: string, max = ECHO_LENGTH): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}

/** A text in single quotes, unless it is quoted already (a key such as 'abc'), cut to a short prefix. */
export function quoted(text: string, max = ECHO_LENGTH): string {
  const cut = echoText(text, max);
  return text.length > 1 && text.startsWith("'") && text.endsWith("'") && text.length <= max ? cut : `'${cut}'`;
}

/** A JSON value as JSON (`"abc"`, `12`, `{"a":1}`), cut the same way. */
export function echoJson(value: unknown, max = ECHO_LENGTH): string {
  if (typeof value === "string" && value.length > max)
    return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
  const json = JSON.stringify(value) ?? String(value);
  return json.length > max ? `${json.slice(0, max)}… (${json.length} characters of JSON)` : json;
}
