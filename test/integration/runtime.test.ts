// The local runtime's visibility timeouts, against the emulator's SQS over HTTP: a receive asks for 1 s, so that a
// message an exited runtime's long poll took comes back after a second, and a live runtime extends what it got at
// once and renews it, so that a batch worked on for longer stays with the runtime that has it.
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AwsClients, createClients, destroyClients, resolveTarget } from "../../src/aws/clients.ts";
import { backOffFailedRecords, queueDepth, sleep } from "../../src/aws/queues.ts";
import {
  LOCAL_VISIBILITY_SECONDS,
  QueueConsumer,
  RECEIVE_VISIBILITY_SECONDS,
  type SqsHandler,
} from "../../src/local/runtime.ts";
import { loadStackSettings } from "../../src/stackSettings.ts";
import { type Harness, startHarness } from "../support/harness.ts";
import { answerLate } from "../support/slowCommands.ts";

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

function consumer(
  sqs: SQSClient,
  queue: { url: string; arn: string },
  handler: SqsHandler,
  {
    visibilitySeconds,
    concurrency = 1,
    batchSize = 1,
    batchingWindowSeconds = 0,
  }: { visibilitySeconds?: number; concurrency?: number; batchSize?: number; batchingWindowSeconds?: number } = {},
): QueueConsumer {
  return new QueueConsumer({
    ...(visibilitySeconds === undefined ? {} : { visibilitySeconds }),
    sqs,
    queueUrl: queue.url,
    queueArn: queue.arn,
    handler,
    // serverless.yml's mover; by default one message an invocation and no batching window, as the local move runs it
    settings: { ...loadStackSettings().mover, batchSize, batchingWindowSeconds },
    concurrency,
  });
}

/** A handler that holds each batch until `finish` resolves; `started` resolves at its first call. */
function holdingHandler() {
  const held = {
    started: Promise.withResolvers<void>(),
    finish: Promise.withResolvers<void>(),
    invocations: 0,
    handler: (async () => {
      held.invocations += 1;
      held.started.resolve();
      await held.finish.promise;
      return { batchItemFailures: [] };
    }) as SqsHandler,
  };
  return held;
}

/** Another receiver polls the queue for `ms`; VisibilityTimeout 0 leaves what it might get to the queue. */
async function bodiesSeenBy(sqs: SQSClient, queueUrl: string, ms: number): Promise<string[]> {
  const seen: string[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1, VisibilityTimeout: 0 }),
    );
    for (const message of out.Messages ?? []) seen.push(message.Body ?? "");
  }
  return seen;
}

