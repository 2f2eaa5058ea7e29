import { CopyObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { multipartCopy } from "../../src/s3/multipartCopy.ts";
import { encodeCopySource, keptStorageClass } from "../../src/s3/objectClient.ts";
import { SdkObjectClient } from "../../src/s3/sdkObjectClient.ts";

/** An S3Client stand-in that records each command and answers from a table. */
function recordingS3(answers: Record<string, (input: Record<string, unknown>) => unknown>) {
  const sent: Array<{ name: string; input: Record<string, unknown> }> = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name.replace(/Command$/, "");
      sent.push({ name, input: command.input });
      const answer = answers[name];
      if (!answer) throw Object.assign(new Error(`unexpected ${name}`), { name: "Unexpected" });
      return answer(command.input);
    },
  } as unknown as S3Client;
  return { client, sent };
}

describe("the copy requests", () => {
  it("CopyObject is conditional on the listed ETag and copies metadata and tags along", async () => {
    const { client, sent } = recordingS3({ CopyObject: () => ({ CopyObjectResult: { ETag: '"abc"' } }) });
    await new SdkObjectClient(client).copyObject({
      fromBucket: "old",
      toBucket: "new",
      key: "a b/c+d.jpg",
      ifMatch: '"abc"',
    });
    expect(sent[0]?.name).toBe(CopyObjectCommand.name.replace(/Command$/, ""));
    expect(sent[0]?.input).toMatchObject({
      Bucket: "new",
      Key: "a b/c+d.jpg",
      CopySource: "old/a%20b/c%2Bd.jpg",
      CopySourceIfMatch: '"abc"',
      MetadataDirective: "COPY",
      TaggingDirective: "COPY",
    });
  });

  it("DeleteObjects names each key with the ETag it was copied at, so a newer version is not deleted", async () => {
    const { client, sent } = recordingS3({ DeleteObjects: () => ({ Deleted: [{ Key: "a.jpg" }, { Key: "b.jpg" }] }) });
    const out = await new SdkObjectClient(client).deleteObjects("old", [
      { key: "a.jpg", etag: '"e1"' },
      { key: "b.jpg", etag: '"e2"' },
    ]);
    expect(sent.map((s) => s.name)).toEqual(["DeleteObjects"]);
    expect(sent[0]?.input).toMatchObject({
      Bucket: "old",
      Delete: {
        Objects: [
          { Key: "a.jpg", ETag: '"e1"' },
          { Key: "b.jpg", ETag: '"e2"' },
        ],
      },
    });
    expect(out.deleted).toEqual(["a.jpg", "b.jpg"]);
  });

  it("encodes CopySource per path segment", () => {
    expect(encodeCopySource("b", "x/?#%/日本.jpg")).toBe("b/x/%3F%23%25/%E6%97%A5%E6%9C%AC.jpg");
  });

  it("a multipart copy is stored in its source's class, when a general purpose bucket takes that class", async () => {
    const createdIn = async (storageClass: string) => {
      const { client, sent } = recordingS3({
        HeadObject: () => ({ StorageClass: storageClass }),
        GetObjectTagging: () => ({ TagSet: [] }),
        CreateMultipartUpload: () => ({ UploadId: "u1" }),
        UploadPartCopy: (input) => ({ CopyPartResult: { ETag: `"p${input.PartNumber}"` } }),
        CompleteMultipartUpload: () => ({ ETag: '"whole-2"' }),
      });
      const copy = { fromBucket: "old", toBucket: "new", key: "big.jpg", ifMatch: '"e"' };
      await multipartCopy(client, { ...copy, size: 10 * 1024 ** 2, partSizeBytes: 5 * 1024 ** 2 });
      return sent.find((s) => s.name === "CreateMultipartUpload")?.input.StorageClass;
    };
    expect(await createdIn("STANDARD_IA")).toBe("STANDARD_IA");
    expect(await createdIn("GLACIER_IR")).toBe("GLACIER_IR");
    expect(await createdIn("EXPRESS_ONEZONE")).toBeUndefined();
  });

  it("keeps the classes of general purpose buckets other than STANDARD, and no other, nor into a directory bucket", () => {
    for (const kept of ["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "REDUCED_REDUNDANCY"]) {
      expect(keptStorageClass(kept, "new")).toBe(kept);
      expect(keptStorageClass(kept, "new--usw2-az1--x-s3")).toBeUndefined(); // a directory bucket takes its own only
    }
    for (const other of [undefined, "", "STANDARD", "GLACIER", "DEEP_ARCHIVE", "EXPRESS_ONEZONE", "OUTPOSTS"]) {
      expect(keptStorageClass(other, "new")).toBeUndefined();
    }
  });

  it("multipart copy carries content type, metadata and tags to the new upload, and parts are conditional", async () => {
    const { client, sent } = recordingS3({
      HeadObject: () => ({ ContentType: "image/jpeg", Metadata: { camera: "x100" }, CacheControl: "max-age=60" }),
      GetObjectTagging: () => ({
        TagSet: [
          { Key: "owner", Value: "ana & bo" },
          { Key: "year", Value: "2024" },
        ],
      }),
      CreateMultipartUpload: () => ({ UploadId: "u1" }),
      UploadPartCopy: (input) => ({ CopyPartResult: { ETag: `"p${input.PartNumber}"` } }),
      CompleteMultipartUpload: () => ({ ETag: '"whole-3"' }),
    });
    const size = 12 * 1024 ** 2;
    await multipartCopy(client, {
      fromBucket: "old",
      toBucket: "new",
      key: "big.jpg",
      ifMatch: '"e"',
      size,
      partSizeBytes: 5 * 1024 ** 2,
    });

    // The metadata comes from the listed version only: HeadObject is conditional like the parts.
    expect(sent.find((s) => s.name === "HeadObject")?.input).toMatchObject({
      Bucket: "old",
      Key: "big.jpg",
      IfMatch: '"e"',
    });
    const create = sent.find((s) => s.name === "CreateMultipartUpload")?.input;
    expect(create).toMatchObject({
      ContentType: "image/jpeg",
      Metadata: { camera: "x100" },
      CacheControl: "max-age=60",
      Tagging: "owner=ana+%26+bo&year=2024",
    });
    const parts = sent.filter((s) => s.name === "UploadPartCopy").map((s) => s.input);
    expect(parts.map((p) => p.CopySourceRange)).toEqual([
      `bytes=0-${5 * 1024 ** 2 - 1}`,
      `bytes=${5 * 1024 ** 2}-${10 * 1024 ** 2 - 1}`,
      `bytes=${10 * 1024 ** 2}-${size - 1}`,
    ]);
    expect(parts.every((p) => p.CopySourceIfMatch === '"e"')).toBe(true);
  });

  it("aborts the multipart upload when a part fails, leaving no parts behind", async () => {
    const { client, sent } = recordingS3({
      HeadObject: () => ({}),
      GetObjectTagging: () => ({ TagSet: [] }),
      CreateMultipartUpload: () => ({ UploadId: "u2" }),
      UploadPartCopy: () => {
        throw Object.assign(new Error("boom"), { name: "InternalError", $metadata: { httpStatusCode: 500 } });
      },
      AbortMultipartUpload: () => ({}),
    });
    await expect(
      multipartCopy(client, {
        fromBucket: "o",
        toBucket: "n",
        key: "k",
        ifMatch: '"e"',
        size: 11 * 1024 ** 2,
        partSizeBytes: 5 * 1024 ** 2,
      }),
    ).rejects.toThrow(/InternalError/);
    expect(sent.find((s) => s.name === "AbortMultipartUpload")?.input).toMatchObject({ UploadId: "u2", Key: "k" });
  });
});
