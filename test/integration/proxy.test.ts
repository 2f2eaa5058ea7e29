import { createHash } from "node:crypto";
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../src/emulator/emulator.ts";
import { makeJpeg } from "../../src/images/jpeg.ts";
import { type LoopbackProxy, startProxy } from "../support/proxy.ts";

const region = "us-east-1";
const credentials = { accessKeyId: "test", secretAccessKey: "test" };
const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

/** How a call ended: "ok", the error's name with its HTTP status, or "no answer" for a dropped connection. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "ok";
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    return status === undefined ? "no answer" : `${(err as Error).name} ${status}`;
  }
}

describe("startProxy", () => {
  let emulator: Emulator;
  let proxy: LoopbackProxy;
  let s3: S3Client;
  let sqs: SQSClient;
  let dynamo: DynamoDBClient;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
    proxy = await startProxy({ target: emulator.endpoint, latencyMs: 1 });
    // One attempt per call, so the proxy's counts and faults show one to one in what the test sees.
    const config = { endpoint: proxy.endpoint, region, credentials, maxAttempts: 1 };
    s3 = new S3Client({ ...config, forcePathStyle: true });
    sqs = new SQSClient(config);
    dynamo = new DynamoDBClient(config);
    await s3.send(new CreateBucketCommand({ Bucket: "proxied" }));
    await s3.send(new PutObjectCommand({ Bucket: "proxied", Key: "a.jpg", Body: makeJpeg(1, 1024) }));
    await s3.send(new PutObjectCommand({ Bucket: "proxied", Key: "b.jpg", Body: makeJpeg(2, 1024) }));
    await dynamo.send(
      new CreateTableCommand({
        TableName: "counted",
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    // dynalite answers CreateTable with CREATING, like AWS.
    await waitUntilTableExists(
      { client: dynamo, maxWaitTime: 10, minDelay: 0.01, maxDelay: 0.1 },
      { TableName: "counted" },
    );
  });
  beforeEach(() => {
    proxy.resetCounts();
    proxy.setFaults(undefined);
    proxy.setRespond(undefined);
  });
  afterAll(async () => {
    for (const client of [s3, sqs, dynamo]) client.destroy();
    await proxy.stop();
    await emulator.stop();
  });

  it("listens on 127.0.0.1", () => {
    expect(proxy.endpoint).toBe(`http://127.0.0.1:${proxy.port}`);
  });

  it("forwards every call and counts it per service and operation", async () => {
    await s3.send(new HeadObjectCommand({ Bucket: "proxied", Key: "a.jpg" }));
    await s3.send(new GetObjectCommand({ Bucket: "proxied", Key: "a.jpg" }));
    await s3.send(new ListObjectsV2Command({ Bucket: "proxied" }));
    await s3.send(new CopyObjectCommand({ Bucket: "proxied", Key: "c.jpg", CopySource: "proxied/a.jpg" }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "proxied", Key: "d.jpg" }));
    const part = await s3.send(
      new UploadPartCopyCommand({
        Bucket: "proxied",
        Key: "d.jpg",
        UploadId,
        PartNumber: 1,
        CopySource: "proxied/b.jpg",
      }),
    );
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: "proxied",
        Key: "d.jpg",
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.CopyPartResult?.ETag }] },
      }),
    );
    await s3.send(new DeleteObjectsCommand({ Bucket: "proxied", Delete: { Objects: [{ Key: "c.jpg" }] } }));
    await s3.send(new DeleteObjectCommand({ Bucket: "proxied", Key: "d.jpg" }));
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "counted" }));
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "hello" }));
    await sqs.send(new ReceiveMessageCommand({ QueueUrl }));
    await dynamo.send(new PutItemCommand({ TableName: "counted", Item: { pk: { S: "x" } } }));
    await dynamo.send(new GetItemCommand({ TableName: "counted", Key: { pk: { S: "x" } } }));

    expect(proxy.counts()).toEqual({
      s3: 9,
      sqs: 3,
      dynamodb: 2,
      byOperation: {
        HeadObject: 1,
        GetObject: 1,
        ListObjectsV2: 1,
        CopyObject: 1,
        CreateMultipartUpload: 1,
        UploadPartCopy: 1,
        CompleteMultipartUpload: 1,
        DeleteObjects: 1,
        DeleteObject: 1,
        CreateQueue: 1,
        SendMessage: 1,
        ReceiveMessage: 1,
        PutItem: 1,
        GetItem: 1,
      },
    });
  });

  it("streams large bodies both ways unchanged", async () => {
    const body = makeJpeg(3, 6 * 1024 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: "proxied", Key: "large.jpg", Body: body }));
    const out = await s3.send(new GetObjectCommand({ Bucket: "proxied", Key: "large.jpg" }));
    expect(md5(await (out.Body?.transformToByteArray() ?? new Uint8Array()))).toBe(md5(body));
  });

  it("classifies a Query-protocol SQS call by the Action in its form body, and still forwards the body", async () => {
    const response = await fetch(proxy.endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "Action=ListQueues&Version=2012-11-05",
    });
    await response.arrayBuffer();
    expect(proxy.counts()).toMatchObject({ s3: 0, sqs: 1, byOperation: { ListQueues: 1 } });
  });

  it("fails about `rate` of the matching requests with S3's own errors, and leaves the others alone", async () => {
    proxy.setFaults({ rate: 0.25, seed: 42, only: (req) => req.operation === "GetObject" });
    const get = async () => {
      const out = await s3.send(new GetObjectCommand({ Bucket: "proxied", Key: "a.jpg" }));
      await out.Body?.transformToByteArray(); // an unread body keeps its socket busy
    };
    const gets = await Promise.all(Array.from({ length: 400 }, () => outcome(get())));
    const heads = await Promise.all(
      Array.from({ length: 50 }, () => outcome(s3.send(new HeadObjectCommand({ Bucket: "proxied", Key: "a.jpg" })))),
    );

    const failed = gets.filter((o) => o !== "ok");
    expect(failed.length).toBeGreaterThan(400 * 0.15);
    expect(failed.length).toBeLessThan(400 * 0.35);
    expect(new Set(failed)).toEqual(new Set(["InternalError 500", "SlowDown 503", "no answer"]));
    expect(new Set(heads)).toEqual(new Set(["ok"]));
    expect(proxy.counts().byOperation).toEqual({ GetObject: 400, HeadObject: 50 });
  });

  it("fails the same requests again for the same seed", async () => {
    const run = async () => {
      proxy.setFaults({ rate: 0.3, seed: 7, kinds: ["500", "503"] });
      const outcomes: string[] = [];
      for (let i = 0; i < 40; i++) {
        outcomes.push(await outcome(s3.send(new HeadObjectCommand({ Bucket: "proxied", Key: "a.jpg" }))));
      }
      return outcomes;
    };
    const first = await run();
    expect(first).toContain("ok");
    expect(first.some((o) => o !== "ok")).toBe(true);
    expect(await run()).toEqual(first);
  });

  it("fails SQS and DynamoDB calls with errors their SDKs recognise", async () => {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "faulty" }));
    proxy.setFaults({ rate: 1, kinds: ["503"] });
    expect(await outcome(sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "x" })))).toBe(
      "ServiceUnavailable 503",
    );
    proxy.setFaults({ rate: 1, kinds: ["500"] });
    expect(await outcome(sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "x" })))).toBe("InternalFailure 500");
    expect(await outcome(dynamo.send(new GetItemCommand({ TableName: "counted", Key: { pk: { S: "x" } } })))).toBe(
      "InternalServerError 500",
    );
  });

  it("lets the SDK retry through faults to success", async () => {
    const retrying = new S3Client({
      endpoint: proxy.endpoint,
      region,
      credentials,
      forcePathStyle: true,
      maxAttempts: 5,
    });
    proxy.setFaults({ rate: 0.3, seed: 3, kinds: ["500", "503", "reset"] });
    try {
      for (let i = 0; i < 10; i++) {
        const head = await retrying.send(new HeadObjectCommand({ Bucket: "proxied", Key: "b.jpg" }));
        expect(head.ContentLength).toBe(1024);
      }
    } finally {
      retrying.destroy();
    }
    expect(proxy.counts().byOperation.HeadObject).toBeGreaterThan(10);
  });

  it("answers chosen requests itself with `respond`", async () => {
    proxy.setRespond((req) =>
      req.operation === "CopyObject" && req.headers["x-amz-copy-source"] === "proxied/b.jpg"
        ? {
            status: 412,
            headers: { "content-type": "application/xml" },
            body: "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>",
          }
        : undefined,
    );
    const copy = (key: string) =>
      outcome(
        s3.send(new CopyObjectCommand({ Bucket: "proxied", Key: `copied/${key}`, CopySource: `proxied/${key}` })),
      );

    expect(await copy("a.jpg")).toBe("ok");
    expect(await copy("b.jpg")).toBe("PreconditionFailed 412");
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: "proxied", Prefix: "copied/" }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual(["copied/a.jpg"]);

    proxy.setRespond(undefined);
    expect(await copy("b.jpg")).toBe("ok");
    expect(proxy.counts().byOperation.CopyObject).toBe(3);
  });
});
