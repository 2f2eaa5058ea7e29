import { describe, expect, it } from "vitest";
import {
  DEFAULT_BATCH_LIMITS,
  fitPageRecord,
  MAX_PAGE_RECORD_BYTES,
  splitIntoBatches,
} from "../../src/core/batching.ts";
import { buildMoveMessage, decodeKey, encodeKey, parseMoveMessage } from "../../src/core/messages.ts";
import { countOutcomes, mergeOutcome } from "../../src/core/moving.ts";
import { ValidationError } from "../../src/errors.ts";
import type { ListedObject } from "../../src/types.ts";

const objects = (n: number, size = 10, keyLength = 10): ListedObject[] =>
  Array.from({ length: n }, (_, i) => ({ k: `${i}`.padStart(keyLength, "k"), e: '"e"', s: size }));

const job = { id: "j", from: "a", to: "b", overwrite: true };
const positions = (batches: Array<[number, number]>) =>
  batches.flatMap(([a, b]) => Array.from({ length: b - a }, (_, i) => a + i));

describe("splitIntoBatches", () => {
  it("puts a page of 1,000 short keys in one message, or in 10 of 100 when asked, covering every key once", () => {
    expect(splitIntoBatches(objects(1000))).toEqual([[0, 1000]]);
    const batches = splitIntoBatches(objects(1000), { ...DEFAULT_BATCH_LIMITS, maxKeys: 100 });
    expect(batches).toHaveLength(10);
    expect(positions(batches)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it("keeps every message body of 1,024-byte keys under SQS's 256 KiB", () => {
    const list = objects(1000, 10, 1024);
    const batches = splitIntoBatches(list);
    expect(batches.length).toBeGreaterThan(1);
    expect(positions(batches)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    for (const [n, [a, b]] of batches.entries()) {
      const message = buildMoveMessage(
        job,
        0,
        0,
        list.slice(a, b).map((object, i) => ({ i, object })),
      );
      const bytes = Buffer.byteLength(JSON.stringify(message));
      expect(bytes).toBeLessThanOrEqual(DEFAULT_BATCH_LIMITS.maxMessageBytes);
      expect(bytes).toBeLessThan(256 * 1024); // SQS's limit, with room for the attributes
      if (n < batches.length - 1) expect(bytes).toBeGreaterThan(DEFAULT_BATCH_LIMITS.maxMessageBytes * 0.9); // full
    }
  });

  it("bounds the object bytes of a message", () => {
    const batches = splitIntoBatches(objects(100, 300 * 1024 ** 2)); // 300 MiB each, 8 GiB a message
    expect(batches.map(([a, b]) => b - a)).toEqual([27, 27, 27, 19]);
  });

  it("sends a large object alone", () => {
    const list = objects(5);
    (list[2] as ListedObject).s = 2 * 1024 ** 3;
    expect(splitIntoBatches(list)).toEqual([
      [0, 2],
      [2, 3],
      [3, 5],
    ]);
  });
});

describe("fitPageRecord", () => {
  it("keeps pages of long keys within a DynamoDB item, counting JSON escapes", () => {
    expect(fitPageRecord(objects(1000, 1, 1024))).toBeLessThan(1000);
    expect(fitPageRecord(objects(1000))).toBe(1000);
    const control = Array.from({ length: 1000 }, (_, i) => ({ k: `${i}`.padStart(1024, "\u0001"), e: '"e"', s: 1 }));
    const fit = fitPageRecord(control);
    expect(Buffer.byteLength(JSON.stringify(control.slice(0, fit)))).toBeLessThanOrEqual(MAX_PAGE_RECORD_BYTES);
    expect(Buffer.byteLength(JSON.stringify(control.slice(0, fit + 1)))).toBeGreaterThan(MAX_PAGE_RECORD_BYTES);
  });
});

describe("messages", () => {
  it("round-trips keys that SQS could not carry as text", () => {
    for (const key of ["a\uFFFEb", "\u0001ctrl", "日本語", "x".repeat(1024)])
      expect(decodeKey(encodeKey(key))).toBe(key);
  });

  it("rejects malformed move messages", () => {
    expect(() => parseMoveMessage("{nope")).toThrow(ValidationError);
    expect(() => parseMoveMessage('{"job":"j"}')).toThrow(/Not a move message/);
  });
});

describe("outcomes", () => {
  it("moved wins over everything and is never overridden", () => {
    expect(mergeOutcome({ o: "m", b: 1 }, { o: "f", r: "x" })).toEqual({ o: "m", b: 1 });
    expect(mergeOutcome({ o: "f", r: "x" }, { o: "m", b: 1 })).toEqual({ o: "m", b: 1 });
    expect(mergeOutcome({ o: "s", r: "gone" }, { o: "f", r: "x" })).toEqual({ o: "s", r: "gone" });
    expect(mergeOutcome(undefined, { o: "p", e: '"n"', s: 3 })).toEqual({ o: "p", e: '"n"', s: 3 });
    // A redelivery that finds the source changed or gone never takes a moved key back.
    expect(mergeOutcome({ o: "m", b: 1 }, { o: "s", r: "gone" })).toEqual({ o: "m", b: 1 });
    expect(mergeOutcome({ o: "m", b: 1 }, { o: "p", e: '"n"', s: 3 })).toEqual({ o: "m", b: 1 });
  });

  it("counts each key by its one outcome", () => {
    expect(
      countOutcomes({
        0: { o: "m", b: 5 },
        1: { o: "m", b: 7 },
        2: { o: "s", r: "" },
        3: { o: "f", r: "" },
        4: { o: "p", e: "", s: 1 },
      }),
    ).toEqual({ moved: 2, movedBytes: 12, skipped: 1, failed: 1 });
  });
});