describe("the local runtime's visibility timeout", () => {
  it("gets back a message that an exited runtime's open long poll took after 1 s", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    // A runtime that exits while its idle long poll is open: the poll's connection goes, the receive stays. One
    // attempt only: a process that exited does not retry its poll (the SDK would, on a live client).
    const exiting = new SQSClient({
      endpoint: harness.emulator.endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1,
    });
    const first = consumer(exiting, queue, async () => ({ batchItemFailures: [] }));
    first.start();
    await sleep(300);
    await first.stop();
    exiting.destroy();
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "token" }));

    // A 2-s long poll from now ends with what is visible then. The dead poll's 1 s has run out by that time; the
    // former 3 s (LOCAL_VISIBILITY_SECONDS) had not, and this receive came back empty.
    expect(RECEIVE_VISIBILITY_SECONDS).toBeLessThan(2);
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.url,
        WaitTimeSeconds: 2,
        MessageSystemAttributeNames: ["ApproximateReceiveCount"],
      }),
    );
    expect(out.Messages?.map((m) => m.Body)).toEqual(["token"]);
    // Received twice: first by the poll left open, then by this one.
    expect(out.Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe("2");
  }, 10_000);

  it("extends what it receives at once, before the receive's own 1 s runs out", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "batch" }));
    const held = holdingHandler();
    // A 30-s timeout: the heartbeat's first beat comes after 10 s, so only the extension on receipt covers the
    // 2.5 s or more this handler takes. (Before receives asked for 1 s, they asked for this 30 s and passed too.)
    const working = consumer(sqs, queue, held.handler, { visibilitySeconds: 30 });
    working.start();
    await held.started.promise;
    const seen = await bodiesSeenBy(sqs, queue.url, 2500);
    held.finish.resolve();
    await working.stop();
    expect(seen).toEqual([]);
  }, 15_000);

  it("handles what a batch's first receive got when a later receive within the batching window fails", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "first of a batch" }));
    let receives = 0;
    // The receive after the one that got the message fails: the batch must still reach the handler.
    sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "ReceiveMessageCommand" && ++receives === 2) throw new Error("injected: no answer");
        return next(args);
      },
      { step: "initialize", name: "secondReceiveFails" },
    );
    const bodies: string[] = [];
    const handled = Promise.withResolvers<void>();
    const working = consumer(
      sqs,
      queue,
      async (event) => {
        bodies.push(...event.Records.map((r) => r.body));
        handled.resolve();
        return { batchItemFailures: [] };
      },
      { batchSize: 5, batchingWindowSeconds: 2 },
    );
    working.start();
    await Promise.race([handled.promise, sleep(5000)]);
    await working.stop();
    expect(receives).toBeGreaterThanOrEqual(2);
    expect(bodies).toEqual(["first of a batch"]);
    expect(await queueDepth(sqs, queue.url)).toEqual({ visible: 0, inFlight: 0 });
  }, 15_000);

  it("keeps a batch worked on for longer than the timeout invisible to every other receiver", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "slow batch" }));
    const held = holdingHandler();
    const working = consumer(sqs, queue, held.handler);
    working.start();
    await held.started.promise;
    const seen = await bodiesSeenBy(sqs, queue.url, 2 * LOCAL_VISIBILITY_SECONDS * 1000); // twice the timeout
    held.finish.resolve();
    await working.stop();
    expect(seen).toEqual([]);
    expect(held.invocations).toBe(1);
    // Deleted once the handler returned: still hidden by its last renewal, it would count as in flight.
    expect(await queueDepth(sqs, queue.url)).toEqual({ visible: 0, inFlight: 0 });
  }, 20_000);

  it("ends an invocation that runs past the function's timeout, as Lambda does, and retries its batch", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "hangs once" }));
    const errors: unknown[] = [];
    let invocations = 0;
    const retried = Promise.withResolvers<void>();
    const hanging = new QueueConsumer({
      sqs,
      queueUrl: queue.url,
      queueArn: queue.arn,
      // The first invocation never returns (as a handler stuck on a call that never answers).
      handler: async () => {
        invocations += 1;
        if (invocations === 1) await new Promise(() => {});
        retried.resolve();
        return { batchItemFailures: [] };
      },
      settings: { ...loadStackSettings().mover, batchSize: 1, batchingWindowSeconds: 0, timeoutSeconds: 2 },
      concurrency: 1,
      onError: (error) => errors.push(error),
    });
    hanging.start();
    await retried.promise;
    await hanging.stop();
    expect(invocations).toBe(2);
    expect(errors).toEqual([
      new Error("Task timed out after 2 seconds; its batch goes back to the queue"),
      // stop() waited a while for the first, which never returns, and said so
      new Error(
        "1 invocation(s) that ran past their timeout still run; what they still do lands as a duplicate delivery's would",
      ),
    ]);
    expect(await queueDepth(sqs, queue.url)).toEqual({ visible: 0, inFlight: 0 });
  }, 15_000);

  it("takes no batch while more invocations past their timeout still run than its concurrency", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    for (const body of ["stuck 1", "stuck 2"])
      await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: body }));
    let invocations = 0;
    const stuck = new QueueConsumer({
      sqs,
      queueUrl: queue.url,
      queueArn: queue.arn,
      handler: async () => {
        invocations += 1;
        return new Promise(() => {}); // every invocation hangs
      },
      settings: { ...loadStackSettings().mover, batchSize: 1, batchingWindowSeconds: 0, timeoutSeconds: 1 },
      concurrency: 1,
      onError: () => undefined,
    });
    stuck.start();
    // The first times out at 1 s and the second batch starts; that one times out at 2 s, and then two run past their
    // timeout, one more than the concurrency: no batch starts. Without the bound, one would start every second.
    await sleep(3500);
    await stuck.stop();
    expect(invocations).toBe(2);
  }, 15_000);

  it("retries a failed record one back-off after its handler returns, though a heartbeat renewed it meanwhile", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "fails once" }));
    let returnedAt = 0;
    let retriedAt = 0;
    const retried = Promise.withResolvers<void>();
    const failing = consumer(sqs, queue, async (event) => {
      if (returnedAt > 0) {
        retriedAt = Date.now();
        retried.resolve();
        return { batchItemFailures: [] };
      }
      // As the lister and mover do on a partial failure: back the record off (1 s on a first receive), then return
      // it as failed. The heartbeat beats every second; this handler returns 1.5 s after its back-off.
      const response = { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
      await backOffFailedRecords(sqs, queue.url, event, response);
      await sleep(1500);
      returnedAt = Date.now();
      return response;
    });
    failing.start();
    await retried.promise;
    await failing.stop();
    // 1 s after the return, and a poll. When a beat's renewal of the full LOCAL_VISIBILITY_SECONDS (3 s) after the
    // back-off stood, the retry came 2.0–3.0 s after the return, depending on the beat (2.5 s measured; now 1.0 s).
    expect(retriedAt - returnedAt).toBeLessThan(1800);
  }, 15_000);

  it("starts the handler without waiting for the extension, and deletes the message once both are done", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "first batch" }));
    // An extension that takes 400 ms to leave, well inside the receive's 1 s: SQS still grants it.
    const slowExtensions = sqsClient();
    const order: string[] = [];
    answerLate(slowExtensions, "ChangeMessageVisibilityBatchCommand", 400, () => order.push("extended"));
    const handled = Promise.withResolvers<void>();
    const working = consumer(slowExtensions, queue, async () => {
      order.push("handler started");
      handled.resolve();
      return { batchItemFailures: [] };
    });
    working.start();
    await handled.promise;
    await sleep(600); // the extension has landed and the message has been deleted by now
    await working.stop();
    expect(order).toEqual(["handler started", "extended"]);
    // Deleted, not merely invisible: the extension was granted, so the message was this runtime's to delete.
    expect(await queueDepth(sqs, queue.url)).toEqual({ visible: 0, inFlight: 0 });
  }, 15_000);

  it("leaves a message whose 1 s ran out before its extension to the receiver that has it now", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "stalled" }));
    // A runtime whose extension takes 1.5 s to arrive, as after a stall: the message is back in the queue by then.
    const stalled = sqsClient();
    const received = Promise.withResolvers<void>();
    const deletes: string[] = [];
    stalled.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "ChangeMessageVisibilityBatchCommand") {
          received.resolve(); // the stalled runtime has the message: its extension follows a receive
          await sleep(1500);
        }
        if (context.commandName === "DeleteMessageBatchCommand") deletes.push(context.commandName);
        return next(args);
      },
      { step: "initialize", name: "stallExtensions" },
    );
    let invocations = 0;
    const slow = consumer(stalled, queue, async () => {
      invocations += 1;
      return { batchItemFailures: [] };
    });
    slow.start();
    await received.promise;
    // Another receiver takes it once the 1 s is over, and keeps it for the rest of the test.
    let taken: Message | undefined;
    const until = Date.now() + 4000;
    while (taken === undefined && Date.now() < until) {
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 1, VisibilityTimeout: 30 }),
      );
      taken = out.Messages?.[0];
    }
    await sleep(1000); // the stalled extension has been refused by now
    await slow.stop();
    expect(taken?.Body).toBe("stalled");
    // Its handler ran at once, beside the extension, as Lambda's would on a duplicate delivery...
    expect(invocations).toBe(1);
    // ...but the runtime that lost the message did not delete it (SQS may honour a stale receipt handle; the
    // emulator does not, hence both checks): it is still there for the receiver that has it.
    expect(deletes).toEqual([]);
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queue.url,
        ReceiptHandle: taken?.ReceiptHandle ?? "",
        VisibilityTimeout: 0,
      }),
    );
    const again = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 1 }));
    expect(again.Messages?.map((m) => m.Body)).toEqual(["stalled"]);
  }, 15_000);
});

