import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
  type StorageClass,
} from "@aws-sdk/client-s3";
import { S3CallError } from "../errors.ts";
import type {
  CopyInput,
  CopyResult,
  DeleteResult,
  HeadResult,
  ListPageInput,
  ListPageResult,
  ObjectClient,
} from "./objectClient.ts";
import { encodeCopySource } from "./objectClient.ts";

/** ObjectClient over the AWS SDK v3: its retries, credentials and error parsing, at ~1 ms of CPU per call. */
export class SdkObjectClient implements ObjectClient {
  readonly #s3: S3Client;

  constructor(s3: S3Client) {
    this.#s3 = s3;
  }

  async listPage(bucket: string, page: ListPageInput): Promise<ListPageResult> {
    try {
      const out = await this.#s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          // The SDK's XML parser reads a carriage return in a key as a line feed; URL-encoded, every key arrives whole.
          EncodingType: "url",
          MaxKeys: page.maxKeys,
          ...(page.prefix ? { Prefix: page.prefix } : {}),
          ...(page.startAfter ? { StartAfter: page.startAfter } : {}),
          ...(page.continuationToken ? { ContinuationToken: page.continuationToken } : {}),
        }),
      );
      // Decoded only when the answer says it is encoded: a server that ignores EncodingType sends keys as they are.
      const keyOf = out.EncodingType === "url" ? decodeListedKey : (key: string) => key;
      const objects = (out.Contents ?? []).flatMap((item) =>
        item.Key === undefined
          ? []
          : [
              {
                k: keyOf(item.Key),
                e: item.ETag ?? "",
                s: item.Size ?? 0,
                ...(item.StorageClass && item.StorageClass !== "STANDARD" ? { c: item.StorageClass } : {}),
              },
            ],
      );
      return {
        objects,
        truncated: out.IsTruncated === true,
        ...(out.NextContinuationToken ? { nextContinuationToken: out.NextContinuationToken } : {}),
      };
    } catch (error) {
      throw toS3CallError(error);
    }
  }

  async copyObject(input: CopyInput): Promise<CopyResult> {
    try {
      const out = await this.#s3.send(
        new CopyObjectCommand({
          Bucket: input.toBucket,
          Key: input.key,
          CopySource: encodeCopySource(input.fromBucket, input.key),
          CopySourceIfMatch: input.ifMatch,
          // COPY is S3's default for both; stated so that no future change replaces metadata or tags by accident.
          MetadataDirective: "COPY",
          TaggingDirective: "COPY",
          ...(input.storageClass ? { StorageClass: input.storageClass as StorageClass } : {}),
        }),
      );
      const etag = out.CopyObjectResult?.ETag;
      if (!etag) throw new S3CallError("InvalidResponse", "CopyObject answered without an ETag", 200);
      return { etag };
    } catch (error) {
      throw toS3CallError(error);
    }
  }

  async deleteObjects(bucket: string, items: ReadonlyArray<{ key: string; etag?: string }>): Promise<DeleteResult> {
    if (items.length === 0) return { deleted: [], errors: [] };
    try {
      const out = await this.#s3.send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: {
            Quiet: false,
            Objects: items.map((item) => (item.etag ? { Key: item.key, ETag: item.etag } : { Key: item.key })),
          },
        }),
      );
      return {
        deleted: (out.Deleted ?? []).flatMap((d) => (d.Key === undefined ? [] : [d.Key])),
        errors: (out.Errors ?? []).map((e) => ({
          key: e.Key ?? "",
          code: e.Code ?? "UnknownError",
          message: e.Message ?? "",
        })),
      };
    } catch (error) {
      throw toS3CallError(error);
    }
  }

  async headObject(bucket: string, key: string): Promise<HeadResult | undefined> {
    try {
      const out = await this.#s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return {
        etag: out.ETag ?? "",
        size: out.ContentLength ?? 0,
        ...(out.StorageClass ? { storageClass: out.StorageClass } : {}),
      };
    } catch (error) {
      const mapped = toS3CallError(error);
      if (mapped.status === 404) return undefined;
      throw mapped;
    }
  }
}

/**
 * A key of a ListObjectsV2 answer with EncodingType=url: S3 encodes it as a form value, a space as "+" and a "+" as
 * "%2B" (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html#API_ListObjectsV2_RequestSyntax).
 */
export function decodeListedKey(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, " "));
}

/** Maps an SDK or network error to S3CallError with its S3 code and HTTP status. */
export function toS3CallError(error: unknown): S3CallError {
  if (error instanceof S3CallError) return error;
  const e = error as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const code = e.code ?? e.name ?? "UnknownError";
  return new S3CallError(code === "Error" && status === 412 ? "PreconditionFailed" : code, e.message ?? "", status, {
    cause: error,
  });
}
