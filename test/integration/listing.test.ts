import { DeleteMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it, vi } from "vitest";
import { listingDeps } from "../../src/app.ts";
import { queueDepth } from "../../src/aws/queues.ts";
import { continueListing, listSourcePage, sendListToken } from "../../src/core/listing.ts";
import { parseListMessage } from "../../src/core/messages.ts";
import { redriveDeadLetters } from "../../src/core/redrive.ts";
import { startMove } from "../../src/core/start.ts";
import { formatStatus, jobStatus } from "../../src/core/status.ts";
import { ListingStalledError } from "../../src/errors.ts";
import { createListerHandler } from "../../src/handlers/lister.ts";
import { seedBucket, seedKey } from "../../src/images/seed.ts";
import { runLocalMove } from "../../src/local/localMove.ts";
import { lambdaContext } from "../../src/local/runtime.ts";
import { freshBuckets, listAll, useProxiedHarness } from "../support/harness.ts";
import type { ProxyRequestInfo, ProxyResponse } from "../support/proxy.ts";
import { receiveListRecords } from "../support/steps.ts";

/** A ListObjectsV2 answer with no keys that says more follow, as S3 may give over a run of delete markers. */
function emptyTruncatedPage(bucket: string, nextToken?: string): ProxyResponse {
  return {
    status: 200,
    headers: { "content-type": "application/xml" },
    body: [
      `<?xml version="1.0" encoding="UTF-8"?>`,
      `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`,
      `<Name>${bucket}</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>`,
      `<IsTruncated>true</IsTruncated>`,
      nextToken === undefined ? "" : `<NextContinuationToken>${nextToken}</NextContinuationToken>`,
      `</ListBucketResult>`,
    ].join(""),
  };
}

const isList = (req: ProxyRequestInfo) => req.operation === "ListObjectsV2";

/**
 * A source that begins with a run of ten empty truncated pages (as after a run of delete markers), recording each
 * page of the run asked for. The last one's token is the emulator's own for a key before every seeded key (base64
 * of "!"), so listing goes on from there.
 */
function emptyRunAtStart(bucket: string, walked: string[]) {
  return (req: ProxyRequestInfo): ProxyResponse | undefined => {
    if (!isList(req)) return undefined;
    const token = req.query.get("continuation-token");
    if (token === null && (req.query.get("start-after") ?? "") === "") return emptyTruncatedPage(bucket, "run-1");
    const n = Number(/^run-(\d+)$/.exec(token ?? "")?.[1]);
    if (!n) return undefined;
    walked.push(token as string);
    return emptyTruncatedPage(bucket, n < 9 ? `run-${n + 1}` : Buffer.from("!").toString("base64"));
  };
}

