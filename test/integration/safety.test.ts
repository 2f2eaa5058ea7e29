import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { DeleteMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { listingDeps } from "../../src/app.ts";
import { queueDepth } from "../../src/aws/queues.ts";
import { continueListing } from "../../src/core/listing.ts";
import { decodeKey } from "../../src/core/messages.ts";
import { redriveDeadLetters } from "../../src/core/redrive.ts";
import { startMove } from "../../src/core/start.ts";
import { COPY_RESERVE_MS, createMoverHandler } from "../../src/handlers/mover.ts";
import { makeJpeg } from "../../src/images/jpeg.ts";
import { seedBucket, seedKey } from "../../src/images/seed.ts";
import type { LocalApp } from "../../src/local/localApp.ts";
import { runLocalMove } from "../../src/local/localMove.ts";
import { lambdaContext } from "../../src/local/runtime.ts";
import type { ObjectClient } from "../../src/s3/objectClient.ts";
import { SdkObjectClient } from "../../src/s3/sdkObjectClient.ts";
import type { MoveMessage } from "../../src/types.ts";
import { freshBuckets, listAll, type ProxiedHarness, useProxiedHarness } from "../support/harness.ts";
import type { LoopbackProxy, ProxyRequestInfo } from "../support/proxy.ts";
import { s3Error } from "../support/s3Errors.ts";
import {
  deadLettersOf,
  listJob,
  moverContext,
  readReport,
  receiveMoveRecords,
  receiveVisible,
} from "../support/steps.ts";

const md5 = (bytes: Uint8Array) => `"${createHash("md5").update(bytes).digest("hex")}"`;

describe("nothing is lost when things break", () => {
  const harness = useProxiedHarness();

  it("completes a 2,000-object move while 10% of S3 requests fail with 500, 503 SlowDown or a dropped connection", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, copyConcurrency: 64 });
    const { from, to } = await freshBuckets(app.clients.s3, "faults");
    await seedBucket(app.clients.s3, { bucket: from, objects: 2000, bytes: 1024 });
    harness.proxy.resetCounts();
    harness.proxy.setFaults({
      rate: 0.1,
      seed: 7,
      kinds: ["500", "503", "reset"],
      only: (req) => req.service === "s3",
    });
    try {
      const result = await runLocalMove(app, app.stack, { from, to });
      expect(result.job.state).toBe("done");
      expect(result.counts).toMatchObject({ listed: 2000, moved: 2000, failed: 0, skipped: 0 });
    } finally {
      harness.proxy.setFaults(undefined);
    }
    expect(harness.proxy.counts().byOperation.CopyObject).toBeGreaterThan(2100); // ~10% were retried
    const destination = await listAll(app.clients.s3, to);
    expect(destination.size).toBe(2000);
    for (let i = 0; i < 2000; i++) expect(destination.get(seedKey(i))?.etag).toBe(md5(makeJpeg(i, 1024)));
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("sends a poison key to the DLQ with its reason, finishes the rest, and completes after redrive", async () => {
    const { app, from, to, poison } = await withPoisonKey(harness, "poison", {
      objects: 200,
      poisonIndex: 42,
      poisonAfterAttempts: 3,
    });

    const first = await runLocalMove(app, app.stack, { from, to });

    expect(first.job.state).toBe("done-with-failures");
    expect(first.counts).toMatchObject({ moved: 199, failed: 1 });
    expect((await listAll(app.clients.s3, from)).has(poison)).toBe(true); // never deleted without a copy
    const bodies = await deadLettersOf(app, first.job.id);
    expect(bodies).toHaveLength(1);
    expect(bodies[0]?.items).toHaveLength(1);
    expect(Object.values(bodies[0]?.reasons ?? {})[0]).toMatch(/AccessDenied/);
    expect((await app.store.getJob(first.job.id)).lastErrors?.[0]).toMatchObject({
      key: poison,
      reason: expect.stringMatching(/AccessDenied/),
    });

    harness.proxy.setRespond(undefined);
    const redriven = await redriveDeadLetters(app, { jobId: first.job.id });
    expect(redriven.moved.move).toBe(1);
    const second = await runLocalMove(app, app.stack, { from, to });

    expect(second.job.id).toBe(first.job.id);
    expect(second.job.state).toBe("done");
    expect(second.counts).toMatchObject({ moved: 200, failed: 0 });
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("after a redrive of several batches' letters, one move retries them all: done, every key moved, each once in the report", async () => {
    // Five batches of 50 keys each lose one key; more letters than the runtime's three movers take at once.
    const { app, from, to, poisons } = await withPoisonKey(harness, "redrive-many", {
      objects: 500,
      poisonIndex: [5, 105, 205, 305, 405],
      poisonAfterAttempts: 2,
      batchKeys: 50,
    });
    const reports = await mkdtemp(join(tmpdir(), "redrive-report-"));
    onTestFinished(() => rm(reports, { recursive: true, force: true }));
    const request = { from, to, report: `${pathToFileURL(reports).href}/` };
    const first = await runLocalMove(app, app.stack, request);
    expect(first.counts).toMatchObject({ moved: 495, failed: 5 });
    harness.proxy.setRespond(undefined);
    expect((await redriveDeadLetters(app, { jobId: first.job.id })).moved.move).toBe(5);

    const second = await runLocalMove(app, app.stack, request);

    expect(second.job).toMatchObject({ id: first.job.id, state: "done" });
    expect(second.counts).toMatchObject({ moved: 500, failed: 0 });
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
    const lines = await readReport(second.reportFile);
    expect(lines).toHaveLength(500);
    expect(new Set(lines.map((l) => l.key)).size).toBe(500);
    expect(lines.filter((l) => l.outcome !== "moved")).toEqual([]);
    expect(lines.filter((l) => poisons.has(l.key))).toHaveLength(5);
  });

  it("has a poison key's letter on the DLQ before the job is done, though the first letter could not be sent", async () => {
    const { app, from, to, poison } = await withPoisonKey(harness, "deadletterfails", {
      objects: 50,
      poisonIndex: 13,
      poisonAfterAttempts: 2,
    });
    let letters = 0;
    // The first letter to the move DLQ fails: the attempt that failed the key for good dies before its letter.
    app.clients.sqs.middlewareStack.add(
      (next, context) => async (args) => {
        const input = (args as { input?: { QueueUrl?: string } }).input;
        if (
          context.commandName === "SendMessageBatchCommand" &&
          input?.QueueUrl === app.resources.moveDeadLetterQueueUrl
        ) {
          letters += 1;
          if (letters === 1) throw new Error("injected: the DLQ did not answer");
        }
        return next(args);
      },
      { step: "initialize", name: "firstLetterFails" },
    );
    const result = await moveThenClearResponder(app, harness.proxy, from, to);

    expect(letters).toBe(2);
    expect(result.job.state).toBe("done-with-failures");
    expect(result.counts).toMatchObject({ moved: 49, failed: 1 });
    const bodies = await deadLettersOf(app, result.job.id);
    expect(bodies.flatMap((b) => b.items.map((item) => decodeKey(item.k)))).toEqual([poison]);
    expect(Object.values(bodies[0]?.reasons ?? {})).toEqual([expect.stringMatching(/AccessDenied/)]);
    expect((await redriveDeadLetters(app, { jobId: result.job.id })).moved.move).toBe(1);
    const again = await runLocalMove(app, app.stack, { from, to });
    expect(again.job.state).toBe("done");
    expect(again.counts).toMatchObject({ moved: 50, failed: 0 });
  });

  it("says why a batch failed, in the log and on the job, then finishes it on its retry", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const { from, to } = await freshBuckets(app.clients.s3, "batchfails");
    await seedBucket(app.clients.s3, { bucket: from, objects: 20, bytes: 512 });
    let copied = false;
    let refused = 0;
    // The first DynamoDB write after the copies (the batch's ledger) is refused, as a bad request is.
    harness.proxy.setRespond((req) => {
      if (req.operation === "CopyObject") copied = true;
      if (!copied || refused > 0 || req.service !== "dynamodb" || req.operation !== "PutItem") return undefined;
      refused += 1;
      return {
        status: 400,
        headers: { "content-type": "application/x-amz-json-1.0" },
        body: JSON.stringify({
          __type: "com.amazonaws.dynamodb.v20120810#ValidationException",
          message: "injected: ledger write refused",
        }),
      };
    });
    const logged = vi.spyOn(app.logger, "error").mockImplementation(() => undefined);
    let result: Awaited<ReturnType<typeof runLocalMove>>;
    let errors: unknown[][];
    try {
      result = await runLocalMove(app, app.stack, { from, to });
    } finally {
      harness.proxy.setRespond(undefined);
      errors = [...logged.mock.calls];
      logged.mockRestore();
    }

    expect(refused).toBe(1);
    expect(errors).toContainEqual([
      "batch failed; it is retried, then dead-lettered",
      expect.objectContaining({ jobId: result.job.id, page: 0, batch: 0, reason: expect.stringMatching(/injected/) }),
    ]);
    // `status` shows it too, among the job's last errors.
    expect((await app.store.getJob(result.job.id)).lastErrors).toContainEqual(
      expect.objectContaining({ key: "(batch 0.0, all its keys)", reason: expect.stringMatching(/injected/) }),
    );
    expect(result.job.state).toBe("done");
    expect(result.counts).toMatchObject({ moved: 20, failed: 0 });
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("never fails a key that S3 keeps throttling: past the poison attempt its batch goes back to the queue", async () => {
    // One try per S3 call, so each delivery meets one SlowDown; the second delivery is the poison attempt.
    const app = await harness.app({
      endpoint: harness.proxy.endpoint,
      settings: { poisonAfterAttempts: 2, s3MaxAttempts: 1 },
    });
    const { from, to } = await freshBuckets(app.clients.s3, "throttled");
    await seedBucket(app.clients.s3, { bucket: from, objects: 50, bytes: 512 });
    const throttled = seedKey(7);
    // Two deliveries of 503 SlowDown, then one more for the requeued batch, then S3 lets it through.
    const slowDowns = slowDownFirst(harness.proxy, 3, (req) => req.operation === "CopyObject" && req.key === throttled);
    const { result, deliveries } = await moveRecordingDeliveries(app, harness.proxy, from, to);

    expect(slowDowns()).toBe(3);
    // At the poison attempt the batch went back as a fresh message, so SQS's receive count started again and never
    // passed that attempt. (A receive may also be spent by an earlier test's last long poll, which hands it back.)
    expect(deliveries.some((d) => d.requeued === 1 && d.receiveCount === "1")).toBe(true);
    expect(deliveries.every((d) => Number(d.receiveCount) <= 2)).toBe(true);
    expect(result.job.state).toBe("done");
    expect(result.counts).toMatchObject({ listed: 50, moved: 50, failed: 0, skipped: 0 });
    expect(await deadLettersOf(app, result.job.id)).toHaveLength(0);
    expect((await listAll(app.clients.s3, to)).get(throttled)?.etag).toBe(md5(makeJpeg(7, 512)));
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("finishes a batch whose DeleteObjects S3 throttled past the poison attempt: requeued, copied again and deleted", async () => {
    const app = await harness.app({
      endpoint: harness.proxy.endpoint,
      settings: { poisonAfterAttempts: 2, s3MaxAttempts: 1 },
    });
    const { from, to } = await freshBuckets(app.clients.s3, "throttledelete");
    await seedBucket(app.clients.s3, { bucket: from, objects: 20, bytes: 512 });
    const slowDowns = slowDownFirst(
      harness.proxy,
      2,
      (req) => req.operation === "DeleteObjects" && req.bucket === from,
    );
    const { result, deliveries } = await moveRecordingDeliveries(app, harness.proxy, from, to);

    expect(slowDowns()).toBe(2);
    expect(deliveries.some((d) => d.requeued === 1)).toBe(true);
    expect(result.job.state).toBe("done");
    expect(result.counts).toMatchObject({ listed: 20, moved: 20, failed: 0, skipped: 0 });
    expect((await listAll(app.clients.s3, to)).size).toBe(20);
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("moves the newer version when the source is overwritten after listing (copy answers 412)", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const direct = await harness.app();
    const { from, to } = await freshBuckets(app.clients.s3, "changed");
    await seedBucket(app.clients.s3, { bucket: from, objects: 5, bytes: 512 });
    const key = seedKey(3);
    const listedEtag = md5(makeJpeg(3, 512));
    const jobId = await listJob(app, { from, to });
    const newer = makeJpeg(1003, 700);
    await direct.clients.s3.send(
      new PutObjectCommand({ Bucket: from, Key: key, Body: newer, ContentType: "image/jpeg" }),
    );
    const conditions: string[] = [];
    // The emulator ignores CopySourceIfMatch: answer 412 where S3 would, i.e. when the condition names the old ETag.
    harness.proxy.setRespond((req) => {
      if (req.operation !== "CopyObject" || req.key !== key) return undefined;
      const condition = String(req.headers["x-amz-copy-source-if-match"]);
      conditions.push(condition);
      return condition === listedEtag ? s3Error(412, "PreconditionFailed") : undefined;
    });
    try {
      const result = await runLocalMove(app, app.stack, { from, to });
      expect(result.job.id).toBe(jobId);
      expect(result.counts).toMatchObject({ moved: 5, failed: 0 });
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect(conditions).toEqual([listedEtag, md5(newer)]);
    const copied = await direct.clients.s3.send(new GetObjectCommand({ Bucket: to, Key: key }));
    expect(Buffer.from((await copied.Body?.transformToByteArray()) ?? []).equals(Buffer.from(newer))).toBe(true);
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("moves the newer version when the source is overwritten between copy and delete (delete answers 412)", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const direct = await harness.app();
    const { from, to } = await freshBuckets(app.clients.s3, "racedelete");
    await seedBucket(app.clients.s3, { bucket: from, objects: 1, bytes: 512 });
    const key = seedKey(0);
    const listedEtag = md5(makeJpeg(0, 512));
    const newer = makeJpeg(2000, 900);
    const deletes: string[] = [];
    harness.proxy.setRespond(async (req) => {
      if (req.operation !== "DeleteObjects") return undefined;
      deletes.push(req.body ?? "");
      if (deletes.length > 1) return undefined;
      // Someone writes a new version right after our copy. The emulator ignores delete conditions, so answer as S3
      // would: a delete conditional on the copied (old) ETag is refused; one without a condition is forwarded and
      // deletes the newer version, which then exists nowhere.
      await direct.clients.s3.send(new PutObjectCommand({ Bucket: from, Key: key, Body: newer }));
      return etagConditionOf(req.body, key) === listedEtag ? preconditionFailedDelete(key) : undefined;
    });
    try {
      const result = await runLocalMove(app, app.stack, { from, to });
      expect(result.counts).toMatchObject({ moved: 1, failed: 0 });
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect(deletes.map((body) => etagConditionOf(body, key))).toEqual([listedEtag, md5(newer)]);
    const head = await direct.clients.s3.send(new HeadObjectCommand({ Bucket: to, Key: key }));
    expect(head.ETag).toBe(md5(newer));
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("retries, rather than counts as moved, a key whose delete was refused and whose source then cannot be read", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, settings: { s3MaxAttempts: 1 } });
    const direct = await harness.app();
    const { from, to } = await freshBuckets(app.clients.s3, "raceheadfails");
    await seedBucket(app.clients.s3, { bucket: from, objects: 1, bytes: 512 });
    const key = seedKey(0);
    const listedEtag = md5(makeJpeg(0, 512));
    const newer = makeJpeg(2001, 900);
    let raced = false;
    let headsRefused = 0;
    harness.proxy.setRespond(async (req) => {
      if (req.operation === "DeleteObjects" && !raced) {
        raced = true;
        await direct.clients.s3.send(new PutObjectCommand({ Bucket: from, Key: key, Body: newer }));
        return etagConditionOf(req.body, key) === listedEtag ? preconditionFailedDelete(key) : undefined;
      }
      if (!raced || req.key !== key) return undefined;
      // Once the source has changed: its first HEAD fails, and S3 refuses a copy conditional on the old ETag.
      if (req.operation === "HeadObject" && req.bucket === from && headsRefused === 0) {
        headsRefused += 1;
        return s3Error(403, "AccessDenied");
      }
      if (req.operation === "CopyObject" && req.headers["x-amz-copy-source-if-match"] === listedEtag) {
        return s3Error(412, "PreconditionFailed");
      }
      return undefined;
    });
    try {
      const result = await runLocalMove(app, app.stack, { from, to });
      expect(result.counts).toMatchObject({ moved: 1, failed: 0 });
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect(headsRefused).toBe(1);
    const head = await direct.clients.s3.send(new HeadObjectCommand({ Bucket: to, Key: key }));
    expect(head.ETag).toBe(md5(newer));
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("never deletes a source whose copy does not check out: it retries, then fails the key with the reason", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, settings: { poisonAfterAttempts: 2 } });
    const { from, to } = await freshBuckets(app.clients.s3, "badcopy");
    await seedBucket(app.clients.s3, { bucket: from, objects: 10, bytes: 512 });
    const key = seedKey(7);
    let copies = 0;
    // The copy of one key "succeeds" with another object's ETag and writes nothing: what the mover must catch.
    harness.proxy.setRespond((req) => {
      if (req.operation !== "CopyObject" || req.key !== key) return undefined;
      copies += 1;
      return {
        status: 200,
        headers: { "content-type": "application/xml" },
        body: `<?xml version="1.0" encoding="UTF-8"?><CopyObjectResult><ETag>&quot;${"0".repeat(32)}&quot;</ETag><LastModified>2026-01-01T00:00:00.000Z</LastModified></CopyObjectResult>`,
      };
    });
    const result = await moveThenClearResponder(app, harness.proxy, from, to);

    // At least once: an earlier test's runtime may have left a long poll open that took the batch first, so the
    // first handling can already be the poison attempt.
    expect(copies).toBeGreaterThan(0);
    expect(result.job.state).toBe("done-with-failures");
    expect(result.counts).toMatchObject({ moved: 9, failed: 1 });
    const source = await listAll(app.clients.s3, from);
    expect([...source.keys()]).toEqual([key]);
    expect(source.get(key)?.etag).toBe(md5(makeJpeg(7, 512)));
    expect((await listAll(app.clients.s3, to)).has(key)).toBe(false);
    const letters = await deadLettersOf(app, result.job.id);
    expect(Object.values(letters[0]?.reasons ?? {})).toEqual([expect.stringMatching(/^VerificationFailed: copy of /)]);
  });

  it("moves and counts each key once when the same batch is delivered twice at the same time", async () => {
    const app = await harness.app();
    const { from, to } = await freshBuckets(app.clients.s3, "duplicate");
    await seedBucket(app.clients.s3, { bucket: from, objects: 100, bytes: 512 });
    const jobId = await listJob(app, { from, to });
    const records = await receiveMoveRecords(app, 1);
    expect(records).toHaveLength(1);
    const mover = createMoverHandler(app);
    const event = { Records: records };
    const [a, b] = await Promise.all([mover(event, moverContext()), mover(event, moverContext())]);
    expect(a.batchItemFailures).toEqual([]);
    expect(b.batchItemFailures).toEqual([]);
    const counts = await app.store.sumTotals(jobId);
    expect(counts).toMatchObject({
      listed: 100,
      moved: 100,
      movedBytes: await sizeOf(listAll(app.clients.s3, to)),
      failed: 0,
    });
    expect((await listAll(app.clients.s3, to)).size).toBe(100);
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
    expect((await app.store.getJob(jobId)).state).toBe("done");
  });

  it("reports only the failing key's record in the partial batch response, and does not redo the others", async () => {
    const copies = new Map<string, number>();
    const failing = seedKey(7);
    const app = await harness.app({
      settings: { batchKeys: 100 },
      objects: (base) => {
        const inner = new SdkObjectClient(base.clients.s3);
        const counting: ObjectClient = {
          copyObject: async (input) => {
            copies.set(input.key, (copies.get(input.key) ?? 0) + 1);
            if (input.key === failing)
              throw new (await import("../../src/errors.ts")).S3CallError("InternalError", "injected", 500);
            return inner.copyObject(input);
          },
          deleteObjects: (bucket, items) => inner.deleteObjects(bucket, items),
          listPage: (bucket, page) => inner.listPage(bucket, page),
          headObject: (bucket, key) => inner.headObject(bucket, key),
        };
        return counting;
      },
    });
    const { from, to } = await freshBuckets(app.clients.s3, "partial");
    await seedBucket(app.clients.s3, { bucket: from, objects: 150, bytes: 256 }); // two batches: 100 + 50
    await listJob(app, { from, to });
    const records = await receiveMoveRecords(app, 2);
    expect(records).toHaveLength(2);
    const mover = createMoverHandler(app);

    const first = await mover({ Records: records }, moverContext());
    const failingRecord = records.find((r) => (JSON.parse(r.body) as MoveMessage).items.length === 100);
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: failingRecord?.messageId }]);

    // SQS hands the record back with its receive count raised.
    if (!failingRecord) throw new Error("no batch of 100 keys");
    const retried = { ...failingRecord, attributes: { ...failingRecord.attributes, ApproximateReceiveCount: "2" } };
    await mover({ Records: [retried] }, moverContext());
    expect(copies.get(failing)).toBe(2);
    expect([...copies.entries()].filter(([k, n]) => k !== failing && n !== 1)).toEqual([]);
    expect((await listAll(app.clients.s3, from)).has(failing)).toBe(true);
    expect((await listAll(app.clients.s3, to)).size).toBe(149);
  });

  it("with overwrite off, skips keys whose destination differs and keeps their sources", async () => {
    const app = await harness.app();
    const { from, to } = await freshBuckets(app.clients.s3, "nooverwrite");
    await seedBucket(app.clients.s3, { bucket: from, objects: 10, bytes: 512 });
    await app.clients.s3.send(new PutObjectCommand({ Bucket: to, Key: seedKey(4), Body: "other content" }));
    await app.clients.s3.send(new PutObjectCommand({ Bucket: to, Key: seedKey(5), Body: makeJpeg(5, 512) }));

    const result = await runLocalMove(app, app.stack, { from, to, overwrite: false });

    expect(result.counts).toMatchObject({ moved: 9, skipped: 1, failed: 0 });
    expect([...(await listAll(app.clients.s3, from)).keys()]).toEqual([seedKey(4)]);
    const kept = await app.clients.s3.send(new GetObjectCommand({ Bucket: to, Key: seedKey(4) }));
    expect(await kept.Body?.transformToString()).toBe("other content");
  });
  it("cancels mid-move: queued batches are dropped unmoved, nothing is lost, and the next start opens a new job", async () => {
    const app = await harness.app({ settings: { batchKeys: 100 } }); // three messages of 100;
    const { from, to } = await freshBuckets(app.clients.s3, "cancel");
    await seedBucket(app.clients.s3, { bucket: from, objects: 300, bytes: 256 });
    const jobId = await listJob(app, { from, to });
    const mover = createMoverHandler(app);
    const first = await receiveMoveRecords(app, 1);
    expect((await mover({ Records: first }, moverContext())).batchItemFailures).toEqual([]);

    expect((await app.store.cancel(jobId)).state).toBe("cancelled");
    const rest = await receiveMoveRecords(app, 2);
    expect(rest).toHaveLength(2);
    expect((await mover({ Records: rest }, moverContext())).batchItemFailures).toEqual([]); // dropped, not retried
    expect((await app.store.getJob(jobId)).state).toBe("cancelled");
    const moved = await listAll(app.clients.s3, to);
    const left = await listAll(app.clients.s3, from);
    expect(moved.size).toBe(100);
    expect(left.size).toBe(200);
    for (const key of moved.keys()) expect(left.has(key)).toBe(false); // every key in exactly one place

    const next = await runLocalMove(app, app.stack, { from, to });
    expect(next.job.id).not.toBe(jobId);
    expect(next.job.state).toBe("done");
    expect(next.counts.moved).toBe(200);
    expect((await listAll(app.clients.s3, to)).size).toBe(300);
  });
  it("treats a list token's cursor as a hint: a stale or foreign one still lists every key once, from the job's cursor", async () => {
    const app = await harness.app({ settings: { listPageKeys: 100, batchKeys: 100 } });
    const { from, to } = await freshBuckets(app.clients.s3, "hint");
    const other = await freshBuckets(app.clients.s3, "hint-other");
    await seedBucket(app.clients.s3, { bucket: from, objects: 250, bytes: 64 });
    await seedBucket(app.clients.s3, { bucket: other.from, objects: 30, bytes: 64, prefix: "foreign/" });
    const { jobId } = await startMove(app, { from, to });
    // Tokens naming another bucket, the job's page with another cursor, the job's cursor with another page, and a
    // cursor a page behind: each must be ignored, a page at a time.
    const foreign = { from: other.from, prefix: "", seq: 0, startAfter: "" };
    let pages = 0;
    await continueListing(listingDeps(app), jobId, () => ++pages >= 1, foreign);
    const wrongCursor = { from, prefix: "", seq: (await app.store.getJob(jobId)).seq, startAfter: "" };
    pages = 0;
    await continueListing(listingDeps(app), jobId, () => ++pages >= 1, wrongCursor);
    const wrongPage = { from, prefix: "", seq: 0, startAfter: (await app.store.getJob(jobId)).startAfter };
    pages = 0;
    await continueListing(listingDeps(app), jobId, () => ++pages >= 1, wrongPage);
    expect((await app.store.getJob(jobId)).seq).toBe(3);
    const stale = { from, prefix: "", seq: 0, startAfter: "" };
    const rest = await continueListing(listingDeps(app), jobId, () => false, stale);
    expect(rest.finished).toBe(true);

    // The queue is shared with earlier tests in this file: only this job's messages count.
    const messages = (await receiveMoveRecords(app, 50)).map((r) => JSON.parse(r.body) as MoveMessage);
    const keys = messages.filter((m) => m.job === jobId).flatMap((m) => m.items.map((item) => decodeKey(item.k)));
    expect(keys.sort()).toEqual([...(await listAll(app.clients.s3, from)).keys()].sort());
    expect((await app.store.getJob(jobId)).listed).toBe(250);
  });
});

/** Seeds a source whose one key (the poison) S3 refuses to copy, 403 AccessDenied, until the responder is reset. */
async function withPoisonKey(
  harness: ProxiedHarness,
  label: string,
  options: { objects: number; poisonIndex: number | number[]; poisonAfterAttempts: number; batchKeys?: number },
) {
  const app = await harness.app({
    endpoint: harness.proxy.endpoint,
    settings: {
      poisonAfterAttempts: options.poisonAfterAttempts,
      ...(options.batchKeys ? { batchKeys: options.batchKeys } : {}),
    },
  });
  const { from, to } = await freshBuckets(app.clients.s3, label);
  await seedBucket(app.clients.s3, { bucket: from, objects: options.objects, bytes: 512 });
  const poisons = new Set([options.poisonIndex].flat().map((i) => seedKey(i)));
  harness.proxy.setRespond((req) =>
    req.operation === "CopyObject" && poisons.has(req.key ?? "") ? s3Error(403, "AccessDenied") : undefined,
  );
  return { app, from, to, poison: [...poisons][0] as string, poisons };
}

async function sizeOf(listing: Promise<Map<string, { size: number }>>): Promise<number> {
  let total = 0;
  for (const { size } of (await listing).values()) total += size;
  return total;
}

/** Runs a local move, noting each delivery of a move message, and then stops the proxy's injected answers. */
async function moveRecordingDeliveries(app: LocalApp, proxy: LoopbackProxy, from: string, to: string) {
  const deliveries: Array<{ requeued: number | undefined; receiveCount: string | undefined }> = [];
  try {
    const result = await runLocalMove(
      app,
      app.stack,
      { from, to },
      {
        wrapMover: (handler) => (event, context) => {
          for (const record of event.Records) {
            const { requeued } = JSON.parse(record.body) as MoveMessage;
            deliveries.push({ requeued, receiveCount: record.attributes.ApproximateReceiveCount });
          }
          return handler(event, context);
        },
      },
    );
    return { result, deliveries };
  } finally {
    proxy.setRespond(undefined);
  }
}

/** Answers 503 SlowDown to the first `times` requests that `match`; the function returned says how many so far. */
function slowDownFirst(proxy: LoopbackProxy, times: number, match: (req: ProxyRequestInfo) => boolean): () => number {
  let answered = 0;
  proxy.setRespond((req) => {
    if (answered >= times || !match(req)) return undefined;
    answered += 1;
    return s3Error(503, "SlowDown");
  });
  return () => answered;
}

/**
 * A job of `objects` keys whose one move message the test takes from the queue itself, as its first delivery
 * (receive count 1), to hand to the mover with a context near its timeout.
 */
async function firstMoveRecord(harness: ProxiedHarness, label: string, options: { objects: number; copies: number }) {
  const app = await harness.app({ endpoint: harness.proxy.endpoint, copyConcurrency: options.copies });
  const { from, to } = await freshBuckets(app.clients.s3, label);
  await seedBucket(app.clients.s3, { bucket: from, objects: options.objects, bytes: 256 });
  const jobId = await listJob(app, { from, to });
  const [received] = await receiveMoveRecords(app, 1);
  if (!received) throw new Error("no move message");
  const record = { ...received, attributes: { ...received.attributes, ApproximateReceiveCount: "1" } };
  return { app, from, to, jobId, record };
}

/** The same delivery at the poison attempt. */
function atPoisonAttempt(app: LocalApp, record: SQSRecord): SQSRecord {
  const count = String(app.settings.poisonAfterAttempts);
  return { ...record, attributes: { ...record.attributes, ApproximateReceiveCount: count } };
}

/** Deletes a message the test took from the move queue, as Lambda does with a processed record. */
async function deleteMoveRecord(app: LocalApp, record: SQSRecord): Promise<void> {
  await app.clients.sqs.send(
    new DeleteMessageCommand({ QueueUrl: app.resources.moveQueueUrl, ReceiptHandle: record.receiptHandle }),
  );
}

/** Takes the batch requeued past the poison attempt and moves it in a fresh invocation; returns its keys. */
async function moveRequeued(app: LocalApp, mover: ReturnType<typeof createMoverHandler>): Promise<string[]> {
  const [requeued] = await receiveMoveRecords(app, 1);
  if (!requeued) throw new Error("nothing was requeued");
  expect((await mover({ Records: [requeued] }, moverContext())).batchItemFailures).toEqual([]);
  return (JSON.parse(requeued.body) as MoveMessage).items.map((item) => decodeKey(item.k));
}

/**
 * A redriven move message's body as its dead letter had it: the redrive adds the letter's id on the DLQ (`redrive`),
 * which the mover settles on the job.
 */
function redrivenBody(record: SQSRecord): string {
  const { redrive, ...letter } = JSON.parse(record.body) as MoveMessage;
  expect(redrive).toMatch(/^[0-9a-f-]{36}$/);
  return JSON.stringify(letter);
}

/** Runs `run` once, just before `app`'s store sends a write that sets a job's state to `state`. */
function onceBeforeStateWrite(app: LocalApp, state: string, run: () => Promise<unknown>): { runs: () => number } {
  let runs = 0;
  app.clients.dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      const values = (args as { input?: { ExpressionAttributeValues?: Record<string, unknown> } }).input
        ?.ExpressionAttributeValues;
      const value = values?.[":state"]; // marshalled or not, depending on the client the store sends through
      const setting = value === state || (value as { S?: string } | undefined)?.S === state;
      if (/^Update(Item)?Command$/.test(context.commandName ?? "") && setting && runs++ === 0) await run();
      return next(args);
    },
    { step: "initialize", name: `before-${state}` },
  );
  return { runs: () => runs };
}

/** A listed job of three keys, its one move message taken from the queue, and a second app (another process). */
async function jobWithOneBatch(harness: ProxiedHarness, label: string) {
  const app = await harness.app();
  const other = await harness.app();
  const { from, to } = await freshBuckets(app.clients.s3, label);
  await seedBucket(app.clients.s3, { bucket: from, objects: 3, bytes: 16 });
  const jobId = await listJob(app, { from, to });
  const [record] = await receiveMoveRecords(app, 1);
  if (!record) throw new Error("no move message");
  return { app, other, jobId, record };
}

/** A mover's context with 1 s left before COPY_RESERVE_MS: its copies may start for 1 s. */
const nearTimeout = () => lambdaContext({ functionName: "mover", timeoutSeconds: COPY_RESERVE_MS / 1000 + 1 });

describe("a redriven letter whose first retry changes nothing", () => {
  // Its own queues: the test counts each key's copies by attempt, and a previous move's last long poll could take a
  // delivery (and its receive count) on shared ones.
  const harness = useProxiedHarness();

  it("keeps every key in the report when a redriven letter's first retry changes nothing", async () => {
    const app = await harness.app({
      endpoint: harness.proxy.endpoint,
      settings: { poisonAfterAttempts: 3, batchKeys: 50 },
    });
    const { from, to } = await freshBuckets(app.clients.s3, "report-noop");
    await seedBucket(app.clients.s3, { bucket: from, objects: 50, bytes: 64 });
    // Keys 1-9 fail twice, then move at the attempt that fails key 0 for good; its letter's first retry fails again
    // (an attempt that changes nothing), its second moves it.
    const copies = new Map<string, number>();
    const flaky = new Set(Array.from({ length: 9 }, (_, i) => seedKey(i + 1)));
    harness.proxy.setRespond((req) => {
      if (req.operation !== "CopyObject" || req.bucket !== to || !req.key) return undefined;
      const n = (copies.get(req.key) ?? 0) + 1;
      copies.set(req.key, n);
      if ((flaky.has(req.key) && n <= 2) || (req.key === seedKey(0) && n <= 4)) return s3Error(403, "AccessDenied");
      return undefined;
    });
    onTestFinished(() => harness.proxy.setRespond(undefined));
    const reports = await mkdtemp(join(tmpdir(), "report-noop-"));
    onTestFinished(() => rm(reports, { recursive: true, force: true }));
    const request = { from, to, report: `${pathToFileURL(reports).href}/` };
    const first = await runLocalMove(app, app.stack, request);
    expect(first.counts).toMatchObject({ moved: 49, failed: 1 });
    await redriveDeadLetters(app, { jobId: first.job.id });

    const second = await runLocalMove(app, app.stack, request);

    expect(copies.get(seedKey(0))).toBe(5);
    expect(second.counts).toMatchObject({ moved: 50, failed: 0 });
    const lines = await readReport(second.reportFile);
    expect(lines.map((l) => l.key)).toEqual(Array.from({ length: 50 }, (_, i) => seedKey(i)));
    expect(lines.every((l) => l.outcome === "moved")).toBe(true);
  });
});

describe("a move that finishes another job", () => {
  const harness = useProxiedHarness(); // its own queues: both jobs' letters go through them

  it("assembles that job's local report too, and says so", async () => {
    // Two jobs, each with key 3 failing (the proxy refuses its copy in any bucket).
    const { app, from, to } = await withPoisonKey(harness, "other-a", {
      objects: 40,
      poisonIndex: 3,
      poisonAfterAttempts: 2,
    });
    const b = await freshBuckets(app.clients.s3, "other-b");
    await seedBucket(app.clients.s3, { bucket: b.from, objects: 40, bytes: 64 });
    const reports = await mkdtemp(join(tmpdir(), "other-report-"));
    onTestFinished(() => rm(reports, { recursive: true, force: true }));
    const report = `${pathToFileURL(reports).href}/`;
    await runLocalMove(app, app.stack, { from, to, report });
    const jobB = (await runLocalMove(app, app.stack, { ...b, report })).job.id;
    harness.proxy.setRespond(undefined);
    await redriveDeadLetters(app); // every job's letters, as `redrive` without --job does

    const again = await runLocalMove(app, app.stack, { from, to, report });

    expect(again.job.state).toBe("done");
    expect(again.othersFinished).toEqual([{ jobId: jobB, state: "done", reportFile: join(reports, `${jobB}.jsonl`) }]);
    const lines = await readReport(join(reports, `${jobB}.jsonl`));
    expect(lines).toHaveLength(40);
    expect(lines.every((l) => l.outcome === "moved")).toBe(true);
  });
});

describe("a move after a redrive, beside another job's batches", () => {
  const harness = useProxiedHarness(); // its own queues: the other job's batches are left in them

  it("ends once its own redriven letters are settled, not when every job's batches are done", async () => {
    const { app, from, to } = await withPoisonKey(harness, "redrive-beside", {
      objects: 100,
      poisonIndex: [5, 55],
      poisonAfterAttempts: 2,
      batchKeys: 50,
    });
    const first = await runLocalMove(app, app.stack, { from, to });
    expect(first.counts).toMatchObject({ moved: 98, failed: 2 });
    expect((await redriveDeadLetters(app, { jobId: first.job.id })).moved.move).toBe(2);
    // Until its letters have run, the job is not finished (status says so, and it can be cancelled).
    expect(await app.store.completeIfResolved(first.job.id)).toBe("moving");
    // Another job's 20 batches queued behind the letters, each copy slow: they take seconds to drain.
    const other = await freshBuckets(app.clients.s3, "redrive-other");
    await seedBucket(app.clients.s3, { bucket: other.from, objects: 1000, bytes: 64 });
    harness.proxy.setRespond(async (req) => {
      if (req.operation === "CopyObject" && req.bucket === other.to) await sleep(200);
      return undefined;
    });
    onTestFinished(() => harness.proxy.setRespond(undefined));
    const otherJob = await listJob(app, other);

    const second = await runLocalMove(app, app.stack, { from, to });

    expect(second.job).toMatchObject({ id: first.job.id, state: "done" });
    expect(second.counts).toMatchObject({ moved: 100, failed: 0 });
    expect((await app.store.getJob(first.job.id)).redriven).toBeUndefined(); // both letters settled
    expect((await app.store.getJob(otherJob)).state).toBe("moving"); // its batches did not hold this move up
  });
});

describe("a job's end racing a cancel", () => {
  const harness = useProxiedHarness(); // its own queues: the test takes its job's one message by hand

  it("a job's end that finds a letter redriven since it read it leaves the job moving", async () => {
    const { app, other, jobId, record } = await jobWithOneBatch(harness, "end-redrive-race");
    // `redrive` in another terminal, between the mover's read of the job and its write.
    const noted = onceBeforeStateWrite(app, "done", () => other.store.noteRedriven(jobId, ["late-letter"]));

    expect((await createMoverHandler(app)({ Records: [record] }, moverContext())).batchItemFailures).toEqual([]);
    await deleteMoveRecord(app, record);

    expect(noted.runs()).toBe(1);
    expect(await other.store.getJob(jobId)).toMatchObject({ state: "moving", redriven: ["late-letter"] });
    await other.store.settleRedriven(jobId, "late-letter");
    expect(await other.store.completeIfResolved(jobId)).toBe("done"); // once its letter is settled
  });

  it("a job's end that finds it cancelled since it read it leaves the cancel as it was", async () => {
    const { app, other, jobId, record } = await jobWithOneBatch(harness, "end-race");
    // `cancel` in another terminal, between the mover's read of the job and its write.
    const cancels = onceBeforeStateWrite(app, "done", () => other.store.cancel(jobId));

    expect((await createMoverHandler(app)({ Records: [record] }, moverContext())).batchItemFailures).toEqual([]);
    await deleteMoveRecord(app, record);

    expect(cancels.runs()).toBe(1);
    expect((await other.store.getJob(jobId)).state).toBe("cancelled");
    expect(await app.store.sumTotals(jobId)).toMatchObject({ moved: 3 }); // its batch under way still counted
  });
});

describe("a cancel racing the job's end", () => {
  const harness = useProxiedHarness(); // its own queues: the job's batch is left in them

  it.each([
    ["delivered again", true],
    ["redriven whole", false],
  ])(
    "counts the keys a crashed attempt moved when its batch comes back %s after a cancel, and moves no more",
    async (_how, redelivered) => {
      const { app, from, to, jobId, record } = await firstMoveRecord(harness, "cancel-crashed", {
        objects: 10,
        copies: 4,
      });
      // The attempt that died had copied and deleted three keys, and recorded nothing.
      for (const i of [0, 1, 2]) {
        await app.clients.s3.send(
          new CopyObjectCommand({ Bucket: to, Key: seedKey(i), CopySource: `${from}/${seedKey(i)}` }),
        );
        await app.clients.s3.send(new DeleteObjectCommand({ Bucket: from, Key: seedKey(i) }));
      }
      await app.store.cancel(jobId);
      // Its receive count says second delivery; a whole batch SQS dead-lettered and a redrive sent back would say
      // first, and carry the redrive's id instead: both are settled, not dropped.
      const again = redelivered
        ? { ...record, attributes: { ...record.attributes, ApproximateReceiveCount: "2" } }
        : { ...record, body: JSON.stringify({ ...JSON.parse(record.body), redrive: "dlq-message-1" }) };

      expect((await createMoverHandler(app)({ Records: [again] }, moverContext())).batchItemFailures).toEqual([]);
      await deleteMoveRecord(app, record);

      expect(await app.store.sumTotals(jobId)).toMatchObject({ listed: 10, moved: 3, skipped: 0, failed: 0 });
      expect((await listAll(app.clients.s3, from)).size).toBe(7); // the rest stay, as a cancel leaves them
      expect((await listAll(app.clients.s3, to)).size).toBe(3);
      expect((await app.store.getJob(jobId)).state).toBe("cancelled");
    },
  );

  it("a move cancelled from elsewhere ends with the counts of what its batches under way still moved", async () => {
    const app = await harness.app({
      endpoint: harness.proxy.endpoint,
      copyConcurrency: 8,
      settings: { batchKeys: 40 },
    });
    const other = await harness.app(); // `cancel` in another terminal
    const { from, to } = await freshBuckets(app.clients.s3, "cancel-running");
    await seedBucket(app.clients.s3, { bucket: from, objects: 400, bytes: 64 });
    const copying = Promise.withResolvers<void>();
    harness.proxy.setRespond(async (req) => {
      if (req.operation !== "CopyObject") return undefined;
      copying.resolve();
      await sleep(50); // batches take a while: some are under way when the cancel comes
      return undefined;
    });
    onTestFinished(() => harness.proxy.setRespond(undefined));
    const moving = runLocalMove(app, app.stack, { from, to });
    await copying.promise;
    const job = (await other.store.listJobs(20)).find((j) => j.from === from);
    await other.store.cancel(job?.id ?? "no job");

    const result = await moving;

    expect(result.job.state).toBe("cancelled");
    const moved = (await listAll(app.clients.s3, to)).size;
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(400); // the queued batches were dropped unmoved
    expect((await listAll(app.clients.s3, from)).size).toBe(400 - moved);
    expect(result.counts.moved).toBe(moved);
  });

  it("a cancel that finds the job finished since it read it leaves the job's end as it was", async () => {
    const app = await harness.app();
    const other = await harness.app(); // the mover that finishes the job, in another process
    const { from, to } = await freshBuckets(app.clients.s3, "cancel-race");
    await seedBucket(app.clients.s3, { bucket: from, objects: 3, bytes: 16 });
    const jobId = await listJob(app, { from, to });
    expect((await app.store.getJob(jobId)).state).toBe("moving");
    const seen: string[] = []; // the job's state once the other process has finished it
    // The job is marked done (by a mover in another process) between the cancel's read and its write.
    onceBeforeStateWrite(app, "cancelled", async () => {
      await other.store.finishDryRun(jobId);
      seen.push((await other.store.getJob(jobId)).state);
    });

    const after = (await app.store.cancel(jobId)).state;
    expect(seen).toEqual(["done"]);
    expect(after).toBe("done");
    expect((await other.store.getJob(jobId)).state).toBe("done");
  });
});

describe("a mover invocation near its timeout", () => {
  const harness = useProxiedHarness(); // its own queues: the test hands a move message over by hand

  it("starts no copy past its deadline, records the copies it made, and leaves the rest to retry, never failed for it", async () => {
    const { app, from, to, jobId, record } = await firstMoveRecord(harness, "deadline", { objects: 10, copies: 2 });
    const mover = createMoverHandler(app);
    // Each copy takes 2 s; the invocation has 1 s before the mover's reserve, so only the first two copies start.
    harness.proxy.setRespond(async (req) => {
      if (req.operation === "CopyObject") await new Promise((resolve) => setTimeout(resolve, 2000));
      return undefined;
    });
    try {
      expect((await mover({ Records: [record] }, nearTimeout())).batchItemFailures).toEqual([
        { itemIdentifier: record.messageId },
      ]);
      expect(await app.store.sumTotals(jobId)).toMatchObject({ listed: 10, moved: 2, failed: 0 });
      expect((await listAll(app.clients.s3, to)).size).toBe(2);
      expect((await listAll(app.clients.s3, from)).size).toBe(8);
      expect((await app.store.getJob(jobId)).lastErrors?.[0]?.reason).toMatch(/^not started: .*neared its timeout/);

      // At the poison attempt, keys that never started are not failed: like throttled ones, they go back to the
      // queue as a fresh message (and the record counts as processed, so it is deleted as Lambda would).
      const logged = vi.spyOn(app.logger, "info");
      expect((await mover({ Records: [atPoisonAttempt(app, record)] }, nearTimeout())).batchItemFailures).toEqual([]);
      await deleteMoveRecord(app, record);
      expect(await app.store.sumTotals(jobId)).toMatchObject({ moved: 4, failed: 0 });
      // The log says why the batch went back: not throttling, which S3 never did here.
      expect(logged).toHaveBeenCalledWith(
        "keys not started before the invocation's timeout; batch sent back to the queue",
        expect.objectContaining({ throttled: 0, notStarted: 6 }),
      );
      expect(logged.mock.calls.map(([text]) => text)).not.toContain(
        "S3 keeps throttling; batch sent back to the queue",
      );
      logged.mockRestore();
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect(await moveRequeued(app, mover)).toHaveLength(6);
    expect(await app.store.sumTotals(jobId)).toMatchObject({ moved: 10, failed: 0 });
    expect((await app.store.getJob(jobId)).state).toBe("done");
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });
});

describe("a mover invocation near its timeout, with a copy S3 leaves unanswered", () => {
  const harness = useProxiedHarness(); // its own queues: the test hands a move message over by hand

  it("gives that copy up in time to record the batch's other keys, retries its key, and fails it with the reason at the poison attempt", async () => {
    const { app, from, jobId, record } = await firstMoveRecord(harness, "unanswered", { objects: 4, copies: 4 });
    const silent = decodeKey((JSON.parse(record.body) as MoveMessage).items[0]?.k ?? "");
    // S3 answers that key's copy only after 20 s, with a 500: a mover that waits for it records nothing in time.
    const answer = Promise.withResolvers<void>();
    let answered = false;
    setTimeout(() => {
      answered = true;
      answer.resolve();
    }, 20_000).unref();
    harness.proxy.setRespond(async (req) => {
      if (req.operation !== "CopyObject" || req.key !== silent) return undefined;
      await answer.promise;
      return { status: 500, body: "" };
    });
    const mover = createMoverHandler(app);
    // Copies may start for 1 s; those unanswered 6 s in (10 s before the timeout) are given up.
    try {
      expect((await mover({ Records: [record] }, nearTimeout())).batchItemFailures).toEqual([
        { itemIdentifier: record.messageId },
      ]);
      expect(answered).toBe(false);
      expect(await app.store.sumTotals(jobId)).toMatchObject({ listed: 4, moved: 3, failed: 0 });
      expect([...(await listAll(app.clients.s3, from)).keys()]).toEqual([silent]);
      expect((await app.store.getJob(jobId)).lastErrors?.[0]).toMatchObject({
        key: silent,
        reason: expect.stringMatching(/^copy unanswered when the mover's invocation neared its timeout/),
      });

      // At the poison attempt the key is failed with its reason and dead-lettered: a copy too long for any
      // invocation is not requeued forever.
      expect((await mover({ Records: [atPoisonAttempt(app, record)] }, nearTimeout())).batchItemFailures).toEqual([]);
      expect(answered).toBe(false);
      await deleteMoveRecord(app, record);
      expect(await app.store.sumTotals(jobId)).toMatchObject({ moved: 3, failed: 1 });
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect((await app.store.getJob(jobId)).state).toBe("done-with-failures");
    expect(JSON.stringify(await deadLettersOf(app, jobId))).toMatch(/copy unanswered .*raise the mover's timeout/);
  });
});

describe("a redrive of one job", () => {
  const harness = useProxiedHarness();

  it("reopens an ended job only while letters of it are pending: one its movers have ended since stays ended", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const { from, to } = await freshBuckets(app.clients.s3, "reopen-ended");
    await seedBucket(app.clients.s3, { bucket: from, objects: 5, bytes: 16 });
    const { job } = await runLocalMove(app, app.stack, { from, to });
    expect(job.state).toBe("done");

    await app.store.reopen(job.id); // the redrive's last step, after movers settled its letters and ended the job
    expect((await app.store.getJob(job.id)).state).toBe("done");

    await app.store.noteRedriven(job.id, ["pending-letter"]);
    expect((await app.store.getJob(job.id)).state).toBe("moving");
    await app.store.settleRedriven(job.id, "pending-letter");
  });

  it("holds the job open for the letters it sends, dropping the id an earlier redrive gave a letter SQS dead-lettered again", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const { from, to } = await freshBuckets(app.clients.s3, "redrive-ids");
    const { jobId } = await startMove(app, { from, to });
    // A letter redriven before whose batch then failed whole until SQS moved it back to the DLQ, unsettled.
    await app.store.noteRedriven(jobId, ["stale-id"]);
    const body = { job: jobId, page: 0, batch: 0, from, to, items: [], retryFailed: true, redrive: "stale-id" };
    await app.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: app.resources.moveDeadLetterQueueUrl, MessageBody: JSON.stringify(body) }),
    );

    await redriveDeadLetters(app, { jobId });

    const [record] = await receiveMoveRecords(app, 1);
    if (!record) throw new Error("nothing was redriven");
    const { redrive } = JSON.parse(record.body) as MoveMessage;
    expect(redrive).not.toBe("stale-id");
    expect((await app.store.getJob(jobId)).redriven).toEqual([redrive]);
    expect(await app.store.completeIfResolved(jobId)).not.toMatch(/^done/); // its letter is still to run
    await deleteMoveRecord(app, record);
  });

  it("moves back only that job's dead letters and hands the others back to the DLQ at once", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const letter = (job: string, page: number): string =>
      JSON.stringify({ job, page, batch: 0, from: "a", to: "b", items: [] });
    const dead = app.resources.moveDeadLetterQueueUrl;
    // Eleven of the other job's: its hand-back takes two batches of ten.
    const bodies = [letter("job-redriven", 0), ...Array.from({ length: 11 }, (_, i) => letter("job-left", i))];
    for (const body of bodies)
      await app.clients.sqs.send(new SendMessageCommand({ QueueUrl: dead, MessageBody: body }));

    const redriven = await redriveDeadLetters(app, { jobId: "job-redriven" });

    expect(redriven).toMatchObject({ moved: { move: 1, list: 0 }, jobs: ["job-redriven"] });
    const moved = await receiveMoveRecords(app, 1);
    expect(moved.map(redrivenBody)).toEqual([letter("job-redriven", 0)]);
    // Visible again now, not after the redrive's 60 s receive: a second reader gets all eleven straight away.
    const left = (await receiveVisible(app, dead)).map((message) => message.Body ?? "");
    expect(left.sort()).toEqual(bodies.slice(1).sort());
  });

  it("fails, rather than returns, when it cannot hand the other jobs' dead letters back", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const dead = app.resources.moveDeadLetterQueueUrl;
    await app.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: dead, MessageBody: JSON.stringify({ job: "job-other" }) }),
    );
    harness.proxy.setRespond((req) =>
      req.operation === "ChangeMessageVisibilityBatch" ? { status: 400, body: "{}" } : undefined,
    );
    try {
      await expect(redriveDeadLetters(app, { jobId: "job-none" })).rejects.toThrow();
    } finally {
      harness.proxy.setRespond(undefined);
    }
  });
});

