import { describe, expect, it } from "vitest";
import { DEFAULT_BATCH_LIMITS } from "../../src/core/batching.ts";
import {
  buildMoveMessage,
  deadLetterMessages,
  parseListMessage,
  parseMoveMessage,
  withoutContinuationToken,
} from "../../src/core/messages.ts";

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

describe("deadLetterMessages (a batch's poison keys, with their reasons)", () => {
  const job = { id: "j", from: "a", to: "b", overwrite: true };
  const message = buildMoveMessage(
    job,
    3,
    1,
    Array.from({ length: 1000 }, (_, i) => ({ i, object: { k: `photos/${"x".repeat(90)}-${i}.jpg`, e: '"e"', s: 9 } })),
  );

  it("puts a few failed keys in one letter, marked for redrive, with only their items and reasons", () => {
    const letters = deadLetterMessages(
      message,
      [
        { i: 7, reason: "AccessDenied: Access Denied" },
        { i: 9, reason: "VerificationFailed: sizes differ" },
      ],
      DEFAULT_BATCH_LIMITS.maxMessageBytes,
    );
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ job: "j", page: 3, batch: 1, retryFailed: true });
    expect(letters[0]?.items.map((item) => item.i)).toEqual([7, 9]);
    expect(letters[0]?.reasons).toEqual({
      "7": "AccessDenied: Access Denied",
      "9": "VerificationFailed: sizes differ",
    });
  });

  it("gives a letter made from a redriven message no redrive id: that id is not the new letter's", () => {
    const redriven = { ...message, retryFailed: true, redrive: "dlq-message-1" };
    const [letter] = deadLetterMessages(
      redriven,
      [{ i: 7, reason: "AccessDenied" }],
      DEFAULT_BATCH_LIMITS.maxMessageBytes,
    );
    expect(letter).toMatchObject({ retryFailed: true, items: [expect.objectContaining({ i: 7 })] });
    expect(letter).not.toHaveProperty("redrive");
  });

  it("cuts a whole failed batch with long reasons into letters SQS takes, each key in exactly one", () => {
    const failed = message.items.map((item) => ({ i: item.i, reason: `AccessDenied: ${"r".repeat(1000)}` }));
    const letters = deadLetterMessages(message, failed, DEFAULT_BATCH_LIMITS.maxMessageBytes);

    expect(letters.length).toBeGreaterThan(1);
    for (const letter of letters) {
      const body = JSON.stringify(letter);
      expect(Buffer.byteLength(body)).toBeLessThanOrEqual(DEFAULT_BATCH_LIMITS.maxMessageBytes);
      expect(Buffer.byteLength(body)).toBeLessThan(256 * 1024); // SQS's limit
      expect(parseMoveMessage(body).items.map((item) => item.i)).toEqual(Object.keys(letter.reasons ?? {}).map(Number));
      for (const reason of Object.values(letter.reasons ?? {})) expect(reason.length).toBeLessThanOrEqual(201);
    }
    expect(letters.flatMap((letter) => letter.items.map((item) => item.i))).toEqual(
      message.items.map((item) => item.i),
    );
  });
});
