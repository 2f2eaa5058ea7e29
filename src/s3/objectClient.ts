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
}

export interface CopyResult {
  etag: string;
}

export interface HeadResult {
  etag: string;
  size: number;
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
