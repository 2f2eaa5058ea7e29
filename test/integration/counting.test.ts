import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeKey } from "../../src/core/messages.ts";
import { startMove } from "../../src/core/start.ts";
import { formatJobList, formatStatus, jobStatus, recentJobs } from "../../src/core/status.ts";
import { createMoverHandler } from "../../src/handlers/mover.ts";
import { seedBucket, seedKey } from "../../src/images/seed.ts";
import { runLocalMove } from "../../src/local/localMove.ts";
import type { SqsHandler } from "../../src/local/runtime.ts";
import type { Job } from "../../src/types.ts";
import { freshBuckets, listAll, useProxiedHarness } from "../support/harness.ts";
import { deadLettersOf, listJob, moverContext, readReport, receiveMoveRecords } from "../support/steps.ts";

/** Every batch delivered twice at once, as SQS's at-least-once delivery may do. */
const deliverTwice =
  (handler: SqsHandler): SqsHandler =>
  async (event, context) => {
    const [a, b] = await Promise.all([handler(event, context), handler(event, context)]);
    const failed = new Set([...a.batchItemFailures, ...b.batchItemFailures].map((f) => f.itemIdentifier));
    return { batchItemFailures: [...failed].map((itemIdentifier) => ({ itemIdentifier })) };
  };

