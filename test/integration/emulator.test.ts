import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Emulator, EmulatorError, startEmulator } from "../../src/emulator/emulator.ts";
import { spawnEmulator } from "../../src/emulator/process.ts";

const region = "us-east-1";
const credentials = { accessKeyId: "test", secretAccessKey: "test" };

function clientsFor(endpoint: string) {
  return {
    s3: new S3Client({ endpoint, region, credentials, forcePathStyle: true }),
    sqs: new SQSClient({ endpoint, region, credentials }),
    dynamo: new DynamoDBClient({ endpoint, region, credentials }),
    destroy() {
      this.s3.destroy();
      this.sqs.destroy();
      this.dynamo.destroy();
    },
  };
}
type Clients = ReturnType<typeof clientsFor>;

async function getBytes(s3: S3Client, Bucket: string, Key: string): Promise<string> {
  const out = await s3.send(new GetObjectCommand({ Bucket, Key }));
  return (await out.Body?.transformToString()) ?? "";
}

/**
 * Receives and deletes until `count` bodies came back. fauxqs hands out one message of a FIFO group per receive
 * (AWS may return several), and reorders standard queues on purpose: callers compare sets there.
 */
async function receiveBodies(sqs: SQSClient, QueueUrl: string, count: number): Promise<string[]> {
  const bodies: string[] = [];
  for (let round = 0; round < 20 && bodies.length < count; round++) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
    for (const message of out.Messages ?? []) {
      bodies.push(message.Body ?? "");
      await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: message.ReceiptHandle }));
    }
  }
  return bodies;
}

