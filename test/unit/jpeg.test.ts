import { createHash } from "node:crypto";
import jpeg from "jpeg-js";
import { describe, expect, it } from "vitest";
import { DEFAULT_JPEG_BYTES, isJpeg, makeJpeg } from "../../src/images/jpeg.ts";

const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

describe("makeJpeg", () => {
  it("makes a decodable JPEG of 20 KiB by default, labelled with its index", () => {
    const image = makeJpeg(42);
    expect(image.length).toBe(DEFAULT_JPEG_BYTES);
    expect(isJpeg(image)).toBe(true);
    const decoded = jpeg.decode(image, { useTArray: true });
    expect(decoded.width).toBeGreaterThan(100);
    expect(decoded.comments).toContain("s3-image-mover test image #42");
  });

  it.each([1024, 1500, 4096, 20_000, 65_540, 100_000, 200_000, 5 * 1024 * 1024])(
    "makes a decodable JPEG of exactly %i bytes",
    (size) => {
      const image = makeJpeg(7, size);
      expect(image.length).toBe(size);
      const decoded = jpeg.decode(image, { useTArray: true, maxMemoryUsageInMB: 64 });
      expect(decoded.width * decoded.height).toBeGreaterThan(0);
      expect(decoded.comments?.[0]).toBe("s3-image-mover test image #7");
    },
  );

  it("hits the exact size when only 1 to 3 bytes are left for padding", () => {
    const smallest = makeJpeg(1, 1).length;
    for (const size of [smallest, smallest + 1, smallest + 2, smallest + 3, smallest + 4, smallest + 5]) {
      const image = makeJpeg(1, size);
      expect(image.length).toBe(size);
      expect(jpeg.decode(image, { useTArray: true }).comments?.[0]).toMatch(/^s3-image-mover test image #1\0*$/);
    }
  });

  it("returns the smallest image it can make when asked for less", () => {
    const image = makeJpeg(3, 100);
    expect(image.length).toBeGreaterThan(100);
    expect(image.length).toBeLessThan(1024);
    expect(jpeg.decode(image, { useTArray: true }).width).toBe(8);
  });

  it("is deterministic per index and unique across 10,000 indexes", () => {
    expect(md5(makeJpeg(9, 2048))).toBe(md5(makeJpeg(9, 2048)));
    const hashes = new Set(Array.from({ length: 10_000 }, (_, i) => md5(makeJpeg(i, 2048))));
    expect(hashes.size).toBe(10_000);
  });

  it("rejects an index or size that is not a whole number", () => {
    expect(() => makeJpeg(1.5)).toThrow(TypeError);
    expect(() => makeJpeg(1, 0)).toThrow(/targetBytes/);
    expect(() => makeJpeg(1, Number.NaN)).toThrow(/targetBytes/);
  });
});

describe("isJpeg", () => {
  it("needs both the SOI and the EOI marker", () => {
    const image = makeJpeg(1, 1024);
    expect(isJpeg(image.subarray(0, image.length - 1))).toBe(false);
    expect(isJpeg(image.subarray(1))).toBe(false);
    expect(isJpeg(new Uint8Array([0x89, 0x50, 0x4e, 0x47]))).toBe(false);
    expect(isJpeg(new Uint8Array())).toBe(false);
  });
});
