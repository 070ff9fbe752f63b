/** decodeBatchBody alone: valid UTF-8 passes through; invalid UTF-8 is a 400 naming the part that holds it. */
import { describe, expect, it } from "vitest";
import { decodeBatchBody } from "../../src/odata/batch.js";
import { ODataError } from "../../src/odata/errors.js";

const BAD = Buffer.from([0xff]);
const bytes = (...pieces: Array<string | Buffer>) => Buffer.concat(pieces.map((p) => Buffer.from(p)));
const part = (body: string | Buffer = "{}") =>
  bytes("Content-Type: application/http\r\n\r\nPOST /api/data/v9.2/msdyn_ciproviders HTTP/1.1\r\n\r\n", body, "\r\n");

function refusal(body: Buffer, contentType = "multipart/mixed; boundary=b"): string {
  try {
    decodeBatchBody(body, contentType);
  } catch (error) {
    expect(error).toBeInstanceOf(ODataError);
    expect((error as ODataError).status).toBe(400);
    return (error as ODataError).message;
  }
  throw new Error("not refused");
}

describe("decodeBatchBody", () => {
  it("returns valid UTF-8 as text", () => {
    expect(decodeBatchBody(bytes("--b\r\n", part("é🎧"), "--b--\r\n"), "multipart/mixed; boundary=b")).toContain("é🎧");
  });

  it("names the part: top level, in a change set with a quoted boundary and blank lines before its headers", () => {
    expect(refusal(bytes("--b\r\n", part(), "--b\r\n", part(bytes("x", BAD)), "--b--\r\n"))).toContain("part 2 ");
    const changeSet = bytes(
      '\r\nContent-Type: multipart/mixed; boundary="c s"\r\n\r\n--c s\r\n',
      part(),
      "--c s\r\n",
      part(),
      "--c s\r\n",
      part(BAD),
      "--c s--\r\n",
    );
    expect(refusal(bytes("--b\r\n", part(), "--b\r\n", changeSet, "--b--\r\n"))).toContain("part 2.3 ");
  });

  it("names the part when the bad byte is in its headers or its request line", () => {
    const headers = bytes(
      "--b\r\nContent-Type: application/http\r\n\r\nPOST /api/data/v9.2/x",
      BAD,
      " HTTP/1.1\r\n\r\n{}\r\n--b--\r\n",
    );
    expect(refusal(headers)).toContain("part 1 ");
  });

  it("says so when the bad byte is outside every part, and gives its offset", () => {
    const message = refusal(bytes("--b\r\n", part(), "--b--\r\n", BAD));
    expect(message).toContain("outside its parts");
    expect(message).toContain(`offset ${bytes("--b\r\n", part(), "--b--\r\n").length}`);
  });
});