describe("exact counts", () => {
  const harness = useProxiedHarness();
  let reports: string;
  beforeAll(async () => {
    reports = await mkdtemp(join(tmpdir(), "reports-"));
  });
  afterAll(async () => {
    await rm(reports, { recursive: true, force: true });
  });

  it("counts 2,000 moved and 0 failed under 10% transient faults on S3, SQS and DynamoDB and duplicate deliveries", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, copyConcurrency: 64 });
    const { from, to } = await freshBuckets(app.clients.s3, "exact");
    await seedBucket(app.clients.s3, { bucket: from, objects: 2000, bytes: 512 });
    harness.proxy.setFaults({ rate: 0.1, seed: 11, kinds: ["500", "503", "reset"] });
    try {
      const result = await runLocalMove(
        app,
        app.stack,
        { from, to, report: `${pathToFileURL(reports).href}/` },
        { wrapMover: deliverTwice },
      );
      expect(result.job.state).toBe("done");
      expect(result.counts).toMatchObject({ listed: 2000, moved: 2000, skipped: 0, failed: 0 });
      const lines = await readReport(result.reportFile);
      expect(lines).toHaveLength(2000);
      expect(new Set(lines.map((l) => l.key)).size).toBe(2000);
      expect(lines.every((l) => l.outcome === "moved" && l.size > 0 && l.etag.length > 0)).toBe(true);
    } finally {
      harness.proxy.setFaults(undefined);
    }
    expect((await listAll(app.clients.s3, to)).size).toBe(2000);
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("with a poison key: 1,999 moved, 1 failed, its reason in status, the report and the DLQ", async () => {
    const app = await harness.app({
      endpoint: harness.proxy.endpoint,
      copyConcurrency: 64,
      settings: { poisonAfterAttempts: 3 },
    });
    const { from, to } = await freshBuckets(app.clients.s3, "poison2k");
    await seedBucket(app.clients.s3, { bucket: from, objects: 2000, bytes: 512 });
    const poison = seedKey(1234);
    harness.proxy.setRespond((req) =>
      req.operation === "CopyObject" && req.key === poison
        ? {
            status: 403,
            headers: { "content-type": "application/xml" },
            body: "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
          }
        : undefined,
    );
    try {
      const result = await runLocalMove(
        app,
        app.stack,
        { from, to, report: `${pathToFileURL(reports).href}/` },
        { wrapMover: deliverTwice },
      );
      expect(result.job.state).toBe("done-with-failures");
      expect(result.counts).toMatchObject({ listed: 2000, moved: 1999, failed: 1, skipped: 0 });

      const status = await jobStatus(app, result.job.id);
      expect(status.counts).toMatchObject({ moved: 1999, failed: 1, unresolved: 0 });
      expect(status.lastErrors).toContainEqual(
        expect.objectContaining({ key: poison, reason: expect.stringMatching(/AccessDenied/) }),
      );

      const lines = await readReport(result.reportFile);
      const failed = lines.filter((l) => l.outcome === "failed");
      expect(failed).toEqual([expect.objectContaining({ key: poison, reason: expect.stringMatching(/AccessDenied/) })]);
      expect(lines.filter((l) => l.outcome === "moved")).toHaveLength(1999);

      const deadKeys = (await deadLettersOf(app, result.job.id)).flatMap((m) =>
        m.items.map((item) => ({ key: decodeKey(item.k), reason: m.reasons?.[item.i] })),
      );
      // Delivered twice, the poisoned batch may reach the DLQ twice; every dead letter names the same key and reason.
      expect(new Set(deadKeys.map((d) => d.key))).toEqual(new Set([poison]));
      expect(deadKeys.every((d) => /AccessDenied/.test(d.reason ?? ""))).toBe(true);
    } finally {
      harness.proxy.setRespond(undefined);
    }
  });

  it("finishes a 40-page job after its listing with a few sums of the page totals, not one per page", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, settings: { listPageKeys: 25, batchKeys: 25 } });
    const { from, to } = await freshBuckets(app.clients.s3, "donecheck");
    await seedBucket(app.clients.s3, { bucket: from, objects: 1000, bytes: 256 });
    const jobId = await listJob(app, { from, to }); // 40 pages of one batch each, all queued before any moves
    const records = await receiveMoveRecords(app, 40);
    expect(records).toHaveLength(40);
    const mover = createMoverHandler(app);
    harness.proxy.resetCounts();
    for (const [n, record] of records.entries()) {
      expect((await mover({ Records: [record] }, moverContext())).batchItemFailures).toEqual([]);
      // Done with the last page, and not before it.
      expect((await app.store.getJob(jobId)).state).toBe(n < 39 ? "moving" : "done");
    }
    // Summing every page's totals on each page resolved would be 40 Queries; only the last few pages' checks sum.
    const sums = harness.proxy.counts().byOperation.Query ?? 0;
    expect(sums).toBeGreaterThanOrEqual(1);
    expect(sums).toBeLessThanOrEqual(9); // 8 today: the checks of the last 8 pages
    expect(await app.store.sumTotals(jobId)).toMatchObject({ listed: 1000, moved: 1000, failed: 0, pages: 40 });
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  /** A listed job of 100 keys in 4 pages of one batch each, its 4 move messages received, and a mover. */
  async function listFourPageJob(label: string) {
    const app = await harness.app({ settings: { listPageKeys: 25, batchKeys: 25 } });
    const { from, to } = await freshBuckets(app.clients.s3, label);
    await seedBucket(app.clients.s3, { bucket: from, objects: 100, bytes: 256 });
    const jobId = await listJob(app, { from, to });
    const records = await receiveMoveRecords(app, 4);
    expect(records).toHaveLength(4);
    return { app, to, jobId, records, mover: createMoverHandler(app) };
  }

  it("finishes the job when the batch that resolved the last page dies before counting it, on its redelivery", async () => {
    const { app, to, jobId, records, mover } = await listFourPageJob("uncounted");
    for (const record of records.slice(0, 3)) await mover({ Records: [record] }, moverContext());

    // The last batch copies, deletes, writes its ledger and rolls up its page, then its process dies.
    const store = app.store;
    const check = store.completeIfPagesResolved.bind(store);
    store.completeIfPagesResolved = async () => {
      throw new Error("process died before the page was counted");
    };
    const last = records[3] as (typeof records)[number];
    try {
      expect((await mover({ Records: [last] }, moverContext())).batchItemFailures).toHaveLength(1);
    } finally {
      store.completeIfPagesResolved = check;
    }
    expect(await store.sumTotals(jobId)).toMatchObject({ moved: 100, completePages: 4 });
    expect(await store.getJob(jobId)).toMatchObject({ state: "moving", resolvedPages: 3 });

    // SQS hands the message back: its replay has nothing to copy and nothing to add, and counts the page.
    const redelivered = { ...last, attributes: { ...last.attributes, ApproximateReceiveCount: "2" } };
    expect((await mover({ Records: [redelivered] }, moverContext())).batchItemFailures).toEqual([]);
    expect(await store.getJob(jobId)).toMatchObject({ state: "done", resolvedPages: 4 });
    expect((await listAll(app.clients.s3, to)).size).toBe(100);
  });

  it("finishes a job opened before pages were counted (resumed after an upgrade), whose early pages went uncounted", async () => {
    const { app, to, jobId, records, mover } = await listFourPageJob("upgraded");
    for (const record of records.slice(0, 2)) await mover({ Records: [record] }, moverContext());
    // The record as the version before wrote it: no countsPages, and its first two pages resolved uncounted.
    await app.clients.dynamo.send(
      new UpdateCommand({
        TableName: app.resources.table,
        Key: { pk: `JOB#${jobId}`, sk: "JOB" },
        UpdateExpression: "REMOVE countsPages, resolvedPages",
      }),
    );
    for (const record of records.slice(2)) await mover({ Records: [record] }, moverContext());
    expect(await app.store.getJob(jobId)).toMatchObject({ state: "done", resolvedPages: 2 });
    expect((await listAll(app.clients.s3, to)).size).toBe(100);
  });
  it("keeps a batch's newer counts when a duplicate delivery rolls up an older ledger version after them", async () => {
    const app = await harness.app();
    const { from, to } = await freshBuckets(app.clients.s3, "staleroll");
    await seedBucket(app.clients.s3, { bucket: from, objects: 5, bytes: 64 });
    // Last in this file: its batch stays on the shared move queue, where the tests above receive theirs.
    const jobId = await listJob(app, { from, to });
    // Version 1 of the ledger had a key failed; version 2, written by a duplicate that moved it, was rolled up first.
    const newer = { moved: 5, movedBytes: 320, skipped: 0, failed: 0 };
    const older = { moved: 4, movedBytes: 256, skipped: 0, failed: 1 };
    expect((await app.store.rollUpBatch(jobId, 0, 0, newer, 2)).added).toEqual(newer);

    const late = await app.store.rollUpBatch(jobId, 0, 0, older, 1);

    expect(late.added).toEqual({ moved: 0, movedBytes: 0, skipped: 0, failed: 0 });
    expect(late.totals).toMatchObject({ moved: 5, failed: 0 });
    expect(await app.store.sumTotals(jobId)).toMatchObject({ moved: 5, movedBytes: 320, failed: 0 });
    // A newer version still rolls forward.
    const next = { moved: 5, movedBytes: 320, skipped: 0, failed: 0 };
    expect((await app.store.rollUpBatch(jobId, 0, 0, next, 3)).added).toEqual({
      moved: 0,
      movedBytes: 0,
      skipped: 0,
      failed: 0,
    });
  });

  it("shows a cancelled job's listed keys from its page totals, which can be ahead of its cursor", async () => {
    const app = await harness.app();
    const { from, to } = await freshBuckets(app.clients.s3, "listed-ahead");
    const { jobId } = await startMove(app, { from, to });
    // A page recorded with its totals, and then the job cancelled before the page's cursor could move.
    const objects = [0, 1, 2].map((i) => ({ k: seedKey(i), e: `"${"0".repeat(32)}"`, s: 10 }));
    await app.store.ensureTotals(jobId, { seq: 0, objects, batches: [[0, 3]], last: false });
    await app.store.cancel(jobId);

    const status = await jobStatus(app, jobId);

    expect(status.counts).toMatchObject({ listed: 3, listedBytes: 30, unresolved: 3 });
    const text = formatStatus(status);
    expect(text).toMatch(new RegExp(`^Job ${jobId}: cancelled\n`));
    expect(text).toContain("  listed 3 (0.0 MB), moved 0 (0.0 MB), skipped 0, failed 0, unresolved 3");
    // The list of jobs (`status` without --job) counts it the same.
    const listedJob = (await recentJobs(app)).find((job) => job.id === jobId);
    expect(listedJob).toMatchObject({ state: "cancelled", listed: 3, listedBytes: 30 });
    expect(formatJobList([listedJob as Job])).toMatch(new RegExp(`^${jobId}  cancelled +3 listed  `));
  });
});
