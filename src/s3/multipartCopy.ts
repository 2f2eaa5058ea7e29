import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  type S3Client,
  type StorageClass,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import pLimit from "p-limit";
import { S3CallError } from "../errors.ts";
import { type CopyInput, type CopyResult, encodeCopySource, keptStorageClass } from "./objectClient.ts";
import { toS3CallError } from "./sdkObjectClient.ts";

const MAX_PARTS = 10_000; // https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
const MIN_PART_BYTES = 5 * 1024 ** 2;

/**
 * Copies one large object with parallel UploadPartCopy. Multipart copy does not carry metadata or tags by itself,
 * so they are read from the source (HeadObject, GetObjectTagging) and given to CreateMultipartUpload. Every part is
 * conditional on the listed ETag. On any failure the upload is aborted, so no billable parts are left behind: after a
 * failed part, once the parts in flight have ended (a part that lands after the abort would be kept and billed).
 *
 * `stopAt` (the invocation's deadline) cuts the copy short when it fires: the parts in flight are cancelled, the
 * upload aborted, and a `DeadlineReached` error thrown, so the batch still has time to record its other keys.
 */
export async function multipartCopy(
  s3: S3Client,
  input: CopyInput & { size: number; partSizeBytes: number; partConcurrency?: number; stopAt?: AbortSignal },
): Promise<CopyResult> {
  const copySource = encodeCopySource(input.fromBucket, input.key);
  const partSize = Math.max(input.partSizeBytes, Math.ceil(input.size / MAX_PARTS), MIN_PART_BYTES);
  const send = input.stopAt ? { abortSignal: input.stopAt } : {};
  let uploadId: string | undefined;
  let partFailure: { error: unknown } | undefined;
  try {
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: input.fromBucket, Key: input.key, IfMatch: input.ifMatch }),
      send,
    );
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: input.fromBucket, Key: input.key }), send);
    const tagging = new URLSearchParams(
      (tags.TagSet ?? []).map((t): [string, string] => [t.Key ?? "", t.Value ?? ""]),
    ).toString();
    const created = await s3.send(
      new CreateMultipartUploadCommand({
        Bucket: input.toBucket,
        Key: input.key,
        ContentType: head.ContentType,
        ContentEncoding: head.ContentEncoding,
        ContentDisposition: head.ContentDisposition,
        ContentLanguage: head.ContentLanguage,
        CacheControl: head.CacheControl,
        Expires: head.Expires,
        Metadata: head.Metadata,
        ...(tagging ? { Tagging: tagging } : {}),
        // The source's own class, as a single CopyObject keeps it (keptStorageClass).
        StorageClass: keptStorageClass(head.StorageClass, input.toBucket) as StorageClass | undefined,
      }),
      send,
    );
    uploadId = created.UploadId;
    const parts: Array<{ start: number; end: number; number: number }> = [];
    for (let start = 0, number = 1; start < input.size; start += partSize, number++) {
      parts.push({ start, end: Math.min(start + partSize, input.size) - 1, number });
    }
    const limit = pLimit(input.partConcurrency ?? 16);
    // allSettled, not all: the upload is completed or aborted only once no part of ours is in flight.
    const settled = await Promise.allSettled(
      parts.map((part) =>
        limit(async () => {
          input.stopAt?.throwIfAborted();
          if (partFailure) throw partFailure.error; // queued parts do not start after one has failed
          try {
            const out = await s3.send(
              new UploadPartCopyCommand({
                Bucket: input.toBucket,
                Key: input.key,
                UploadId: uploadId,
                PartNumber: part.number,
                CopySource: copySource,
                CopySourceIfMatch: input.ifMatch,
                CopySourceRange: `bytes=${part.start}-${part.end}`,
              }),
              send,
            );
            return { PartNumber: part.number, ETag: out.CopyPartResult?.ETag };
          } catch (error) {
            if (!input.stopAt?.aborted) partFailure ??= { error };
            throw error;
          }
        }),
      ),
    );
    input.stopAt?.throwIfAborted();
    if (partFailure) throw partFailure.error;
    const copied = settled.flatMap((part) => (part.status === "fulfilled" ? [part.value] : []));
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: input.toBucket,
        Key: input.key,
        UploadId: uploadId,
        MultipartUpload: { Parts: copied },
      }),
      send,
    );
    return { etag: done.ETag ?? "" };
  } catch (error) {
    if (uploadId) {
      await s3
        .send(new AbortMultipartUploadCommand({ Bucket: input.toBucket, Key: input.key, UploadId: uploadId }))
        .catch(() => undefined); // a bucket lifecycle rule (AbortIncompleteMultipartUpload) catches the rest
    }
    if (input.stopAt?.aborted && !partFailure) {
      throw new S3CallError(
        "DeadlineReached",
        `multipart copy of ${input.size.toLocaleString("en-US")} bytes stopped unfinished near the mover's timeout, upload aborted; raise the timeout (up to 900 s) if it recurs`,
        undefined,
        { cause: error },
      );
    }
    throw toS3CallError(error);
  }
}
