import { createHash } from "node:crypto";
import { HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { DeleteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.ts";
import { makeJpeg } from "../../src/images/jpeg.ts";
import { seedBucket, seedKey } from "../../src/images/seed.ts";
import type { LocalApp } from "../../src/local/localApp.ts";
import { runLocalMove } from "../../src/local/localMove.ts";
import { SdkObjectClient } from "../../src/s3/sdkObjectClient.ts";
import type { MoveRequest } from "../../src/types.ts";
import { freshBuckets, type Harness, listAll, startHarness, useProxiedHarness } from "../support/harness.ts";
import { answerLate } from "../support/slowCommands.ts";

const md5 = (bytes: Uint8Array) => `"${createHash("md5").update(bytes).digest("hex")}"`;

describe("a move through start → lister → move queue → mover", () => {
  let harness: Harness;
  let app: LocalApp;
  beforeAll(async () => {
    harness = await startHarness();
    app = await harness.app({ copyConcurrency: 64 });
  });
  afterAll(() => harness.stop());

  it("creates its queues with the ARNs SQS gives them, each queue's redrive pointing at its own dead-letter queue", async () => {
    const arnOf = async (url: string) => {
      const out = await app.clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn", "RedrivePolicy"] }),
      );
      return { arn: out.Attributes?.QueueArn, redrive: JSON.parse(out.Attributes?.RedrivePolicy ?? "{}") };
    };
    const { resources } = app;
    const [list, listDlq, move, moveDlq] = await Promise.all(
      [
        resources.listQueueUrl,
        resources.listDeadLetterQueueUrl,
        resources.moveQueueUrl,
        resources.moveDeadLetterQueueUrl,
      ].map(arnOf),
    );
    expect(resources.listQueueArn).toBe(list?.arn);
    expect(resources.moveQueueArn).toBe(move?.arn);
    expect(list?.redrive.deadLetterTargetArn).toBe(listDlq?.arn);
    expect(move?.redrive.deadLetterTargetArn).toBe(moveDlq?.arn);
    expect(moveDlq?.arn).toMatch(/^arn:aws:sqs:us-east-1:000000000000:/);
  });

  it("moves 1,000 objects with identical bytes, content type and metadata, and empties the source", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "thousand");
    await seedBucket(app.clients.s3, { bucket: from, objects: 1000, bytes: 2048 });

    const result = await runLocalMove(app, app.stack, { from, to });

    expect(result.job.state).toBe("done");
    expect(result.counts).toMatchObject({ listed: 1000, moved: 1000, skipped: 0, failed: 0 });
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
    const destination = await listAll(app.clients.s3, to);
    expect(destination.size).toBe(1000);
    for (let i = 0; i < 1000; i++) {
      expect(destination.get(seedKey(i))?.etag).toBe(md5(makeJpeg(i, 2048)));
    }
    for (const i of [0, 1, 499, 999]) {
      const head = await app.clients.s3.send(new HeadObjectCommand({ Bucket: to, Key: seedKey(i) }));
      expect(head.ContentType).toBe("image/jpeg");
      expect(head.Metadata).toEqual({ index: String(i) });
    }
  });

  it("moves tricky keys byte-exact: spaces, + % ? #, unicode, deep prefixes, 1,024-byte keys, empty objects", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "tricky");
    const keys = [
      "with space.jpg",
      "plus+sign.jpg",
      "percent%20literal%.jpg",
      "question?mark.jpg",
      "hash#tag.jpg",
      "amp&equals=.jpg",
      "unicode/日本語/ファイル.jpg",
      "emoji 😀/ü/é.jpg",
      "deep/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p.jpg",
      "double//slash.jpg",
      "./dot/../segments.jpg",
      "~tilde*star!(paren)'quote.jpg",
      `long/${"x".repeat(1019)}`,
      "empty-object.jpg",
    ];
    expect(Buffer.byteLength(keys[12] as string)).toBe(1024);
    const bodies = new Map<string, Uint8Array>();
    for (const [i, key] of keys.entries()) {
      const body = key === "empty-object.jpg" ? new Uint8Array() : makeJpeg(i, 1024);
      bodies.set(key, body);
      await app.clients.s3.send(
        new PutObjectCommand({ Bucket: from, Key: key, Body: body, ContentType: "image/jpeg" }),
      );
    }

    const result = await runLocalMove(app, app.stack, { from, to });

    expect(result.counts.moved).toBe(keys.length);
    const destination = await listAll(app.clients.s3, to);
    expect([...destination.keys()].sort()).toEqual([...keys].sort());
    for (const [key, body] of bodies) expect(destination.get(key)).toEqual({ etag: md5(body), size: body.length });
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
  });

  it("moves only the prefix and leaves every other object untouched", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "prefix");
    await seedBucket(app.clients.s3, { bucket: from, objects: 30, prefix: "2024/", bytes: 1024 });
    await seedBucket(app.clients.s3, { bucket: from, objects: 20, prefix: "2025/", bytes: 1024 });
    await seedBucket(app.clients.s3, { bucket: from, objects: 5, prefix: "2024-other/", bytes: 1024 });

    const result = await runLocalMove(app, app.stack, { from, to, prefix: "2024/" });

    expect(result.counts).toMatchObject({ listed: 30, moved: 30 });
    expect([...(await listAll(app.clients.s3, to)).keys()].every((k) => k.startsWith("2024/"))).toBe(true);
    expect((await listAll(app.clients.s3, to)).size).toBe(30);
    const left = await listAll(app.clients.s3, from);
    expect(left.size).toBe(25);
    expect([...left.keys()].some((k) => k.startsWith("2024/"))).toBe(false);
  });

  it("finishes an empty prefix at once, as done with nothing moved", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "empty");
    const result = await runLocalMove(app, app.stack, { from, to, prefix: "nothing-here/" });
    expect(result.job.state).toBe("done");
    expect(result.counts).toMatchObject({ listed: 0, moved: 0 });
  });

  it("reads a finished job's last progress while its consumers stop, not after its last message is deleted", async () => {
    const local = await harness.app({ copyConcurrency: 64 });
    const { from, to } = await freshBuckets(local.clients.s3, "settle");
    await seedBucket(local.clients.s3, { bucket: from, objects: 20, bytes: 256 });
    const events: string[] = [];
    // Every message delete is answered 300 ms late, so a read made after it comes after "message deleted".
    answerLate(local.clients.sqs, "DeleteMessageBatchCommand", 300, () => events.push("message deleted"));
    const getJob = local.store.getJob.bind(local.store);
    local.store.getJob = async (id: string) => {
      const job = await getJob(id);
      events.push(`job read: ${job.state}`);
      return job;
    };

    const result = await runLocalMove(local, local.stack, { from, to });

    expect(result.job.state).toBe("done");
    expect(result.counts).toMatchObject({ listed: 20, moved: 20, skipped: 0, failed: 0 });
    expect(events).toContain("message deleted");
    expect(events.lastIndexOf("job read: done")).toBeLessThan(events.lastIndexOf("message deleted"));
  });

  describe("opening a job", () => {
    const request = (prefix: string): MoveRequest => ({
      from: "jobs-src",
      to: "jobs-dst",
      prefix,
      overwrite: true,
      dryRun: false,
    });

    it("opens one job for starts racing on the same from/to/prefix: the others attach to it, and no other record is left", async () => {
      const before = new Set((await app.store.listJobs(100)).map((job) => job.id));
      const opened = await Promise.all(Array.from({ length: 8 }, () => app.store.openJob(request("race/"))));

      const ids = new Set(opened.map((o) => o.job.id));
      expect(ids.size).toBe(1);
      expect(opened.filter((o) => !o.attached)).toHaveLength(1);
      const listed = (await app.store.listJobs(100)).filter((job) => !before.has(job.id));
      expect(listed.map((job) => job.id)).toEqual([...ids]);
      expect(listed[0]?.state).toBe("listing");
    });

    it("attaches a second start to the unfinished job without adding a record", async () => {
      const first = await app.store.openJob(request("again/"));
      const count = (await app.store.listJobs(100)).length;
      const second = await app.store.openJob(request("again/"));

      expect(second).toMatchObject({ attached: true, job: { id: first.job.id } });
      expect(await app.store.listJobs(100)).toHaveLength(count);
    });

    it("puts an attached job back in the job list, should a crash have left it out", async () => {
      const first = await app.store.openJob(request("unlisted/"));
      // A crash between the job's record and its list entry, which are written at once.
      await app.clients.dynamo.send(
        new DeleteCommand({
          TableName: app.resources.table,
          Key: { pk: "JOBS", sk: `${first.job.createdAt}#${first.job.id}` },
        }),
      );
      expect((await app.store.listJobs(100)).map((job) => job.id)).not.toContain(first.job.id);

      expect(await app.store.openJob(request("unlisted/"))).toMatchObject({
        attached: true,
        job: { id: first.job.id },
      });
      expect((await app.store.listJobs(100)).filter((job) => job.id === first.job.id)).toHaveLength(1);
    });

    it("fails a start whose read of the active job fails, rather than taking the job for missing", async () => {
      const local = await harness.app();
      const first = await local.store.openJob(request("readfails/"));
      // A finished job whose active item was left behind (its release failed), then a read that fails once.
      await local.clients.dynamo.send(
        new UpdateCommand({
          TableName: local.resources.table,
          Key: { pk: `JOB#${first.job.id}`, sk: "JOB" },
          UpdateExpression: "SET #state = :done",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: { ":done": "done" },
        }),
      );
      let refused = 0;
      local.clients.dynamo.middlewareStack.add(
        (next, context) => async (args) => {
          const key = (args as { input?: { Key?: { pk?: string } } }).input?.Key;
          if (
            /^Get(Item)?Command$/.test(context.commandName ?? "") &&
            key?.pk === `JOB#${first.job.id}` &&
            refused === 0
          ) {
            refused += 1;
            throw Object.assign(new Error("injected: the table did not answer"), { name: "InternalServerError" });
          }
          return next(args);
        },
        { step: "initialize", name: "jobReadFails" },
      );

      await expect(local.store.openJob(request("readfails/"))).rejects.toThrow(/injected/);
      expect(refused).toBe(1);
      // Asked again, it sees the job is done and opens a new one.
      const next = await local.store.openJob(request("readfails/"));
      expect(next).toMatchObject({ attached: false, job: { state: "listing" } });
      expect(next.job.id).not.toBe(first.job.id);
    });
  });
});

