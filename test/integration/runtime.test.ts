// The local runtime's visibility timeout, against the emulator's SQS over HTTP: short, so that a message an exited
// runtime's long poll took comes back within seconds, and renewed, so that a batch worked on for longer stays with
// the runtime that has it.
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AwsClients, createClients, destroyClients, resolveTarget } from "../../src/aws/clients.ts";
import { sleep } from "../../src/aws/queues.ts";
import { LOCAL_VISIBILITY_SECONDS, QueueConsumer, type SqsHandler } from "../../src/local/runtime.ts";
import { loadStackSettings } from "../../src/stackSettings.ts";
import { type Harness, startHarness } from "../support/harness.ts";

let harness: Harness;
const opened: AwsClients[] = [];
let queueCount = 0;

beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  for (const clients of opened) destroyClients(clients);
  await harness.stop();
});

/** An SQS client of its own, as a runtime in another process would have. */
function sqsClient(): SQSClient {
  const clients = createClients(resolveTarget({ endpoint: harness.emulator.endpoint }));
  opened.push(clients);
  return clients.sqs;
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
    // serverless.yml's mover, one message an invocation and no batching window, as the local move runs it
    settings: { ...loadStackSettings().mover, batchSize: 1, batchingWindowSeconds: 0 },
    concurrency: 1,
  });
}

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
