import { describe, expect, it } from "vitest";
import { ODataError } from "../../src/odata/errors.js";
import { parseResourcePath } from "../../src/odata/resource-path.js";

const GUID = "0E281360-0C69-47C1-9D2A-1039E1BBEB4B";

function failure(path: string): ODataError {
  try {
    parseResourcePath(path);
  } catch (error) {
    return error as ODataError;
  }
  throw new Error(`expected ${path} to be refused`);
}

describe("parseResourcePath", () => {
  it("parses a collection", () => {
    const r = parseResourcePath("msdyn_kpieventsdata");
    expect(r.table.logicalName).toBe("msdyn_kpieventdata");
    expect(r.key).toBeUndefined();
  });

  it("parses a bare GUID key, lower-casing it", () => {
    expect(parseResourcePath(`msdyn_ciproviders(${GUID})`).key).toEqual({ kind: "id", id: GUID.toLowerCase() });
  });

  it("parses the primary key written as name=value", () => {
    expect(parseResourcePath(`msdyn_ciproviders(msdyn_ciproviderid=${GUID})`).key).toEqual({
      kind: "id",
      id: GUID.toLowerCase(),
    });
  });

  it("parses single and composite alternate keys, percent-encoded or not, with doubled quotes", () => {
    expect(parseResourcePath("msdyn_conversationsdata(msdyn_conversationid='c-42')").key).toEqual({
      kind: "alternate",
      values: { msdyn_conversationid: "c-42" },
    });
    expect(parseResourcePath("msdyn_sessionsdata(msdyn_providersessionid='s%201',msdyn_conversationid='O''Brien')").key).toEqual({
      kind: "alternate",
      values: { msdyn_providersessionid: "s 1", msdyn_conversationid: "O'Brien" },
    });
  });

  it("parses a property path and maps lookups to their _x_value names", () => {
    expect(parseResourcePath(`msdyn_kpieventsdata(${GUID})/msdyn_cifSessionId`).property?.name).toBe("msdyn_cifSessionId");
    expect(parseResourcePath(`msdyn_kpieventsdata(${GUID})/_ownerid_value`).property?.name).toBe("ownerid");
  });

  it("refuses an unknown entity set with 404 0x8006088a naming the segment", () => {
    const error = failure("accounts(1)");
    expect(error.status).toBe(404);
    expect(error.code).toBe("0x8006088a");
    expect(error.message).toBe("Resource not found for the segment 'accounts'.");
  });

  it("is case-sensitive about names", () => {
    expect(failure("MSDYN_KPIEVENTSDATA").status).toBe(404);
    expect(failure(`msdyn_kpieventsdata(${GUID})/msdyn_cifsessionid`).status).toBe(404);
  });

  it("refuses a key that is not a GUID", () => {
    const error = failure("msdyn_ciproviders(abc)");
    expect(error.status).toBe(400);
    expect(error.message).toContain("'abc' is not a valid key");
  });

  it("refuses keys that are not the declared alternate key", () => {
    for (const path of [
      "msdyn_conversationsdata(msdyn_channel='voice')",
      "msdyn_sessionsdata(msdyn_conversationid='c')",
      "msdyn_kpieventsdata(msdyn_name='x')",
    ]) {
      const error = failure(path);
      expect(error.status, path).toBe(400);
      expect(error.message).toMatch(/The key in the request URI is not valid for resource 'Microsoft\.Dynamics\.CRM\./);
    }
  });

  it("reports an unterminated literal with its position", () => {
    expect(failure("msdyn_conversationsdata(msdyn_conversationid='c-42)").message).toMatch(/unterminated literal at position 21/);
  });

  it("refuses a property of a collection and an unknown property", () => {
    expect(failure("msdyn_kpieventsdata/msdyn_name").status).toBe(404);
    expect(failure(`msdyn_kpieventsdata(${GUID})/nope`).message).toBe("Resource not found for the segment 'nope'.");
  });
});
