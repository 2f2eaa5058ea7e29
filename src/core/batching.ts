import type { ListedObject } from "../types.ts";

export interface BatchLimits {
  /** Keys per move message. */
  maxKeys: number;
  /** Bytes of key text per move message (keys are up to 1,024 bytes; SQS bodies stay under 256 KiB). */
  maxKeyBytes: number;
  /** Objects at least this large travel alone: one slow multipart copy should not hold a batch back. */
  aloneFromBytes: number;
}

export const DEFAULT_BATCH_LIMITS: BatchLimits = {
  maxKeys: 100,
  maxKeyBytes: 60_000,
  aloneFromBytes: 1024 ** 3,
};

/**
 * Splits a page's objects into move batches, as [start, end) positions, bounded by key count, key bytes and
 * object size. Pure: the same page always splits the same way.
 */
export function splitIntoBatches(
  objects: readonly ListedObject[],
  limits = DEFAULT_BATCH_LIMITS,
): Array<[number, number]> {
  const batches: Array<[number, number]> = [];
  let start = 0;
  let keyBytes = 0;
  for (let i = 0; i < objects.length; i++) {
    const object = objects[i] as ListedObject;
    const bytes = Buffer.byteLength(object.k) + 64;
    const alone = object.s >= limits.aloneFromBytes;
    const full = i - start >= limits.maxKeys || keyBytes + bytes > limits.maxKeyBytes;
    if (i > start && (alone || full)) {
      batches.push([start, i]);
      start = i;
      keyBytes = 0;
    }
    keyBytes += bytes;
    if (alone) {
      batches.push([i, i + 1]);
      start = i + 1;
      keyBytes = 0;
    }
  }
  if (start < objects.length) batches.push([start, objects.length]);
  return batches;
}

/** Page records are DynamoDB items (400 KB at most): keep a page's recorded objects within this many bytes. */
export const MAX_PAGE_RECORD_BYTES = 350_000;

/** How many of `objects` fit in one page record. */
export function fitPageRecord(objects: readonly ListedObject[], maxBytes = MAX_PAGE_RECORD_BYTES): number {
  let bytes = 0;
  for (let i = 0; i < objects.length; i++) {
    const object = objects[i] as ListedObject;
    bytes += Buffer.byteLength(object.k) + object.e.length + 40;
    if (bytes > maxBytes) return Math.max(i, 1);
  }
  return objects.length;
}