describe("a redrive whose deletes SQS refuses", () => {
  const harness = useProxiedHarness(); // its own emulator: the DLQ's depth below is this describe's alone

  /** Answers the first `times` DeleteMessageBatch calls with their one entry refused (HTTP 200, as SQS does). */
  const refuseDeletes = (times: number, senderFault = false): (() => number) => {
    let calls = 0;
    harness.proxy.setRespond((req) => {
      if (req.operation !== "DeleteMessageBatch") return undefined;
      calls += 1;
      if (calls > times) return undefined;
      return {
        status: 200,
        headers: { "content-type": "application/x-amz-json-1.0" },
        body: JSON.stringify({
          Successful: [],
          Failed: senderFault
            ? [{ Id: "0", SenderFault: true, Code: "ReceiptHandleIsInvalid", Message: "refused (injected)" }]
            : [{ Id: "0", SenderFault: false, Code: "InternalError", Message: "refused (injected)" }],
        }),
      };
    });
    return () => calls;
  };

  it("tries a refused delete again, and counts the dead letters SQS keeps refusing to delete", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const dead = app.resources.moveDeadLetterQueueUrl;
    const letter = (job: string) => JSON.stringify({ job, page: 0, batch: 0, from: "a", to: "b", items: [] });
    try {
      // Refused once: the second try deletes it.
      await app.clients.sqs.send(new SendMessageCommand({ QueueUrl: dead, MessageBody: letter("job-once") }));
      let deletes = refuseDeletes(1);
      const once = await redriveDeadLetters(app, { jobId: "job-once" });
      expect(once).toMatchObject({ moved: { move: 1, list: 0 }, undeleted: 0 });
      expect(deletes()).toBe(2);
      expect(await queueDepth(app.clients.sqs, dead)).toEqual({ visible: 0, inFlight: 0 });

      // Refused every time: sent back all the same, and said to be still on the DLQ (in flight for the receive's 60 s).
      await app.clients.sqs.send(new SendMessageCommand({ QueueUrl: dead, MessageBody: letter("job-always") }));
      deletes = refuseDeletes(Number.POSITIVE_INFINITY);
      const always = await redriveDeadLetters(app, { jobId: "job-always" });
      expect(always).toMatchObject({
        moved: { move: 1, list: 0 },
        undeleted: 1,
        undeletedReason: "InternalError: refused (injected)",
      });
      expect(deletes()).toBe(5);
      expect(await queueDepth(app.clients.sqs, dead)).toEqual({ visible: 0, inFlight: 1 });
    } finally {
      harness.proxy.setRespond(undefined);
    }
    const redriven = await receiveMoveRecords(app, 2);
    expect(redriven.map(redrivenBody).sort()).toEqual([letter("job-always"), letter("job-once")]);
  });

  it("sends a letter once, even when its refused delete outlasts its visibility and it is received again", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const letter = JSON.stringify({ job: "job-again", page: 0, batch: 0, from: "a", to: "b", items: [] });
    await app.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: app.resources.moveDeadLetterQueueUrl, MessageBody: letter }),
    );
    const deletes = refuseDeletes(Number.POSITIVE_INFINITY);
    try {
      // Five refused tries take 3 s; the letter is visible again after 1 s of them, and is received again.
      const result = await redriveDeadLetters(app, { jobId: "job-again", visibilitySeconds: 1 });
      expect(result).toMatchObject({ moved: { move: 1, list: 0 }, undeleted: 1 });
      expect(deletes()).toBe(5);
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect((await receiveMoveRecords(app, 1)).map(redrivenBody)).toEqual([letter]);
  }, 20_000); // sent again and again, it would never end

  it("does not try again a delete SQS refuses as the sender's fault, and counts it", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const letter = JSON.stringify({ job: "job-sender", page: 0, batch: 0, from: "a", to: "b", items: [] });
    await app.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: app.resources.moveDeadLetterQueueUrl, MessageBody: letter }),
    );
    const deletes = refuseDeletes(Number.POSITIVE_INFINITY, true);
    try {
      const result = await redriveDeadLetters(app, { jobId: "job-sender" });
      expect(result).toMatchObject({ moved: { move: 1, list: 0 }, undeleted: 1 });
      expect(result.undeletedReason).toBe("ReceiptHandleIsInvalid: refused (injected)");
      expect(result.stoppedEarly).toBeUndefined();
      expect(deletes()).toBe(1);
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect((await receiveMoveRecords(app, 1)).map(redrivenBody)).toEqual([letter]);
  });
});

