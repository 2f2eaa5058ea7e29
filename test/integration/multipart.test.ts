import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { DeleteMessageCommand } from "@aws-sdk/client-sqs";
import { describe, expect, it, onTestFinished } from "vitest";
import { decodeKey } from "../../src/core/messages.ts";
import { COPY_RESERVE_MS, createMoverHandler } from "../../src/handlers/mover.ts";
import { seedBucket, seedKey } from "../../src/images/seed.ts";
import { runLocalMove } from "../../src/local/localMove.ts";
import { lambdaContext } from "../../src/local/runtime.ts";
import { multipartCopy } from "../../src/s3/multipartCopy.ts";
import { freshBuckets, listAll, useProxiedHarness } from "../support/harness.ts";
import type { ProxyRequestInfo } from "../support/proxy.ts";
import { s3Error } from "../support/s3Errors.ts";
import { deadLettersOf, listJob, readReport, receiveMoveRecords } from "../support/steps.ts";

// Objects over the multipart threshold; their own file, so that no other test's messages share these queues.
describe("multipart copies", () => {
  const harness = useProxiedHarness();

  it("moves a 12 MiB object by multipart copy with its bytes, content type, metadata and tags", async () => {
    const mib = 1024 ** 2;
    const app = await harness.app({
      endpoint: harness.proxy.endpoint,
      settings: { multipartThresholdBytes: 8 * mib, partSizeBytes: 5 * mib },
    });
    const { from, to } = await freshBuckets(app.clients.s3, "multipart");
    const body = Buffer.alloc(12 * mib);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i);
    // The emulator takes bodies up to 11 MiB: upload the source in two parts (its ETag is then not an MD5).
    await putInTwoParts(app.clients.s3, from, "big/photo.jpg", body);
    const seen: Array<{ operation: string; headers: Record<string, unknown> }> = [];
    // The emulator has no object tagging: answer GetObjectTagging as S3 would for a tagged object.
    harness.proxy.setRespond((req) => {
      if (req.service === "s3" && req.key === "big/photo.jpg")
        seen.push({ operation: req.operation, headers: req.headers });
      return req.operation === "GetObjectTagging"
        ? taggingAnswer("<Tag><Key>owner</Key><Value>ana</Value></Tag>")
        : undefined;
    });
    try {
      const result = await runLocalMove(app, app.stack, { from, to });
      expect(result.counts).toMatchObject({ moved: 1, movedBytes: 12 * mib, failed: 0 });
    } finally {
      harness.proxy.setRespond(undefined);
    }
    const operations = seen.map((s) => s.operation);
    expect(operations).toContain("CreateMultipartUpload");
    expect(operations.filter((o) => o === "UploadPartCopy")).toHaveLength(3);
    expect(operations).not.toContain("CopyObject");
    expect(seen.find((s) => s.operation === "CreateMultipartUpload")?.headers["x-amz-tagging"]).toBe("owner=ana");
    const copied = await app.clients.s3.send(new GetObjectCommand({ Bucket: to, Key: "big/photo.jpg" }));
    expect(copied.ContentType).toBe("image/jpeg");
    expect(copied.Metadata).toEqual({ camera: "x100" });
    expect(Buffer.from((await copied.Body?.transformToByteArray()) ?? []).equals(body)).toBe(true);
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("with overwrite off, skips a key whose destination holds a multipart copy, saying the ETags cannot be compared, and keeps both", async () => {
    const mib = 1024 ** 2;
    const settings = { multipartThresholdBytes: 8 * mib, partSizeBytes: 5 * mib };
    const app = await harness.app({ endpoint: harness.proxy.endpoint, settings });
    const { from, to } = await freshBuckets(app.clients.s3, "mp-nooverwrite");
    // The emulator has no object tagging: answer GetObjectTagging as S3 would for an untagged object.
    harness.proxy.setRespond((req) => (req.operation === "GetObjectTagging" ? taggingAnswer("") : undefined));
    onTestFinished(() => harness.proxy.setRespond(undefined));
    const body = Buffer.alloc(12 * mib, 7);
    await putInTwoParts(app.clients.s3, from, "big/same.jpg", body);
    // An earlier attempt's copy, whose answer was lost: the same bytes in three parts, so another ETag.
    const source = await app.clients.s3.send(new HeadObjectCommand({ Bucket: from, Key: "big/same.jpg" }));
    const earlier = await multipartCopy(app.clients.s3, {
      fromBucket: from,
      toBucket: to,
      key: "big/same.jpg",
      ifMatch: source.ETag as string,
      size: body.length,
      partSizeBytes: 5 * mib,
    });
    expect(earlier.etag).not.toBe(source.ETag);

    const reports = await mkdtemp(join(tmpdir(), "mp-report-"));
    const result = await runLocalMove(app, app.stack, {
      from,
      to,
      overwrite: false,
      report: `${pathToFileURL(reports).href}/`,
    });

    expect(result.counts).toMatchObject({ moved: 0, skipped: 1, failed: 0 });
    expect(result.job.lastErrors ?? []).toEqual([]);
    expect([...(await listAll(app.clients.s3, from)).keys()]).toEqual(["big/same.jpg"]);
    expect([...(await listAll(app.clients.s3, to)).keys()]).toEqual(["big/same.jpg"]);
    expect(await readReport(result.reportFile)).toEqual([
      expect.objectContaining({
        key: "big/same.jpg",
        outcome: "skipped",
        reason: expect.stringMatching(/^destination exists and its ETag cannot be compared with the source's/),
      }),
    ]);
    await rm(reports, { recursive: true });
  });

  it("cuts a multipart copy short before the mover's timeout, aborts its upload, records the batch's other keys, and dead-letters it with the reason", async () => {
    const mib = 1024 ** 2;
    const app = await harness.app({
      endpoint: harness.proxy.endpoint,
      settings: { multipartThresholdBytes: 8 * mib, partSizeBytes: 5 * mib, poisonAfterAttempts: 2 },
    });
    const { from, to } = await freshBuckets(app.clients.s3, "deadline");
    await seedBucket(app.clients.s3, { bucket: from, objects: 3, bytes: 512 });
    const big = "big/slow.jpg";
    await putInTwoParts(app.clients.s3, from, big, Buffer.alloc(12 * mib, 7));
    const jobId = await listJob(app, { from, to });
    const records = await receiveMoveRecords(app, 1);
    expect(records).toHaveLength(1);
    // Its first and poison attempts, whatever receive count an earlier test's lingering long poll left it with.
    const received = records[0] as (typeof records)[number];
    const record = { ...received, attributes: { ...received.attributes, ApproximateReceiveCount: "1" } };
    const seen: ProxyRequestInfo[] = [];
    // Every part copy takes 4 s; the invocation has 1 s left before the mover's reserve. The emulator has no
    // object tagging: GetObjectTagging is answered as S3 would for an untagged object.
    harness.proxy.setRespond(async (req) => {
      if (req.key === big) seen.push(req);
      if (req.operation === "GetObjectTagging") return { status: 200, body: "<Tagging><TagSet></TagSet></Tagging>" };
      if (req.operation === "UploadPartCopy") await new Promise((resolve) => setTimeout(resolve, 4000));
      return undefined;
    });
    const shortContext = () => lambdaContext({ functionName: "mover", timeoutSeconds: COPY_RESERVE_MS / 1000 + 1 });
    const mover = createMoverHandler(app);
    try {
      const first = await mover({ Records: [record] }, shortContext());
      expect(first.batchItemFailures).toEqual([{ itemIdentifier: record.messageId }]);
      const parts = seen.filter((r) => r.operation === "UploadPartCopy");
      expect(parts.length).toBeGreaterThan(0);
      const aborts = seen.filter((r) => r.operation === "AbortMultipartUpload");
      expect(aborts.map((r) => r.query.get("uploadId"))).toEqual([parts[0]?.query.get("uploadId")]);
      expect(seen.map((r) => r.operation)).not.toContain("CompleteMultipartUpload");
      // The batch's small keys are moved and recorded; the big one is retried, its source untouched.
      expect([...(await listAll(app.clients.s3, from)).keys()]).toEqual([big]);
      expect([...(await listAll(app.clients.s3, to)).keys()].sort()).toEqual([0, 1, 2].map((i) => seedKey(i)));
      expect(await app.store.sumTotals(jobId)).toMatchObject({ moved: 3, failed: 0 });
      expect((await app.store.getJob(jobId)).lastErrors?.[0]).toMatchObject({
        key: big,
        reason: expect.stringMatching(/^DeadlineReached: .*raise the timeout/),
      });

      // The poison attempt fails it for good, with the reason on its dead letter.
      const again = { ...record, attributes: { ...record.attributes, ApproximateReceiveCount: "2" } };
      expect((await mover({ Records: [again] }, shortContext())).batchItemFailures).toEqual([]);
      // As Lambda does after a batch without failures; the retry's backoff would hand it to the next test.
      await app.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: app.resources.moveQueueUrl, ReceiptHandle: record.receiptHandle }),
      );
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect((await app.store.getJob(jobId)).state).toBe("done-with-failures");
    const letters = await deadLettersOf(app, jobId);
    expect(letters.map((l) => l.items.map((item) => decodeKey(item.k)))).toEqual([[big]]);
    expect(Object.values(letters[0]?.reasons ?? {})).toEqual([
      expect.stringMatching(/^DeadlineReached: multipart copy of 12,582,912 bytes/),
    ]);
    expect([...(await listAll(app.clients.s3, from)).keys()]).toEqual([big]);
    expect((await listAll(app.clients.s3, to)).has(big)).toBe(false);
  });

  it("after a failed part copy, starts no queued part and aborts the upload only once the parts in flight have ended", async () => {
    const mib = 1024 ** 2;
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const { from, to } = await freshBuckets(app.clients.s3, "partfails");
    const key = "big/denied.jpg";
    await putInTwoParts(app.clients.s3, from, key, Buffer.alloc(12 * mib, 3));
    const { ETag } = await app.clients.s3.send(new HeadObjectCommand({ Bucket: from, Key: key }));
    const events: string[] = [];
    // Part 1 is refused at once; part 2 takes 1 s; part 3 waits for a free slot (two parts in flight).
    harness.proxy.setRespond(async (req) => {
      if (req.operation === "GetObjectTagging") return { status: 200, body: "<Tagging><TagSet></TagSet></Tagging>" };
      if (req.operation === "AbortMultipartUpload") events.push("abort");
      if (req.operation !== "UploadPartCopy") return undefined;
      const part = req.query.get("partNumber");
      events.push(`part ${part} sent`);
      if (part === "1") return s3Error(403, "AccessDenied");
      await new Promise((resolve) => setTimeout(resolve, 1000));
      events.push(`part ${part} forwarded`);
      return undefined;
    });
    try {
      await expect(
        multipartCopy(app.clients.s3, {
          fromBucket: from,
          toBucket: to,
          key,
          ifMatch: ETag ?? "",
          size: 12 * mib,
          partSizeBytes: 5 * mib,
          partConcurrency: 2,
        }),
      ).rejects.toThrow(/^AccessDenied/);
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect([...events].sort()).toEqual(["part 1 sent", "part 2 sent", "part 2 forwarded", "abort"].sort());
    expect(events.indexOf("abort")).toBeGreaterThan(events.indexOf("part 2 forwarded"));
    expect((await listAll(app.clients.s3, to)).size).toBe(0);
  });
});

/** S3's answer to GetObjectTagging for an object with these tags (`<Tag>` elements), which the emulator lacks. */
function taggingAnswer(tags: string) {
  return {
    status: 200,
    headers: { "content-type": "application/xml" },
    body: `<?xml version="1.0" encoding="UTF-8"?><Tagging><TagSet>${tags}</TagSet></Tagging>`,
  };
}

async function putInTwoParts(s3: S3Client, bucket: string, key: string, body: Buffer): Promise<void> {
  const { UploadId } = await s3.send(
    new CreateMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      ContentType: "image/jpeg",
      Metadata: { camera: "x100" },
    }),
  );
  const half = body.length / 2;
  const parts = await Promise.all(
    [body.subarray(0, half), body.subarray(half)].map(async (Body, i) => {
      const out = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body }));
      return { PartNumber: i + 1, ETag: out.ETag };
    }),
  );
  await s3.send(
    new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }),
  );
}