/** Creates the "jobs" table and waits until it is ACTIVE: dynalite answers CreateTable with CREATING, like AWS. */
async function createJobsTable(dynamo: DynamoDBClient): Promise<void> {
  await dynamo.send(
    new CreateTableCommand({
      TableName: "jobs",
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  await waitUntilTableExists({ client: dynamo, maxWaitTime: 10, minDelay: 0.01, maxDelay: 0.1 }, { TableName: "jobs" });
}

describe("startEmulator", () => {
  let emulator: Emulator;
  let aws: Clients;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
    aws = clientsFor(emulator.endpoint);
  });
  afterAll(async () => {
    aws.destroy();
    await emulator.stop();
  });

  it("listens on a free port of 127.0.0.1 only", () => {
    expect(emulator.port).toBeGreaterThan(0);
    expect(emulator.address).toBe("127.0.0.1");
    expect(emulator.endpoint).toBe(`http://127.0.0.1:${emulator.port}`);
  });

  it("refuses a port that is taken, saying what to do", async () => {
    const attempt = startEmulator({ port: emulator.port });
    await expect(attempt).rejects.toThrow(EmulatorError);
    await expect(attempt).rejects.toThrow(/already in use.*port 0/);
  });

  it("serves S3 put, get, list and copy", async () => {
    await aws.s3.send(new CreateBucketCommand({ Bucket: "photos" }));
    await aws.s3.send(new CreateBucketCommand({ Bucket: "archive" }));
    for (const key of ["a/1.jpg", "a/2.jpg", "b/3.jpg"]) {
      await aws.s3.send(new PutObjectCommand({ Bucket: "photos", Key: key, Body: `bytes of ${key}` }));
    }
    const listed = await aws.s3.send(new ListObjectsV2Command({ Bucket: "photos", Prefix: "a/" }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual(["a/1.jpg", "a/2.jpg"]);

    await aws.s3.send(new CopyObjectCommand({ Bucket: "archive", Key: "moved/3.jpg", CopySource: "photos/b/3.jpg" }));
    expect(await getBytes(aws.s3, "archive", "moved/3.jpg")).toBe("bytes of b/3.jpg");
  });

  it("lists in S3's UTF-8 byte order, one key a page, every key exactly once, also after deletes and new puts", async () => {
    await aws.s3.send(new CreateBucketCommand({ Bucket: "order" }));
    // Case, punctuation and characters of one to four UTF-8 bytes: where locale order, UTF-16 order and S3's differ.
    const keys = ["B", "a", "b", "A1", "a-b", "a/b", "Z", "é", "\uE000", "😀", "~", "ab", "aB", "0"];
    for (const key of keys) await aws.s3.send(new PutObjectCommand({ Bucket: "order", Key: key, Body: key }));
    const byteOrder = (list: string[]) => [...list].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

    const pageOneByOne = async (options: { Prefix?: string } = {}) => {
      const seen: string[] = [];
      let StartAfter: string | undefined;
      for (let page = 0; page < 50; page++) {
        const out = await aws.s3.send(
          new ListObjectsV2Command({ Bucket: "order", MaxKeys: 1, StartAfter, ...options }),
        );
        seen.push(...(out.Contents ?? []).map((c) => c.Key ?? ""));
        if (!out.IsTruncated) return seen;
        StartAfter = seen.at(-1);
      }
      throw new Error(`listing did not end: ${seen.join(" ")}`);
    };
    expect(await pageOneByOne()).toEqual(byteOrder(keys));
    expect(await pageOneByOne({ Prefix: "a" })).toEqual(byteOrder(keys.filter((k) => k.startsWith("a"))));

    await aws.s3.send(new DeleteObjectCommand({ Bucket: "order", Key: "b" }));
    await aws.s3.send(new PutObjectCommand({ Bucket: "order", Key: "AA", Body: "new" }));
    await aws.s3.send(new PutObjectCommand({ Bucket: "order", Key: "a", Body: "rewritten" }));
    const now = [...keys.filter((k) => k !== "b"), "AA"];
    expect(await pageOneByOne()).toEqual(byteOrder(now));

    const grouped = await aws.s3.send(new ListObjectsV2Command({ Bucket: "order", Delimiter: "/", Prefix: "a" }));
    expect(grouped.CommonPrefixes?.map((p) => p.Prefix)).toEqual(["a/"]);
    expect(grouped.Contents?.map((c) => c.Key)).toEqual(byteOrder(now.filter((k) => k.startsWith("a") && k !== "a/b")));
  });

  // fauxqs's relaxed rule lifts S3's "byte-range copies need a source over 5 MiB"; CompleteMultipartUpload
  // still wants every part but the last to be 5 MiB or more.
  it("copies a small object with a byte-range UploadPartCopy", async () => {
    await aws.s3.send(new CreateBucketCommand({ Bucket: "multipart" }));
    await aws.s3.send(new PutObjectCommand({ Bucket: "multipart", Key: "source", Body: "0123456789" }));
    const { UploadId } = await aws.s3.send(new CreateMultipartUploadCommand({ Bucket: "multipart", Key: "copy" }));
    const part = await aws.s3.send(
      new UploadPartCopyCommand({
        Bucket: "multipart",
        Key: "copy",
        UploadId,
        PartNumber: 1,
        CopySource: "multipart/source",
        CopySourceRange: "bytes=0-9",
      }),
    );
    await aws.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: "multipart",
        Key: "copy",
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.CopyPartResult?.ETag }] },
      }),
    );
    expect(await getBytes(aws.s3, "multipart", "copy")).toBe("0123456789");
  });

  it("serves a standard SQS queue, with URLs on the emulator's address", async () => {
    const { QueueUrl } = await aws.sqs.send(new CreateQueueCommand({ QueueName: "moves" }));
    expect(QueueUrl).toBe(`${emulator.endpoint}/000000000000/moves`);
    const Entries = ["m1", "m2", "m3", "m4"].map((body) => ({ Id: body, MessageBody: body }));
    const sent = await aws.sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }));
    expect(sent.Failed ?? []).toEqual([]);
    expect((await receiveBodies(aws.sqs, QueueUrl ?? "", 4)).sort()).toEqual(["m1", "m2", "m3", "m4"]);
  });

  it("serves a FIFO queue: order within a group, repeated deduplication ids dropped", async () => {
    const { QueueUrl } = await aws.sqs.send(
      new CreateQueueCommand({ QueueName: "moves.fifo", Attributes: { FifoQueue: "true" } }),
    );
    const send = (body: string, dedup: string) =>
      aws.sqs.send(
        new SendMessageCommand({ QueueUrl, MessageBody: body, MessageGroupId: "job-1", MessageDeduplicationId: dedup }),
      );
    const first = await send("first", "d1");
    await send("second", "d2");
    const repeat = await send("first again", "d1");
    await send("third", "d3");
    expect(repeat.MessageId).toBe(first.MessageId);

    expect(await receiveBodies(aws.sqs, QueueUrl ?? "", 3)).toEqual(["first", "second", "third"]);
  });

  it("serves DynamoDB on the same port, with conditional updates", async () => {
    await createJobsTable(aws.dynamo);
    await aws.dynamo.send(new PutItemCommand({ TableName: "jobs", Item: { pk: { S: "job-1" }, version: { N: "1" } } }));
    const bump = (expected: string) =>
      aws.dynamo.send(
        new UpdateItemCommand({
          TableName: "jobs",
          Key: { pk: { S: "job-1" } },
          UpdateExpression: "SET version = version + :one, #state = :state",
          ConditionExpression: "version = :expected",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: { ":one": { N: "1" }, ":expected": { N: expected }, ":state": { S: "running" } },
        }),
      );
    await bump("1");
    await expect(bump("1")).rejects.toThrow(ConditionalCheckFailedException);

    const { Item } = await aws.dynamo.send(new GetItemCommand({ TableName: "jobs", Key: { pk: { S: "job-1" } } }));
    expect(Item).toEqual({ pk: { S: "job-1" }, version: { N: "2" }, state: { S: "running" } });
  });
});

