// Test and demo images: real, decodable JPEGs of a chosen size, unique per index, at almost no cost each.
// One base image is encoded per size (jpeg-js, cached); each image is that base with a COM (comment) segment
// naming its index, padded with more COM segments to the exact size asked for.
import jpeg from "jpeg-js";

export const DEFAULT_JPEG_BYTES = 20 * 1024;

const SOI = [0xff, 0xd8];
const EOI = [0xff, 0xd9];
const COM = 0xfe;
const APP0 = 0xe0;
/** A segment's length field counts itself (2 bytes) and its payload, and is 16 bits wide. */
const MAX_SEGMENT_PAYLOAD = 0xffff - 2;
/** Segment marker (2) + length field (2). */
const SEGMENT_OVERHEAD = 4;
/** Above this the image data stays this large and comment padding makes up the rest: encoding stays cheap. */
const MAX_BASE_BYTES = 256 * 1024;
const QUALITY = 80;
/** One JPEG block; an image this small is nearly all quantization and Huffman tables (about 610 bytes). */
const MIN_SIDE = 8;
const TABLE_BYTES = 610;

const bases = new Map<number, Uint8Array>();

/**
 * A valid JPEG of exactly `targetBytes` bytes (or, below about 700 bytes, the smallest image jpeg-js writes), the
 * same bytes for the same arguments, different bytes for different indexes.
 *
 * @example
 * await s3.send(new PutObjectCommand({ Bucket, Key: `img-${i}.jpg`, Body: makeJpeg(i), ContentType: "image/jpeg" }));
 */
export function makeJpeg(index: number, targetBytes: number = DEFAULT_JPEG_BYTES): Uint8Array {
  if (!Number.isSafeInteger(index)) throw new TypeError(`Expected \`index\` to be an integer, got ${index}.`);
  if (!Number.isSafeInteger(targetBytes) || targetBytes < 1) {
    throw new TypeError(`Expected \`targetBytes\` to be a positive integer, got ${targetBytes}.`);
  }
  const base = baseImage(targetBytes);
  const label = new TextEncoder().encode(`s3-image-mover test image #${index}`);
  // After the JFIF APP0 segment, which readers expect right after SOI.
  const at = base[3] === APP0 ? 4 + ((base[4] ?? 0) << 8) + (base[5] ?? 0) : 2;
  const smallest = base.length + SEGMENT_OVERHEAD + label.length;
  const out = new Uint8Array(Math.max(targetBytes, smallest));
  out.set(base.subarray(0, at));
  // The label's comment takes up 1–3 spare bytes (too few for a segment of their own) as trailing zeros.
  const spare = out.length - smallest;
  let offset = writeComment(out, at, label.length + (spare < SEGMENT_OVERHEAD ? spare : 0));
  out.set(label, at + SEGMENT_OVERHEAD);
  // Pad with comments of zeros (the new array is zeroed already) up to the base image's tail.
  const tailAt = out.length - (base.length - at);
  while (offset < tailAt) {
    let payload = Math.min(tailAt - offset - SEGMENT_OVERHEAD, MAX_SEGMENT_PAYLOAD);
    // Never leave 1–3 bytes over: they could not hold a segment of their own.
    const rest = tailAt - offset - SEGMENT_OVERHEAD - payload;
    if (rest > 0 && rest < SEGMENT_OVERHEAD) payload -= SEGMENT_OVERHEAD;
    offset = writeComment(out, offset, payload);
  }
  out.set(base.subarray(at), tailAt);
  return out;
}

/** True when `bytes` start with a JPEG SOI marker and end with an EOI marker. */
export function isJpeg(bytes: Uint8Array): boolean {
  const n = bytes.length;
  return n >= 4 && bytes[0] === SOI[0] && bytes[1] === SOI[1] && bytes[n - 2] === EOI[0] && bytes[n - 1] === EOI[1];
}

/** The encoded image for a target size: as large as it can be while leaving room for the index comment. */
function baseImage(targetBytes: number): Uint8Array {
  // Leaves room for the index comment: at most 48 bytes ("s3-image-mover test image #" and a safe integer).
  const budget = Math.min(targetBytes, MAX_BASE_BYTES) - 64;
  const cached = bases.get(budget);
  if (cached) return cached;
  // Bytes ≈ tables + bytesPerPixel × pixels. Guess, refit once with what this picture really takes, then step
  // down until it fits. Sides are whole 8×8 blocks, where size grows steadily with the side.
  const sideFor = (bytes: number, bytesPerPixel: number) =>
    MIN_SIDE * Math.max(1, Math.floor(Math.sqrt(Math.max(0, bytes - TABLE_BYTES) / bytesPerPixel) / MIN_SIDE));
  let side = sideFor(budget, 0.65);
  let image = encodeSquare(side);
  const refit = sideFor(budget, Math.max(0.1, (image.length - TABLE_BYTES) / side ** 2));
  if (refit !== side) {
    side = refit;
    image = encodeSquare(side);
  }
  while (image.length > budget && side > MIN_SIDE) {
    side -= MIN_SIDE;
    image = encodeSquare(side);
  }
  bases.set(budget, image);
  return image;
}

/** A photo-like picture: smooth colour gradients plus seeded noise, so it compresses like a real photo does. */
function encodeSquare(side: number): Uint8Array {
  const data = new Uint8Array(side * side * 4);
  let seed = 0x9e3779b9;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
      const noise = (seed >>> 24) % 48;
      const i = (y * side + x) * 4;
      data[i] = ((x * 255) / side + noise) & 0xff;
      data[i + 1] = ((y * 255) / side + noise) & 0xff;
      data[i + 2] = (((x + y) * 127) / side + noise) & 0xff;
      data[i + 3] = 0xff;
    }
  }
  return new Uint8Array(jpeg.encode({ data, width: side, height: side }, QUALITY).data);
}

/** Writes a COM segment header for `payload` bytes at `offset`; returns where the segment ends. */
function writeComment(out: Uint8Array, offset: number, payload: number): number {
  const length = payload + 2;
  out.set([0xff, COM, length >> 8, length & 0xff], offset);
  return offset + SEGMENT_OVERHEAD + payload;
}
