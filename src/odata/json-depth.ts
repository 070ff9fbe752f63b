/**
 * A nesting-depth limit for JSON text (JSON_MAX_DEPTH), checked by one pass over the text
 * before it is parsed: 10 MB of `[[[[…` would otherwise become millions of nested arrays
 * whose recursive handling (validation, `$batch` references) stalls the event loop or
 * overflows the stack. Hand-written because neither JSON.parse nor secure-json-parse
 * (Fastify's parser) has a depth option, and a streaming parser would cost far more
 * than this scan.
 */
import { ErrorCodes, badRequest } from "./errors.js";

/** Throws a 400 when `text` nests arrays/objects deeper than `maxDepth`. */
export function assertJsonDepth(text: string, maxDepth: number): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Jump to the closing quote natively (indexOf), skipping escaped ones: string
      // contents are most of a body, and a character loop over them costs as much as parsing.
      let end = text.indexOf('"', i + 1);
      while (end !== -1) {
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c /* \ */) backslashes++;
        if (backslashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      if (end === -1) return; // unterminated: JSON.parse reports it
      i = end;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > maxDepth) {
        throw badRequest(
          `The request body nests arrays and objects deeper than ${maxDepth} levels (JSON_MAX_DEPTH).`,
          ErrorCodes.payloadError,
        );
      }
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
}