describe("storage classes", () => {
  const harness = useProxiedHarness();

  /** One ListObjectsV2 page of the seeded keys, each in the class `classes` gives it. */
  function pageWithClasses(
    bucket: string,
    objects: Array<{ key: string; etag: string; size: number }>,
    classes: string[],
  ) {
    const xml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&quot;");
    const contents = objects
      .map(
        (o, i) =>
          `<Contents><Key>${xml(o.key)}</Key><ETag>${xml(o.etag)}</ETag><Size>${o.size}</Size>` +
          `<StorageClass>${classes[i]}</StorageClass></Contents>`,
      )
      .join("");
    return {
      status: 200,
      headers: { "content-type": "application/xml" },
      body:
        `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Name>${bucket}</Name><Prefix></Prefix><KeyCount>${objects.length}</KeyCount><MaxKeys>1000</MaxKeys>` +
        `<IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`,
    };
  }

  it.each([
    ["the lean client", undefined],
    ["the SDK client", (a: Omit<App, "objects">) => new SdkObjectClient(a.clients.s3)],
  ])("each copy keeps its source's class, archived ones are skipped, with %s", async (_name, objects) => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, ...(objects ? { objects } : {}) });
    const { from, to } = await freshBuckets(app.clients.s3, "classes");
    await seedBucket(app.clients.s3, { bucket: from, objects: 6, bytes: 256 });
    const seeded = [...(await listAll(app.clients.s3, from)).entries()]
      .map(([key, o]) => ({ key, etag: o.etag, size: o.size }))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
    // The emulator stores no class: the listing says what S3 would.
    const classes = ["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "STANDARD", "GLACIER", "EXPRESS_ONEZONE"];
    const askedFor = new Map<string, string | undefined>();
    harness.proxy.setRespond((req) => {
      if (req.operation === "ListObjectsV2" && req.bucket === from) return pageWithClasses(from, seeded, classes);
      if (req.operation === "CopyObject" && req.key !== undefined) {
        askedFor.set(req.key, req.headers["x-amz-storage-class"] as string | undefined);
      }
      return undefined;
    });
    try {
      const result = await runLocalMove(app, app.stack, { from, to });
      expect(result.counts).toMatchObject({ listed: 6, moved: 5, skipped: 1, failed: 0 });
    } finally {
      harness.proxy.setRespond(undefined);
    }

    const keys = seeded.map((o) => o.key);
    expect(Object.fromEntries(askedFor)).toEqual({
      [keys[0] as string]: "STANDARD_IA",
      [keys[1] as string]: "ONEZONE_IA",
      [keys[2] as string]: "INTELLIGENT_TIERING",
      [keys[3] as string]: undefined, // STANDARD: S3's default
      [keys[5] as string]: undefined, // a directory bucket's class, which a general purpose bucket does not take
    });
    expect([...(await listAll(app.clients.s3, from)).keys()]).toEqual([keys[4]]); // GLACIER: skipped, kept
  });

  it("a source that changed after listing is copied in its newer version's class, in the same delivery and the next", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const { from, to } = await freshBuckets(app.clients.s3, "classes-412");
    await seedBucket(app.clients.s3, { bucket: from, objects: 2, bytes: 256 });
    const seeded = [...(await listAll(app.clients.s3, from)).entries()]
      .map(([key, o]) => ({ key, etag: o.etag, size: o.size }))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
    const [once, thrice] = seeded.map((o) => o.key) as [string, string];
    // Listed in STANDARD_IA; a HEAD finds the "newer version" (the same bytes, so its copy verifies) in ONEZONE_IA.
    // A copy conditional on its ETag answers 412 once for one key, and three times (past one delivery) for the other.
    const copies = new Map<string, Array<string | undefined>>();
    harness.proxy.setRespond((req) => {
      if (req.operation === "ListObjectsV2" && req.bucket === from) {
        return pageWithClasses(from, seeded, ["STANDARD_IA", "STANDARD_IA"]);
      }
      const object = seeded.find((o) => o.key === req.key);
      if (req.operation === "HeadObject" && req.bucket === from && object) {
        return {
          status: 200,
          headers: { etag: object.etag, "content-length": String(object.size), "x-amz-storage-class": "ONEZONE_IA" },
        };
      }
      if (req.operation === "CopyObject" && req.key !== undefined) {
        const seen = [...(copies.get(req.key) ?? []), req.headers["x-amz-storage-class"] as string | undefined];
        copies.set(req.key, seen);
        if (seen.length <= (req.key === once ? 1 : 3)) {
          return {
            status: 412,
            headers: { "content-type": "application/xml" },
            body: "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>",
          };
        }
      }
      return undefined;
    });
    try {
      const result = await runLocalMove(app, app.stack, { from, to });
      expect(result.counts).toMatchObject({ listed: 2, moved: 2, failed: 0 });
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect(copies.get(once)).toEqual(["STANDARD_IA", "ONEZONE_IA"]);
    // Three rounds a delivery: the fourth copy comes in the next one, from the pending version the ledger recorded.
    expect(copies.get(thrice)).toEqual(["STANDARD_IA", "ONEZONE_IA", "ONEZONE_IA", "ONEZONE_IA"]);
  });
});