describe("the local runtime's concurrency", () => {
  it("refuses a concurrency or a visibility timeout it could not run with", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    const idle: SqsHandler = async () => ({ batchItemFailures: [] });
    for (const concurrency of [0, -1, 1.5, Number.NaN]) {
      expect(() => consumer(sqs, queue, idle, { concurrency })).toThrow(/`concurrency` to be a positive integer/);
    }
    for (const visibilitySeconds of [0, 0.5, 1, 2.5]) {
      expect(() => consumer(sqs, queue, idle, { visibilitySeconds })).toThrow(
        /`visibilitySeconds` to be a whole number of seconds, 2 or more/,
      );
    }
    // The smallest it runs with receives and finishes a message.
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "one" }));
    const seen: string[] = [];
    const smallest = consumer(
      sqs,
      queue,
      async (event) => {
        seen.push(...event.Records.map((r) => r.body));
        return { batchItemFailures: [] };
      },
      { concurrency: 1, visibilitySeconds: 2 },
    );
    smallest.start();
    for (let i = 0; i < 50 && seen.length === 0; i++) await sleep(100);
    await smallest.stop();
    expect(seen).toEqual(["one"]);
  });

  it("never has more invocations in hand than its concurrency, though several pollers wake at once", async () => {
    const sqs = sqsClient();
    const queue = await freshQueue(sqs);
    for (let i = 0; i < 6; i++) await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: `m${i}` }));
    let running = 0;
    let most = 0;
    let handled = 0;
    const waiting: Array<() => void> = [];
    const limited = consumer(
      sqs,
      queue,
      async () => {
        running += 1;
        most = Math.max(most, running);
        await new Promise<void>((resolve) => waiting.push(resolve));
        running -= 1;
        handled += 1;
        return { batchItemFailures: [] };
      },
      { concurrency: 2 }, // two pollers
    );
    limited.start();
    // Let one invocation finish at a time, each once the pollers have had time to take whatever they would.
    while (handled < 6) {
      await sleep(400);
      waiting.shift()?.();
    }
    await limited.stop();
    // Before 398d0c8 both pollers woke when one of two invocations ended, saw one in flight, and each took a
    // message: three.
    expect(most).toBe(2);
  }, 20_000);
});
