/** Admission by rows (src/db/admission.ts): beyond the bound, new work is refused before it starts. */
import { describe, expect, it } from "vitest";
import { RowAdmission, RowsInFlightError } from "../../src/db/admission.js";
import { ClientGoneError } from "../../src/db/request-signal.js";

/** A piece of work that runs until `finish` is called. */
function held() {
  let finish!: () => void;
  let fail!: (error: Error) => void;
  const done = new Promise<string>((resolve, reject) => {
    finish = () => resolve("done");
    fail = reject;
  });
  return { work: () => done, finish, fail };
}

describe("RowAdmission", () => {
  it("refuses, without running it, work whose rows would pass the bound, and admits it again once rows settle", async () => {
    const admission = new RowAdmission(1000);
    const first = held();
    const running = admission.run(600, undefined, first.work);
    expect(admission.inFlight).toBe(600);
    let ran = false;
    await expect(
      admission.run(500, undefined, async () => {
        ran = true;
      }),
    ).rejects.toBeInstanceOf(RowsInFlightError);
    expect(ran).toBe(false);
    // What still fits is admitted.
    expect(await admission.run(400, undefined, async () => admission.inFlight)).toBe(1000);
    first.finish();
    expect(await running).toBe("done");
    expect(admission.inFlight).toBe(0);
    expect(await admission.run(500, undefined, async () => "admitted")).toBe("admitted");
  });

  it("counts failed work as settled", async () => {
    const admission = new RowAdmission(10);
    const work = held();
    const running = admission.run(10, undefined, work.work);
    work.fail(new Error("refused by the database"));
    await expect(running).rejects.toThrow("refused by the database");
    expect(admission.inFlight).toBe(0);
  });

  it("admits work bigger than the bound when nothing else is in flight", async () => {
    const admission = new RowAdmission(10);
    expect(await admission.run(50, undefined, async () => "alone")).toBe("alone");
  });

  it("does not start work whose client has gone", async () => {
    const admission = new RowAdmission(10);
    const gone = new AbortController();
    gone.abort();
    let ran = false;
    await expect(
      admission.run(1, gone.signal, async () => {
        ran = true;
      }),
    ).rejects.toBeInstanceOf(ClientGoneError);
    expect(ran).toBe(false);
    expect(admission.inFlight).toBe(0);
  });
});
