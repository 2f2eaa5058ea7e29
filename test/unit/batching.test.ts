import { describe, expect, it } from "vitest";
import { fitPageRecord, splitIntoBatches } from "../../src/core/batching.ts";
import { decodeKey, encodeKey, parseMoveMessage } from "../../src/core/messages.ts";
import { countOutcomes, mergeOutcome } from "../../src/core/moving.ts";
import { ValidationError } from "../../src/errors.ts";
import type { ListedObject } from "../../src/types.ts";

const objects = (n: number, size = 10, keyLength = 10): ListedObject[] =>
  Array.from({ length: n }, (_, i) => ({ k: `${i}`.padStart(keyLength, "k"), e: '"e"', s: size }));

describe("splitIntoBatches", () => {
  it("cuts 1,000 keys into 10 batches of 100 that cover every key once", () => {
    const batches = splitIntoBatches(objects(1000));
    expect(batches).toHaveLength(10);
    expect(batches.flatMap(([a, b]) => Array.from({ length: b - a }, (_, i) => a + i))).toEqual(
      Array.from({ length: 1000 }, (_, i) => i),
    );
  });

  it("bounds a batch by key bytes", () => {
    const batches = splitIntoBatches(objects(100, 10, 1024), {
      maxKeys: 100,
      maxKeyBytes: 60_000,
      aloneFromBytes: 1e12,
    });
    expect(batches.length).toBeGreaterThan(1);
    for (const [a, b] of batches) expect((b - a) * (1024 + 64)).toBeLessThanOrEqual(60_000);
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
  it("keeps pages of long keys within a DynamoDB item", () => {
    expect(fitPageRecord(objects(1000, 1, 1024))).toBeLessThan(1000);
    expect(fitPageRecord(objects(1000))).toBe(1000);
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
