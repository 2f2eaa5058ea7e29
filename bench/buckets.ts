// Seeding, checking and clearing the benchmark's buckets, straight against the emulator (never through the proxy).
import { createHash } from "node:crypto";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  type S3Client,
} from "@aws-sdk/client-s3";
import { makeJpeg } from "../src/images/jpeg.ts";
import { seedKey } from "../src/images/seed.ts";

export interface ExpectedObject {
  key: string;
  etag: string;
  size: number;
}

/** The seeded objects as S3 must hold them: key, ETag (quoted MD5 of the bytes, single-part) and size. */
export function expectedObjects(objects: number, bytes: number): ExpectedObject[] {
  return Array.from({ length: objects }, (_, i) => {
    const body = makeJpeg(i, bytes);
    return { key: seedKey(i), etag: `"${createHash("md5").update(body).digest("hex")}"`, size: body.length };
  });
}

export async function createBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** Every key of a bucket; at most `maxKeys` (plus one page) are read, so a runaway bucket cannot hang the bench. */
export async function listBucket(
  s3: S3Client,
  bucket: string,
  maxKeys: number,
): Promise<Map<string, { etag: string; size: number }>> {
  const keys = new Map<string, { etag: string; size: number }>();
  let token: string | undefined;
  const maxPages = Math.ceil(maxKeys / 1000) + 1;
  for (let page = 0; page < maxPages; page++) {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const item of out.Contents ?? [])
      if (item.Key) keys.set(item.Key, { etag: item.ETag ?? "", size: item.Size ?? 0 });
    token = out.NextContinuationToken;
    if (!token) break;
  }
  return keys;
}

export interface Verification {
  ok: boolean;
  /** Seeded keys absent from the destination. */
  missing: number;
  /** Present with another ETag or size. */
  wrong: number;
  /** Destination keys that were never seeded. */
  extra: number;
  /** Keys still in the source (moves only; undefined for a copy). */
  sourceLeft: number | undefined;
  /** A few offending keys, to start looking. */
  examples: string[];
}

/**
 * Checks a run's result: the destination holds exactly the seeded keys with their ETags and sizes, and, for a move,
 * the source is empty. A fast but wrong run fails here.
 */
export async function verifyRun(
  s3: S3Client,
  run: { from: string; to: string; outcome: "moved" | "copied" },
  expected: readonly ExpectedObject[],
): Promise<Verification> {
  const destination = await checkBucketHolds(s3, run.to, expected);
  if (run.outcome === "copied") return destination;
  const source = await listBucket(s3, run.from, expected.length);
  const examples = [...destination.examples];
  for (const key of [...source.keys()].slice(0, Math.max(0, 5 - examples.length)))
    examples.push(`${key}: left in source`);
  return { ...destination, ok: destination.ok && source.size === 0, sourceLeft: source.size, examples };
}

/** Whether `bucket` holds exactly the expected keys, with their ETags and sizes. */
export async function checkBucketHolds(
  s3: S3Client,
  bucket: string,
  expected: readonly ExpectedObject[],
): Promise<Verification> {
  const found = await listBucket(s3, bucket, expected.length * 2);
  const examples: string[] = [];
  let missing = 0;
  let wrong = 0;
  for (const object of expected) {
    const held = found.get(object.key);
    if (!held) missing += 1;
    else if (held.etag !== object.etag || held.size !== object.size) wrong += 1;
    else continue;
    if (examples.length < 5)
      examples.push(`${object.key}: ${held ? `ETag ${held.etag}, ${held.size} bytes` : "missing"}`);
  }
  const seeded = new Set(expected.map((object) => object.key));
  let extra = 0;
  for (const key of found.keys()) {
    if (seeded.has(key)) continue;
    extra += 1;
    if (examples.length < 5) examples.push(`${key}: not seeded`);
  }
  return { ok: missing + wrong + extra === 0, missing, wrong, extra, sourceLeft: undefined, examples };
}

/** Deletes every object and then the bucket, so the emulator's memory does not grow from run to run. */
export async function removeBucket(s3: S3Client, bucket: string, maxKeys: number): Promise<void> {
  const maxRounds = Math.ceil(maxKeys / 1000) + 2;
  for (let round = 0; round < maxRounds; round++) {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (out.Contents ?? []).flatMap((item) => (item.Key ? [{ Key: item.Key }] : []));
    if (keys.length === 0) break;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}