describe("a redrive whose delete requests SQS fails whole", () => {
  const harness = useProxiedHarness(); // its own emulator: the DLQ's depth below is this describe's alone

  it("stops at the first batch it cannot delete, says why, and still hands other jobs' letters back to the DLQ", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const dead = app.resources.moveDeadLetterQueueUrl;
    const letter = (job: string) => JSON.stringify({ job, page: 0, batch: 0, from: "a", to: "b", items: [] });
    await app.clients.sqs.send(new SendMessageCommand({ QueueUrl: dead, MessageBody: letter("job-mine") }));
    await app.clients.sqs.send(new SendMessageCommand({ QueueUrl: dead, MessageBody: letter("job-other") }));
    let deletes = 0;
    harness.proxy.setRespond((req) => {
      if (req.operation !== "DeleteMessageBatch") return undefined;
      deletes += 1;
      return {
        status: 403, // not one the SDK retries itself: each of redrive's tries is one request
        headers: { "content-type": "application/x-amz-json-1.0" },
        body: JSON.stringify({ __type: "com.amazonaws.sqs#AccessDenied", message: "denied (injected)" }),
      };
    });
    try {
      const result = await redriveDeadLetters(app, { jobId: "job-mine" });
      expect(result).toMatchObject({
        moved: { move: 1, list: 0 },
        jobs: ["job-mine"],
        undeleted: 1,
        stoppedEarly: true,
      });
      expect(result.undeletedReason).toMatch(/denied \(injected\)/);
      expect(deletes).toBe(5);
      // job-other's letter was handed back at once; job-mine's stays in flight for the receive's 60 s.
      expect(await queueDepth(app.clients.sqs, dead)).toEqual({ visible: 1, inFlight: 1 });
    } finally {
      harness.proxy.setRespond(undefined);
    }
    const redriven = await receiveMoveRecords(app, 1);
    expect(redriven.map(redrivenBody)).toEqual([letter("job-mine")]);
  });
});

/** The ETag condition a DeleteObjects body puts on `key`, unescaped; undefined when it has none. */
function etagConditionOf(body: string | undefined, key: string): string | undefined {
  for (const object of body?.match(/<Object>.*?<\/Object>/gs) ?? []) {
    if (!object.includes(`<Key>${key}</Key>`)) continue;
    const etag = /<ETag>(.*?)<\/ETag>/s.exec(object)?.[1];
    return etag?.replaceAll("&quot;", '"').replaceAll("&amp;", "&");
  }
  return undefined;
}

/** S3's DeleteObjects answer when a key's ETag condition does not hold. */
function preconditionFailedDelete(key: string) {
  return {
    status: 200,
    headers: { "content-type": "application/xml" },
    body: `<?xml version="1.0" encoding="UTF-8"?><DeleteResult><Error><Key>${key}</Key><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error></DeleteResult>`,
  };
}

/** A local move, with the proxy's responder cleared afterwards whatever happens. */
async function moveThenClearResponder(app: LocalApp, proxy: LoopbackProxy, from: string, to: string) {
  try {
    return await runLocalMove(app, app.stack, { from, to });
  } finally {
    proxy.setRespond(undefined);
  }
}
