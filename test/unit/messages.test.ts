import { describe, expect, it } from "vitest";
import { parseListMessage, withoutContinuationToken } from "../../src/core/messages.ts";

describe("withoutContinuationToken (redrive of a list token)", () => {
  const cursor = { from: "b", prefix: "p/", seq: 2, startAfter: "p/k", continuationToken: "t" };

  it("drops only the cursor's continuation token", () => {
    const body = withoutContinuationToken(JSON.stringify({ job: "j", cursor }));
    expect(JSON.parse(body)).toEqual({ job: "j", cursor: { from: "b", prefix: "p/", seq: 2, startAfter: "p/k" } });
    expect(parseListMessage(body).cursor?.continuationToken).toBeUndefined();
  });

  it("leaves bodies without a token, without a cursor, or not JSON unchanged", () => {
    const { continuationToken: _t, ...plain } = cursor;
    for (const body of [
      JSON.stringify({ job: "j", cursor: plain }),
      JSON.stringify({ job: "j" }),
      "not json",
      "null",
    ]) {
      expect(withoutContinuationToken(body)).toBe(body);
    }
  });
});
