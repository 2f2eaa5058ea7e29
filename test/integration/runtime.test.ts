// The local runtime's visibility timeout, against the emulator's SQS over HTTP: short, so that a message an exited
// runtime's long poll took comes back within seconds, and renewed, so that a batch worked on for longer stays with
// the runtime that has it.
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../src/emulator/emulator.ts";
import { LOCAL_VISIBILITY_SECONDS, QueueConsumer, type SqsHandler } from "../../src/local/runtime.ts";

let emulator: Emulator;
const clients: SQSClient[] = [];
let queueCount = 0;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
});
afterAll(async () => {
  for (const client of clients) client.destroy();
  await emulator.stop();
});

function sqsClient(): SQSClient {
  const client = new SQSClient({
    endpoint: emulator.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  clients.push(client);
  return client;
}

async function freshQueue(sqs: SQSClient): Promise<{ url: string; arn: string }> {
  queueCount += 1;
  const name = `runtime-${process.pid}-${queueCount}`;
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  return { url: QueueUrl ?? "", arn: `arn:aws:sqs:us-east-1:000000000000:${name}` };
}

function consumer(sqs: SQSClient, queue: { url: string; arn: string }, handler: SqsHandler): QueueConsumer {
  return new QueueConsumer({
    sqs,
    queueUrl: queue.url,
    queueArn: queue.arn,
    handler,
    settings: {
      functionName: "mover",
      batchSize: 1,
      batchingWindowSeconds: 0,
      timeoutSeconds: 60,
      maximumConcurrency: undefined,
      visibilityTimeoutSeconds: 360,
      maxReceiveCount: 5,
      environment: {},
    },
    concurrency: 1,
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the local runtime's visibility timeout", () => {
  it("hands the next runtime a message that an exited runtime's open long poll took", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    // A runtime that exits while its idle long poll is open: the poll's connection goes, the receive stays.
    const exiting = sqsClient();
    const first = consumer(exiting, queue, async () => ({ batchItemFailures: [] }));
    first.start();
    await sleep(300);
    await first.stop();
    exiting.destroy();
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "token" }));

    const got = Promise.withResolvers<SQSRecord>();
    const next = consumer(sqsClient(), queue, async (event) => {
      for (const record of event.Records) got.resolve(record);
      return { batchItemFailures: [] };
    });
    next.start();
    try {
      const record = await got.promise;
      expect(record.body).toBe("token");
      // Received twice: first by the poll left open, then, once its visibility ran out, by the next runtime.
      expect(record.attributes.ApproximateReceiveCount).toBe("2");
    } finally {
      await next.stop();
    }
  }, 10_000); // with the former 10-s visibility the message came back only after this test's time

  it("keeps a batch worked on for longer than the timeout invisible to every other receiver", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "slow batch" }));
    const started = Promise.withResolvers<void>();
    const finish = Promise.withResolvers<void>();
    let invocations = 0;
    const working = consumer(sqs, queue, async () => {
      invocations += 1;
      started.resolve();
      await finish.promise;
      return { batchItemFailures: [] };
    });
    working.start();
    await started.promise;
    // Another receiver polls for twice the timeout; VisibilityTimeout 0 leaves what it might get to the queue.
    const seen: string[] = [];
    const until = Date.now() + 2 * LOCAL_VISIBILITY_SECONDS * 1000;
    while (Date.now() < until) {
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 1, VisibilityTimeout: 0 }),
      );
      for (const message of out.Messages ?? []) seen.push(message.Body ?? "");
    }
    finish.resolve();
    await working.stop();
    expect(seen).toEqual([]);
    expect(invocations).toBe(1);
    const left = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 0 }));
    expect(left.Messages ?? []).toEqual([]); // deleted once the handler returned
  }, 20_000);
});
