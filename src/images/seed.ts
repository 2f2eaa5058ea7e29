import { CreateBucketCommand, HeadBucketCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import pLimit from "p-limit";
import { makeJpeg } from "./jpeg.ts";

export interface SeedOptions {
  bucket: string;
  objects: number;
  prefix?: string;
  /** Approximate size of each image. */
  bytes?: number;
  concurrency?: number;
  onProgress?: (done: number) => void;
}

/** The key of the i-th generated image. */
export const seedKey = (i: number, prefix = "") => `${prefix}img-${String(i).padStart(7, "0")}.jpg`;

/** Creates the bucket if missing and uploads `objects` generated JPEGs (image/jpeg, with an `index` metadata field). */
export async function seedBucket(s3: S3Client, options: SeedOptions): Promise<{ objects: number; bytes: number }> {
  await ensureBucket(s3, options.bucket);
  const limit = pLimit(options.concurrency ?? 64);
  let done = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: options.objects }, (_, i) =>
      limit(async () => {
        const body = makeJpeg(i, options.bytes);
        await s3.send(
          new PutObjectCommand({
            Bucket: options.bucket,
            Key: seedKey(i, options.prefix),
            Body: body,
            ContentType: "image/jpeg",
            Metadata: { index: String(i) },
          }),
        );
        bytes += body.length;
        done += 1;
        if (done % 250 === 0 || done === options.objects) options.onProgress?.(done);
      }),
    ),
  );
  return { objects: options.objects, bytes };
}

export async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  }
}
