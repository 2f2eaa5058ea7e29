import { describe, expect, it } from "vitest";
import { compareUtf8 } from "../../src/core/keyOrder.ts";

describe("compareUtf8", () => {
  it("orders keys as their UTF-8 bytes do, as S3 lists them", () => {
    const keys = ["", "a", "B", "b", "ab", "aB", "a/b", "a-b", "é", "\uE000", "\uFFFD", "😀", "𝄞", "~", "0", "a\u0000"];
    const bytes = (key: string) => Buffer.from(key, "utf8");
    const expected = [...keys].sort((x, y) => Buffer.compare(bytes(x), bytes(y)));
    expect([...keys].sort(compareUtf8)).toEqual(expected);
    for (const x of keys)
      for (const y of keys) expect(Math.sign(compareUtf8(x, y))).toBe(Buffer.compare(bytes(x), bytes(y)));
  });
});