describe("listing: empty truncated pages, a listing that cannot go on, repeated tokens", () => {
  const harness = useProxiedHarness();

  it("follows the continuation token past two empty pages at every page boundary, and moves every key", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, copyConcurrency: 64 });
    const { from, to } = await freshBuckets(app.clients.s3, "emptypages");
    await seedBucket(app.clients.s3, { bucket: from, objects: 2500, bytes: 256 });
    // After each page's last key, S3 first answers two empty pages; the second's token is the emulator's own for
    // that key (base64 of it), so the third request reaches the emulator and lists on from there.
    let hops = 0;
    harness.proxy.setRespond((req) => {
      if (!isList(req)) return undefined;
      const token = req.query.get("continuation-token");
      const startAfter = req.query.get("start-after") ?? "";
      if (token === null && startAfter !== "") {
        hops += 1;
        return emptyTruncatedPage(from, `hop-${Buffer.from(startAfter).toString("base64")}`);
      }
      if (token?.startsWith("hop-")) {
        hops += 1;
        return emptyTruncatedPage(from, token.slice("hop-".length));
      }
      return undefined;
    });
    try {
      const result = await runLocalMove(app, app.stack, { from, to });
      expect(result.job.state).toBe("done");
      expect(result.counts).toMatchObject({ listed: 2500, moved: 2500, failed: 0 });
    } finally {
      harness.proxy.setRespond(undefined);
    }
    // Two boundaries (after keys 1,000 and 2,000), two empty pages each, at least once.
    expect(hops).toBeGreaterThanOrEqual(4);
    expect((await listAll(app.clients.s3, to)).size).toBe(2500);
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("fails with ListingStalledError on an empty truncated page without a token, or with the same token again", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const { from } = await freshBuckets(app.clients.s3, "stalled");
    await seedBucket(app.clients.s3, { bucket: from, objects: 3, bytes: 256 });
    const job = { from, prefix: "", startAfter: seedKey(0) };
    try {
      harness.proxy.setRespond((req) => (isList(req) ? emptyTruncatedPage(from) : undefined));
      await expect(listSourcePage(app.objects, job)).rejects.toThrow(ListingStalledError);
      harness.proxy.setRespond((req) => (isList(req) ? emptyTruncatedPage(from, "same") : undefined));
      await expect(listSourcePage(app.objects, job)).rejects.toThrow(/same NextContinuationToken/);
    } finally {
      harness.proxy.setRespond(undefined);
    }
    // Without the empty pages the same call lists the keys after the start key.
    expect((await listSourcePage(app.objects, job)).objects.map((o) => o.k)).toEqual([seedKey(1), seedKey(2)]);
  });

  it("a lister that cannot go on fails its token with the reason logged and on the job; a local move stops on it", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, settings: { listPageKeys: 2 } });
    const { from, to } = await freshBuckets(app.clients.s3, "listerfails");
    await seedBucket(app.clients.s3, { bucket: from, objects: 5, bytes: 256 });
    const { jobId } = await startMove(app, { from, to });
    const [token] = await receiveListRecords(app);
    if (!token) throw new Error("no list token");
    const lister = createListerHandler(app);
    const context = () => lambdaContext({ functionName: "lister", timeoutSeconds: 120 });
    const logged = vi.spyOn(app.logger, "error").mockImplementation(() => undefined);
    try {
      // Past the first page, S3 answers only empty truncated pages without a token.
      harness.proxy.setRespond((req) =>
        isList(req) && (req.query.get("start-after") ?? "") !== "" ? emptyTruncatedPage(from) : undefined,
      );
      expect((await lister({ Records: [token] }, context())).batchItemFailures).toEqual([
        { itemIdentifier: token.messageId },
      ]);
      expect(logged).toHaveBeenCalledWith(
        expect.stringContaining("listing failed"),
        expect.objectContaining({ jobId, reason: expect.stringContaining("empty truncated page") }),
      );
    } finally {
      harness.proxy.setRespond(undefined);
      logged.mockRestore();
    }
    const failed = await app.store.getJob(jobId);
    expect(failed).toMatchObject({ listingDone: false, listed: 2 });
    expect(failed.listingError?.reason).toContain("empty truncated page");
    expect(formatStatus(await jobStatus(app, jobId))).toContain("listing failed (try ");

    // As if its tries ran out: the token leaves the list queue (for the list DLQ). A local move of the job then
    // stops and says why, instead of sending a new token into the same error.
    await app.clients.sqs.send(
      new DeleteMessageCommand({ QueueUrl: app.resources.listQueueUrl, ReceiptHandle: token.receiptHandle }),
    );
    const stopped = await runLocalMove(app, app.stack, { from, to }, { opened: Promise.resolve(jobId) });
    expect(stopped.job).toMatchObject({ state: "listing", listingDone: false, listed: 2 });
    expect(stopped.job.listingError?.reason).toContain("empty truncated page");
    expect(await queueDepth(app.clients.sqs, app.resources.listQueueUrl)).toEqual({ visible: 0, inFlight: 0 });

    // Redriven (a token with the job's cursor), the listing goes on from its cursor to the end, and the error clears.
    await sendListToken(app.clients.sqs, app.resources.listQueueUrl, stopped.job);
    const [redriven] = await receiveListRecords(app);
    if (!redriven) throw new Error("no redriven token");
    expect((await lister({ Records: [redriven] }, context())).batchItemFailures).toEqual([]);
    const listed = await app.store.getJob(jobId);
    expect(listed).toMatchObject({ listingDone: true, listed: 5 });
    expect(listed.listingError).toBeUndefined();
  });

  it("redrives a dead list token without its continuation token, so its page is listed from the cursor's start key", async () => {
    const app = await harness.app();
    const jobId = `redrive-token-${Date.now()}`;
    const cursor = { from: "some-bucket", prefix: "", seq: 3, startAfter: "k-0099", continuationToken: "stale" };
    await app.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: app.resources.listDeadLetterQueueUrl,
        MessageBody: JSON.stringify({ job: jobId, cursor }),
        MessageGroupId: jobId,
        MessageDeduplicationId: jobId,
      }),
    );
    expect(await redriveDeadLetters(app, { jobId })).toMatchObject({ moved: { move: 0, list: 1 }, jobs: [jobId] });
    const records = await receiveListRecords(app, 10);
    const mine = records.filter((r) => parseListMessage(r.body).job === jobId);
    expect(mine.map((r) => parseListMessage(r.body).cursor)).toEqual([
      { from: "some-bucket", prefix: "", seq: 3, startAfter: "k-0099" },
    ]);
    for (const r of records) {
      await app.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: app.resources.listQueueUrl, ReceiptHandle: r.receiptHandle }),
      );
    }
  });

  it.each([
    { run: "a move", dryRun: false },
    { run: "a dry run", dryRun: true },
  ])(
    "hands on inside a run of empty pages with S3's token, in $run: each lister goes further, none walks it again",
    async ({ dryRun }) => {
      const app = await harness.app({ endpoint: harness.proxy.endpoint, settings: { listPageKeys: 25 } });
      const { from, to } = await freshBuckets(app.clients.s3, "emptyrun");
      await seedBucket(app.clients.s3, { bucket: from, objects: 50, bytes: 256 });
      const walked: string[] = [];
      harness.proxy.setRespond(emptyRunAtStart(from, walked));
      const { jobId } = await startMove(app, { from, to, dryRun });
      const takeToken = async () => {
        const [record] = await receiveListRecords(app);
        if (!record) throw new Error("no list token");
        const url = app.resources.listQueueUrl;
        await app.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: record.receiptHandle }));
        return { cursor: parseListMessage(record.body).cursor, tokenId: record.messageId };
      };
      const carried: (string | undefined)[] = [];
      try {
        let token = await takeToken();
        let finished = false;
        for (let lister = 0; lister < 10 && !finished; lister++) {
          // Each lister's time runs out at its fourth question: three empty pages, then a hand-on.
          let asked = 0;
          const progress = await continueListing(
            listingDeps(app),
            jobId,
            () => ++asked > 3,
            token.cursor,
            token.tokenId,
          );
          finished = progress.finished;
          if (!finished) {
            token = await takeToken();
            carried.push(token.cursor?.continuationToken);
          }
        }
        expect(finished).toBe(true);
      } finally {
        harness.proxy.setRespond(undefined);
      }
      // Two listers handed on inside the run, each with the token it had reached (neither deduplicated away, though
      // they share the cursor's seq); the third went on from run-8 to the end. Every page of the run was asked once.
      expect(carried).toEqual(["run-4", "run-8"]);
      expect(walked).toEqual(Array.from({ length: 9 }, (_, i) => `run-${i + 1}`));
      expect(await app.store.getJob(jobId)).toMatchObject({ listingDone: true, listed: 50 });

      // A token S3 refuses is only a shortcut lost: the page is listed from the cursor's start key instead, and
      // the page says so (the lister logs it). Any other failure of the token's page is the listing's to retry.
      let tokenCalls = 0;
      harness.proxy.setRespond((req) => {
        const token = isList(req) ? req.query.get("continuation-token") : null;
        if (token === null) return undefined;
        const answer = {
          refused: { status: 400, body: "<Error><Code>InvalidArgument</Code></Error>" },
          bare: { status: 400, body: "" }, // a 400 without an error document (as a proxy may give)
          denied: { status: 403, body: "<Error><Code>AccessDenied</Code></Error>" },
        }[token];
        if (answer === undefined) return undefined;
        tokenCalls += 1;
        return { status: answer.status, headers: { "content-type": "application/xml" }, body: answer.body };
      });
      const tail = { from, prefix: "", startAfter: seedKey(47) };
      try {
        for (const token of ["refused", "bare"]) {
          const page = await listSourcePage(app.objects, { ...tail, continuationToken: token });
          expect(
            page.objects.map((o) => o.k),
            token,
          ).toEqual([seedKey(48), seedKey(49)]);
          expect(page.tokenRefused, token).toBe(true);
        }
        expect(tokenCalls).toBe(2); // each token was tried first
        await expect(listSourcePage(app.objects, { ...tail, continuationToken: "denied" })).rejects.toMatchObject({
          code: "AccessDenied",
        });
        expect(tokenCalls).toBe(3);
        expect((await listSourcePage(app.objects, tail)).tokenRefused).toBeUndefined();
      } finally {
        harness.proxy.setRespond(undefined);
      }
    },
  );

  it("keeps one chain of tokens when a lister dies after handing on inside a run of empty pages", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, settings: { listPageKeys: 25 } });
    const { from, to } = await freshBuckets(app.clients.s3, "handonrepeat");
    await seedBucket(app.clients.s3, { bucket: from, objects: 50, bytes: 256 });
    harness.proxy.setRespond(emptyRunAtStart(from, []));
    // Earlier tests' tokens handled by a bare handler stay in flight on the shared queue: this test counts its own.
    const before = await queueDepth(app.clients.sqs, app.resources.listQueueUrl);
    try {
      const { jobId } = await startMove(app, { from, to });
      const [record] = await receiveListRecords(app);
      if (!record) throw new Error("no list token");
      const { cursor } = parseListMessage(record.body);
      // The first lister hands on after four empty pages and dies before deleting its token; the token comes back
      // and the second lister, as far along, hands on too. Its hand-on is the first one again, and SQS drops it.
      for (const lister of ["first", "second"]) {
        let asked = 0;
        const progress = await continueListing(listingDeps(app), jobId, () => ++asked > 3, cursor, record.messageId);
        expect(progress, lister).toMatchObject({ pages: 0, finished: false, emptyPages: 4 });
      }
      await app.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: app.resources.listQueueUrl, ReceiptHandle: record.receiptHandle }),
      );
      expect(await queueDepth(app.clients.sqs, app.resources.listQueueUrl)).toEqual({
        visible: before.visible + 1,
        inFlight: before.inFlight,
      });
      const [handOn] = await receiveListRecords(app);
      if (!handOn) throw new Error("no hand-on");
      expect(parseListMessage(handOn.body)).toMatchObject({ job: jobId, cursor: { continuationToken: "run-4" } });
      await app.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: app.resources.listQueueUrl, ReceiptHandle: handOn.receiptHandle }),
      );
    } finally {
      harness.proxy.setRespond(undefined);
    }
  });

  it.each([
    { run: "a move", dryRun: false },
    { run: "a dry run", dryRun: true },
  ])(
    "a repeated list token after the listing's end, in $run, ends the job if its lister did not",
    async ({ dryRun }) => {
      const app = await harness.app();
      const { from, to } = await freshBuckets(app.clients.s3, "listerrepeat");
      await seedBucket(app.clients.s3, { bucket: from, objects: 30, bytes: 256 });
      const { jobId } = await startMove(app, { from, to, dryRun });
      const done = await runLocalMove(app, app.stack, { from, to, dryRun }, { opened: Promise.resolve(jobId) });
      expect(done.job.state).toBe("done");
      // As when every page resolved before the listing's end was recorded (so no mover's check could end the job) and
      // the lister's own check then failed, or a dry run's lister died between the listing's end and the job's.
      await app.clients.dynamo.send(
        new UpdateCommand({
          TableName: app.resources.table,
          Key: { pk: `JOB#${jobId}`, sk: "JOB" },
          UpdateExpression: "SET #state = :moving REMOVE finishedAt",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: { ":moving": "moving" },
        }),
      );
      expect((await app.store.getJob(jobId)).state).toBe("moving");
      // The lister's token comes back (its try failed): it finds the listing ended, and ends the job.
      await sendListToken(app.clients.sqs, app.resources.listQueueUrl, done.job);
      const [token] = await receiveListRecords(app);
      if (!token) throw new Error("no list token");
      const lister = createListerHandler(app);
      const context = lambdaContext({ functionName: "lister", timeoutSeconds: 120 });
      expect((await lister({ Records: [token] }, context)).batchItemFailures).toEqual([]);
      expect(await app.store.getJob(jobId)).toMatchObject({ state: "done", listingDone: true, listed: 30 });
    },
  );
});
