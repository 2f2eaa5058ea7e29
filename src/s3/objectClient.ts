import type { ListedObject } from "../types.ts";

/**
 * The S3 calls of a move's hot path, behind one small interface, so it can change (the SDK, or a lean signer over
 * undici) without touching the core. Every method throws S3CallError on failure.
 */
export interface ObjectClient {
  /** One ListObjectsV2 page of up to `maxKeys` keys after `startAfter`, under `prefix`. */
  listPage(bucket: string, page: ListPageInput): Promise<ListPageResult>;
  /** CopyObject of the source version with `ifMatch` ETag; metadata, content type and tags are copied along. */
  copyObject(input: CopyInput): Promise<CopyResult>;
  /** DeleteObjects of up to 1,000 keys, each conditional on its ETag when given. Partial success is normal. */
  deleteObjects(bucket: string, items: ReadonlyArray<{ key: string; etag?: string }>): Promise<DeleteResult>;
  /** HeadObject; undefined when the key does not exist. */
  headObject(bucket: string, key: string): Promise<HeadResult | undefined>;
}

export interface ListPageInput {
  prefix: string;
  startAfter: string;
  maxKeys: number;
  /** The previous page's NextContinuationToken: S3 then goes on from it and ignores `startAfter`. */
  continuationToken?: string;
}

export interface ListPageResult {
  objects: ListedObject[];
  /** More keys follow these. */
  truncated: boolean;
  /** Where the next page starts, when truncated. */
  nextContinuationToken?: string;
}

export interface CopyInput {
  fromBucket: string;
  toBucket: string;
  key: string;
  ifMatch: string;
  /** The storage class the copy is stored in (see keptStorageClass); omitted, S3 stores it as STANDARD. */
  storageClass?: string | undefined;
}

export interface CopyResult {
  etag: string;
}

export interface HeadResult {
  etag: string;
  size: number;
  /** S3 names it only when not STANDARD. */
  storageClass?: string;
}

export interface DeleteResult {
  deleted: string[];
  errors: Array<{ key: string; code: string; message: string }>;
}

export const MAX_KEYS_PER_DELETE = 1000; // https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html

/** CopySource is "bucket/key" URL-encoded per path segment; `+`, `%`, `?`, `#` and unicode must survive. */
export function encodeCopySource(bucket: string, key: string): string {
  return `${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * The storage classes a copy is asked to keep. A CopyObject without one stores the copy as STANDARD, so a Standard-IA
 * image would come out costing more. Archived classes (GLACIER, DEEP_ARCHIVE) are skipped before any copy; classes of
 * other kinds of bucket (EXPRESS_ONEZONE, OUTPOSTS) are no class a general purpose bucket takes, so the copy gets S3's
 * default there.
 */
const KEPT_STORAGE_CLASSES = new Set([
  "STANDARD_IA",
  "ONEZONE_IA",
  "INTELLIGENT_TIERING",
  "GLACIER_IR",
  "REDUCED_REDUNDANCY",
]);

/**
 * The storage class to ask for in the copy of an object stored in `listed`; undefined: the destination's default
 * (STANDARD). A directory bucket (its name ends in "--x-s3") takes none of the kept classes, only its own.
 */
export function keptStorageClass(listed: string | undefined, toBucket: string): string | undefined {
  if (toBucket.endsWith("--x-s3")) return undefined;
  return listed && KEPT_STORAGE_CLASSES.has(listed) ? listed : undefined;
}

/**
 * The region to send a call to again, when S3 refused it for being sent to (or signed for) another: a 301 or 307
 * redirect, or a 400 AuthorizationHeaderMalformed or IllegalLocationConstraintException (a HEAD's 400 has no body to
 * name its code), naming the bucket's region. Undefined for any other answer, so that an unrelated 400 keeps its own
 * cause, and for a region that is the one it was sent to or no region name at all (no loop). Both clients follow it.
 */
export function regionToFollow(
  answer: { status: number | undefined; code: string | undefined; head: boolean; named: string | undefined },
  sentTo: string,
): string | undefined {
  const { status, code, head, named } = answer;
  const refused =
    status === 301 ||
    status === 307 ||
    (status === 400 &&
      (head || code === "AuthorizationHeaderMalformed" || code === "IllegalLocationConstraintException"));
  return refused && named && named !== sentTo && /^[a-z0-9-]+$/.test(named) ? named : undefined;
}