describe("emulator state in a dataDir", () => {
  const dataDirs: string[] = [];
  const freshDataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "s3im-emulator-"));
    dataDirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  async function writeState(aws: Clients): Promise<void> {
    await aws.s3.send(new CreateBucketCommand({ Bucket: "kept" }));
    await aws.s3.send(new PutObjectCommand({ Bucket: "kept", Key: "photo.jpg", Body: "persisted bytes" }));
    const { QueueUrl } = await aws.sqs.send(new CreateQueueCommand({ QueueName: "kept" }));
    await aws.sqs.send(
      new SendMessageBatchCommand({ QueueUrl, Entries: ["a", "b", "c"].map((b) => ({ Id: b, MessageBody: b })) }),
    );
    const fifo = await aws.sqs.send(
      new CreateQueueCommand({ QueueName: "kept.fifo", Attributes: { FifoQueue: "true" } }),
    );
    for (const body of ["one", "two"]) {
      await aws.sqs.send(
        new SendMessageCommand({
          QueueUrl: fifo.QueueUrl,
          MessageBody: body,
          MessageGroupId: "g",
          MessageDeduplicationId: body,
        }),
      );
    }
    await createJobsTable(aws.dynamo);
    await aws.dynamo.send(new PutItemCommand({ TableName: "jobs", Item: { pk: { S: "job-9" }, moved: { N: "41" } } }));
  }

  async function expectState(aws: Clients): Promise<void> {
    expect(await getBytes(aws.s3, "kept", "photo.jpg")).toBe("persisted bytes");
    // The stored queue URL still names the old port; the SDK sends it to its `endpoint` and fauxqs looks it up by name.
    const { QueueUrl } = await aws.sqs.send(new GetQueueUrlCommand({ QueueName: "kept" }));
    expect((await receiveBodies(aws.sqs, QueueUrl ?? "", 3)).sort()).toEqual(["a", "b", "c"]);
    const fifo = await aws.sqs.send(new GetQueueUrlCommand({ QueueName: "kept.fifo" }));
    expect(await receiveBodies(aws.sqs, fifo.QueueUrl ?? "", 2)).toEqual(["one", "two"]);
    const { Item } = await aws.dynamo.send(new GetItemCommand({ TableName: "jobs", Key: { pk: { S: "job-9" } } }));
    expect(Item?.moved).toEqual({ N: "41" });
  }

  it("survives a SIGKILL of the emulator process: objects, queued messages and items come back", async () => {
    const dataDir = freshDataDir();
    const first = await spawnEmulator({ port: 0, dataDir });
    const before = clientsFor(first.endpoint);
    await writeState(before);
    before.destroy();
    first.kill("SIGKILL");
    await first.stop();

    const second = await spawnEmulator({ port: 0, dataDir });
    const after = clientsFor(second.endpoint);
    try {
      expect(second.pid).not.toBe(first.pid);
      expect(second.address).toBe("127.0.0.1");
      await expectState(after);
    } finally {
      after.destroy();
      await second.stop();
    }
  });

  it("puts a message whose visibility is set to 0 back on its queue, with its receive count, and keeps it so", async () => {
    const dataDir = freshDataDir();
    const first = await startEmulator({ port: 0, dataDir });
    const aws = clientsFor(first.endpoint);
    const receive = async (QueueUrl: string) =>
      (
        await aws.sqs.send(
          new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1, MessageSystemAttributeNames: ["All"] }),
        )
      ).Messages ?? [];
    let QueueUrl = "";
    try {
      QueueUrl = (await aws.sqs.send(new CreateQueueCommand({ QueueName: "released" }))).QueueUrl ?? "";
      await aws.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "letter" }));
      const [taken] = await receive(QueueUrl);
      // What a redrive does with another job's letter, and the local runtime with a message taken as it stops.
      await aws.sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: taken?.ReceiptHandle, VisibilityTimeout: 0 }),
      );
      const [again] = await receive(QueueUrl);
      expect(again?.Body).toBe("letter");
      expect(again?.Attributes?.ApproximateReceiveCount).toBe("2");
      await aws.sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: again?.ReceiptHandle, VisibilityTimeout: 0 }),
      );
    } finally {
      aws.destroy();
      await first.stop();
    }
    const second = await startEmulator({ port: 0, dataDir });
    const after = clientsFor(second.endpoint);
    try {
      const url = (await after.sqs.send(new GetQueueUrlCommand({ QueueName: "released" }))).QueueUrl ?? "";
      const { Messages } = await after.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 1, MessageSystemAttributeNames: ["All"] }),
      );
      // Its count goes on: a reset one would let a poison batch run for ever (maxReceiveCount, poisonAfterAttempts).
      expect(Messages?.map((m) => [m.Body, m.Attributes?.ApproximateReceiveCount])).toEqual([["letter", "3"]]);
    } finally {
      after.destroy();
      await second.stop();
    }
  });

  it("refuses a dataDir that another running emulator holds", async () => {
    const dataDir = freshDataDir();
    const running = await startEmulator({ port: 0, dataDir });
    try {
      await expect(startEmulator({ port: 0, dataDir })).rejects.toThrow(/another emulator using this dataDir/);
    } finally {
      await running.stop();
    }
  });

  it("closes its stores on stop, so the same process can open the dataDir again", async () => {
    const dataDir = freshDataDir();
    const first = await startEmulator({ port: 0, dataDir });
    const before = clientsFor(first.endpoint);
    await writeState(before);
    before.destroy();
    await first.stop();

    const second = await startEmulator({ port: 0, dataDir });
    const after = clientsFor(second.endpoint);
    try {
      await expectState(after);
    } finally {
      after.destroy();
      await second.stop();
    }
  });
});

/** Whether `pid` still runs: a child that exited and waits for PID 1 to reap it (a zombie) does not. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

describe("spawnEmulator", () => {
  it("leaves no orphan: the emulator process ends when the process that spawned it is killed", async () => {
    const processModule = new URL("../../src/emulator/process.ts", import.meta.url).href;
    const script = `import { spawnEmulator } from ${JSON.stringify(processModule)};
      const emulator = await spawnEmulator({ port: 0 });
      console.log(emulator.pid);`;
    const parent = spawn(process.execPath, ["--input-type=module", "--eval", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const pid = Number(await new Promise((resolve) => createInterface({ input: parent.stdout }).once("line", resolve)));
    expect(isRunning(pid)).toBe(true);

    parent.kill("SIGKILL");
    for (let i = 0; i < 400 && isRunning(pid); i++) await sleep(25);
    try {
      expect(isRunning(pid)).toBe(false);
    } finally {
      if (isRunning(pid)) process.kill(pid, "SIGKILL");
    }
  });
});
