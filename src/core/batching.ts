import type { ListedObject } from "../types.ts";

export interface BatchLimits {
  /** Keys per move message; 1,000 at most, the keys one DeleteObjects takes. */
  maxKeys: number;
  /** Estimated bytes of a move message body: SQS takes 256 KiB (1 MiB since 2025), and keys are up to 1,024 bytes. */
  maxMessageBytes: number;
  /** Bytes of objects per message, so one invocation's work stays well inside its timeout. */
  maxObjectBytes: number;
  /** Objects at least this large travel alone: one slow multipart copy should not hold a batch back. */
  aloneFromBytes: number;
}

export const DEFAULT_BATCH_LIMITS: BatchLimits = {
  maxKeys: 1000,
  maxMessageBytes: 200_000,
  maxObjectBytes: 8 * 1024 ** 3,
  aloneFromBytes: 1024 ** 3,
};

/** A move message item's bytes: the key in base64url, its ETag, size, position and storage class, in JSON. */
function itemBytes(object: ListedObject): number {
  return Math.ceil((Buffer.byteLength(object.k) * 4) / 3) + object.e.length + (object.c?.length ?? 0) + 60;
}

/**
 * Splits a page's objects into move batches, as [start, end) positions, bounded by key count, message bytes and
 * object bytes. Pure: the same page always splits the same way.
 */
export function splitIntoBatches(
  objects: readonly ListedObject[],
  limits = DEFAULT_BATCH_LIMITS,
): Array<[number, number]> {
  const batches: Array<[number, number]> = [];
  let start = 0;
  let messageBytes = 0;
  let objectBytes = 0;
  for (let i = 0; i < objects.length; i++) {
    const object = objects[i] as ListedObject;
    const bytes = itemBytes(object);
    const alone = object.s >= limits.aloneFromBytes;
    const full =
      i - start >= limits.maxKeys ||
      messageBytes + bytes > limits.maxMessageBytes ||
      objectBytes + object.s > limits.maxObjectBytes;
    if (i > start && (alone || full)) {
      batches.push([start, i]);
      start = i;
      messageBytes = 0;
      objectBytes = 0;
    }
    messageBytes += bytes;
    objectBytes += object.s;
    if (alone) {
      batches.push([i, i + 1]);
      start = i + 1;
      messageBytes = 0;
      objectBytes = 0;
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
    // Recorded as JSON: escaping can make a key with control characters six times longer.
    bytes += Buffer.byteLength(JSON.stringify(object)) + 1;
    if (bytes > maxBytes) return Math.max(i, 1);
  }
  return objects.length;
}
