/**
 * Oversized URLs and headers, and requests Node cannot parse, over a raw socket: each is
 * answered with the Dataverse error shape ({"error":{"code","message"}}) and its status
 * (400 for a URL past Dataverse's 32,768 characters, 431 for headers, 400 for bad HTTP),
 * never Node's or Fastify's own body; a URL Dataverse takes is not refused.
 */
import { type AddressInfo, connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_HEADER_BYTES, MAX_HEADER_SIZE, MAX_URL_LENGTH } from "../../src/plugins/request-limits.js";
import { type TestApp, createTestApp } from "../helpers/app.js";

const ROOT = "/api/data/v9.2";

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

describe("oversized requests", () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await createTestApp();
    await t.app.listen({ port: 0, host: "127.0.0.1" });
    port = (t.app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Writes `request` on a fresh loopback socket and reads one answer (the server closes, or 10 s pass). */
  function raw(request: string): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no answer within 10 s; got ${Buffer.concat(chunks).toString().slice(0, 200)}`));
      }, 10_000);
      socket.on("data", (chunk) => {
        chunks.push(chunk);
        // Keep-alive answers leave the socket open: stop once the whole body is in.
        const text = Buffer.concat(chunks).toString();
        const end = text.indexOf("\r\n\r\n");
        const length = /content-length: (\d+)/i.exec(text.slice(0, end))?.[1];
        if (end >= 0 && length && Buffer.byteLength(text.slice(end + 4)) >= Number(length)) socket.end();
      });
      // The server may close while the request is still being written; the answer is already in.
      socket.on("error", () => {});
      socket.on("close", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString();
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) return reject(new Error(`not an HTTP answer: '${text.slice(0, 200)}'`));
        const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
        const headers = Object.fromEntries(
          lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
        );
        resolve({ status: Number(statusLine!.split(" ")[1]), headers, body: text.slice(end + 4) });
      });
      socket.write(request);
    });
  }
  const get = (path: string, headers = "") => raw(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`);

  function expectDataverseError(answer: RawAnswer, status: number, ...fragments: string[]) {
    expect(answer.status, answer.body).toBe(status);
    expect(answer.headers["content-type"]).toMatch(/^application\/json/);
    const body = JSON.parse(answer.body) as { error: { code: string; message: string } };
    expect(Object.keys(body)).toEqual(["error"]);
    expect(Object.keys(body.error).sort()).toEqual(["code", "message"]);
    expect(body.error.code).toMatch(/^0x[0-9a-f]+$/);
    for (const fragment of fragments) expect(body.error.message).toContain(fragment);
  }

  /** A collection URL of `length` characters: a $filter whose literal fills it. */
  const urlOf = (length: number) => {
    const head = `${ROOT}/msdyn_ciproviders?$select=msdyn_name&$filter=msdyn_name%20ne%20'`;
    return `${head}${"x".repeat(length - head.length - 1)}'`;
  };

  it("takes a URL as long as Dataverse does (past Node's default 16 KiB)", async () => {
    const url = urlOf(MAX_URL_LENGTH);
    expect(url.length).toBe(MAX_URL_LENGTH);
    const answer = await get(url);
    expect(answer.status, answer.body).toBe(200);
    expect(JSON.parse(answer.body)).toHaveProperty("value");
  });

  it("a URL past 32,768 characters is a 400 with Dataverse's code and message", async () => {
    const answer = await get(urlOf(MAX_URL_LENGTH + 1));
    expectDataverseError(answer, 400, "Invalid URI: The Uri string is too long");
    expect(JSON.parse(answer.body).error.code).toBe("0x80060888");
  });

  it("headers past 16 KiB are a 431 in the Dataverse shape", async () => {
    const answer = await get(`${ROOT}/msdyn_ciproviders`, `X-Big: ${"a".repeat(MAX_HEADER_BYTES)}\r\n`);
    expectDataverseError(answer, 431, "headers", String(MAX_HEADER_BYTES));
  });

  it("a request line and headers past the parser's limit are a 431 in the Dataverse shape, not Node's", async () => {
    const answer = await get(`${ROOT}/msdyn_ciproviders`, `X-Huge: ${"a".repeat(MAX_HEADER_SIZE)}\r\n`);
    expectDataverseError(answer, 431, String(MAX_HEADER_SIZE));
    expect(answer.headers["odata-version"]).toBe("4.0");
    // A URL past that limit too.
    expectDataverseError(await get(urlOf(MAX_HEADER_SIZE + 10)), 431, String(MAX_HEADER_SIZE));
  });

  it("a request Node cannot parse is a 400 in the Dataverse shape", async () => {
    expectDataverseError(await raw("NOT HTTP AT ALL\r\n\r\n"), 400, "not valid HTTP");
    expectDataverseError(await raw(`GET ${ROOT}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Line\r\n\r\n`), 400);
  });

  it("the service still answers after each of them", async () => {
    const answer = await get(`${ROOT}/msdyn_ciproviders?$top=1`);
    expect(answer.status, answer.body).toBe(200);
  });
});
