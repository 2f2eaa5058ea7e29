// ListObjectsV2 for the embedded emulator in S3's order, from a sorted index kept per bucket.
//
// fauxqs 2.4.1 sorts every object of the bucket with localeCompare on every ListObjectsV2 call, then skips keys up
// to start-after with a plain `<=`. Two problems follow:
// - The two orders disagree ("B" sorts after "a" by locale, before it by code unit), so paging with start-after
//   can repeat keys or skip them for good: a move would finish with keys left behind.
// - Each page costs a sort of the whole bucket: about 10,000 localeCompare calls per 1,000 keys listed at 10,000
//   objects, and ten times that at 100,000, all on the emulator's one thread, stalling every other request.
// S3 lists in UTF-8 binary order (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html); this
// index does too, and a page costs a binary search plus the keys it returns.

import { compareUtf8 } from "../core/keyOrder.ts";

/** What the listing needs of fauxqs's S3 store: its buckets, each a Map of key to object. */
export interface ListableStore {
  buckets: Map<string, Map<string, { key: string }>>;
  listObjects(bucket: string, options?: ListOptions): ListOutput;
}

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  maxKeys?: number;
  startAfter?: string;
  marker?: string;
}

export interface ListOutput {
  objects: Array<{ key: string }>;
  commonPrefixes: string[];
  isTruncated: boolean;
}

interface BucketIndex {
  /** Keys in UTF-8 order; some may have been deleted since (checked against the Map while listing). */
  sorted: string[];
  /** Keys added since `sorted` was built, merged in at the next listing. */
  added: string[];
}

/**
 * Replaces `store.listObjects` with one served from a sorted index per bucket. A bucket's Map is watched for new
 * keys (`set` of an absent key, `clear`); deleted keys are skipped while listing, so a move, which only deletes from
 * its source, never re-sorts it.
 */
export function useSortedListing(store: ListableStore): void {
  const indexes = new WeakMap<Map<string, { key: string }>, BucketIndex>();
  const original = store.listObjects.bind(store);

  const indexOf = (objects: Map<string, { key: string }>): BucketIndex => {
    let index = indexes.get(objects);
    if (!index) {
      const created: BucketIndex = { sorted: [...objects.keys()].sort(compareUtf8), added: [] };
      // Watch the instance itself: fauxqs reaches each bucket's Map through `buckets.get` and calls these methods.
      objects.set = (key, value) => {
        if (!Map.prototype.has.call(objects, key)) created.added.push(key);
        return Map.prototype.set.call(objects, key, value) as typeof objects;
      };
      objects.clear = () => {
        created.sorted = [];
        created.added = [];
        Map.prototype.clear.call(objects);
      };
      indexes.set(objects, created);
      index = created;
    }
    if (index.added.length > 0) {
      index.sorted = mergeSorted(index.sorted, index.added.sort(compareUtf8), objects);
      index.added = [];
    }
    return index;
  };

  store.listObjects = (bucket, options = {}) => {
    const objects = store.buckets.get(bucket);
    if (!objects) return original(bucket, options); // fauxqs's NoSuchBucket error
    const { sorted } = indexOf(objects);
    const prefix = options.prefix ?? "";
    const delimiter = options.delimiter || undefined;
    const maxKeys = options.maxKeys ?? 1000;
    const startAfter = options.startAfter || options.marker || "";
    const from =
      compareUtf8(prefix, startAfter) > 0 ? firstIndex(sorted, prefix, false) : firstIndex(sorted, startAfter, true);

    const result: Array<{ key: string }> = [];
    const commonPrefixes: string[] = [];
    let count = 0;
    let isTruncated = false;
    for (let i = from; i < sorted.length; i++) {
      const key = sorted[i] as string;
      if (!key.startsWith(prefix)) break; // sorted: no key further on starts with it either
      const object = objects.get(key);
      if (!object) continue; // deleted since the index was built
      const cut = delimiter === undefined ? -1 : key.indexOf(delimiter, prefix.length);
      if (cut >= 0) {
        const common = key.slice(0, cut + (delimiter as string).length);
        if (compareUtf8(common, startAfter) <= 0 || common === commonPrefixes.at(-1)) continue;
        if (count >= maxKeys) {
          isTruncated = true;
          break;
        }
        commonPrefixes.push(common);
        count++;
        continue;
      }
      if (count >= maxKeys) {
        isTruncated = true;
        break;
      }
      result.push(object);
      count++;
    }
    return { objects: result, commonPrefixes, isTruncated };
  };
}

/** Merges sorted new keys into the sorted index, dropping keys deleted meanwhile. */
function mergeSorted(sorted: readonly string[], added: readonly string[], live: Map<string, unknown>): string[] {
  const merged: string[] = [];
  let i = 0;
  let j = 0;
  while (i < sorted.length || j < added.length) {
    const a = sorted[i];
    const b = added[j];
    const takeA = b === undefined || (a !== undefined && compareUtf8(a, b) <= 0);
    const key = (takeA ? a : b) as string;
    if (takeA) i++;
    else j++;
    if (live.has(key) && merged.at(-1) !== key) merged.push(key);
  }
  return merged;
}

/** Position of the first key after `key` (`after`), or at or after it. */
function firstIndex(sorted: readonly string[], key: string, after: boolean): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const c = compareUtf8(sorted[mid] as string, key);
    if (c < 0 || (after && c === 0)) low = mid + 1;
    else high = mid;
  }
  return low;
}
