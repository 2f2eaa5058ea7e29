import {
  type Message,
  ReceiveMessageCommand,
  type ReceiveMessageCommandOutput,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { backOffSqsRecords, changeVisibility, deleteMessages, sleep } from "../aws/queues.ts";
import type { ConsumerSettings } from "../stackSettings.ts";

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/**
 * The local visibility timeout of a message a runtime works on, renewed every second by the heartbeat. A batch in hand
 * reappears only if its runtime's event loop stalls for 2 s; a crashed runtime's batches come back after this long.
 */
export const LOCAL_VISIBILITY_SECONDS = 3;

/**
 * What each receive asks for: 1 s, SQS's shortest. A receive can outlive its process: a runtime exits with its idle
 * long poll (up to 1 s) still open, and the emulator (or SQS) may hand a message to that poll after the exit. A live
 * runtime extends what it receives to LOCAL_VISIBILITY_SECONDS as its handler starts (one round trip, beside the
 * handler); a dead poll's message comes back after 1 s. (It was 10 s, then 3 s: a move started right after another
 * waited that long for its list token or first batch.)
 */
export const RECEIVE_VISIBILITY_SECONDS = 1;

export interface ConsumerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  handler: SqsHandler;
  settings: ConsumerSettings;
  /** Invocations in flight at once (Lambda's concurrency). */
  concurrency: number;
  /**
   * What received messages are extended to, default LOCAL_VISIBILITY_SECONDS; the heartbeat renews it every third of
   * it, at most once a second. Receives ask for min(RECEIVE_VISIBILITY_SECONDS, this).
   */
  visibilitySeconds?: number;
  onError?: (error: unknown) => void;
}

/**
 * Polls one queue the way Lambda's SQS event source mapping does: batches of up to `batchSize` records gathered
 * within the batching window, up to `concurrency` invocations in flight, records named in `batchItemFailures`
 * left for retry and the rest deleted. The handler is the Lambda handler itself.
 */
export class QueueConsumer {
  readonly #options: Required<Omit<ConsumerOptions, "onError">> & Pick<ConsumerOptions, "onError">;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #heartbeats = new Map<string, string>(); // messageId → receiptHandle of records being worked on
  readonly #beats = new Set<Promise<unknown>>(); // heartbeat extensions in flight
  readonly #abandoned = new Set<Promise<unknown>>(); // invocations past their timeout, still running (withinTimeout)
  #stopped = Promise.withResolvers<void>(); // resolved by stop(): pollers waiting for a slot wake up
  #receiving = 0; // pollers with a receive out: each may bring back an invocation
  #running = false;
  #loops: Promise<void>[] = [];
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #invocations = 0;

  constructor(options: ConsumerOptions) {
    const { concurrency, visibilitySeconds = LOCAL_VISIBILITY_SECONDS } = options;
    // At 0 no poller would ever receive, and a move would wait for its batches forever.
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new TypeError(`Expected \`concurrency\` to be a positive integer, got ${concurrency}.`);
    }
    // SQS takes whole seconds, and the heartbeat beats at most once a second: at 1 s a late beat would leave a batch
    // in hand to every receiver.
    if (!Number.isInteger(visibilitySeconds) || visibilitySeconds < 2) {
      throw new TypeError(
        `Expected \`visibilitySeconds\` to be a whole number of seconds, 2 or more, got ${visibilitySeconds}.`,
      );
    }
    this.#options = { ...options, visibilitySeconds };
  }

  get invocations(): number {
    return this.#invocations;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#stopped = Promise.withResolvers<void>();
    const pollers = Math.min(4, this.#options.concurrency); // concurrency is 1 or more (the constructor)
    this.#loops = Array.from({ length: pollers }, () => this.#poll());
    const every = Math.max(1, this.#options.visibilitySeconds / 3) * 1000;
    this.#heartbeatTimer = setInterval(() => {
      const beat = this.#extendVisibility().finally(() => this.#beats.delete(beat));
      this.#beats.add(beat);
    }, every);
  }

  /**
   * Stops polling and waits for the invocations in flight to finish, and up to ABANDONED_GRACE_MS for those that ran
   * past their timeout (said through onError if some still run). A long poll still open (at most 1 s) is not waited
   * for: whatever it receives after this is handed straight back to the queue. `polled` resolves after it.
   */
  async stop(): Promise<void> {
    this.#running = false;
    this.#stopped.resolve();
    await Promise.all(this.#inFlight);
    clearInterval(this.#heartbeatTimer);
    if (this.#abandoned.size === 0) return;
    const settled = Promise.allSettled(this.#abandoned).then(() => true);
    if (!(await Promise.race([settled, sleep(ABANDONED_GRACE_MS).then(() => false)]))) {
      this.#options.onError?.(
        new Error(
          `${this.#abandoned.size} invocation(s) that ran past their timeout still run; what they still do lands as a duplicate delivery's would`,
        ),
      );
    }
  }

  /** Resolves when the last long poll has returned (after stop()). */
  get polled(): Promise<void> {
    return Promise.all(this.#loops).then(() => undefined);
  }

  async #poll(): Promise<void> {
    while (this.#running) {
      // A receive out counts as an invocation: pollers that wake together when one ends would otherwise each take
      // a batch. This poller's own receive is not out, so at least one invocation is in flight to wait for.
      // Invocations past their timeout free their slot, as on Lambda, so that their batches are retried; but no
      // more of them than the concurrency, for they still hold their keys and whatever they are stuck on: past that,
      // no batch is taken until one ends.
      const { concurrency } = this.#options;
      if (this.#inFlight.size + this.#receiving >= concurrency || this.#abandoned.size > concurrency) {
        await Promise.race([...this.#inFlight, ...this.#abandoned, this.#stopped.promise]);
        continue;
      }
      this.#receiving += 1;
      let failed = false;
      try {
        const { messages, lost } = await this.#receiveBatch();
        if (messages.length > 0 && this.#running) this.#invoke(messages, lost);
        else if (messages.length > 0) {
          await lost; // an extension still out would otherwise land after the release and hide them for 3 s
          await this.#release(messages);
        }
      } catch (error) {
        if (!this.#running) break; // stopped meanwhile (e.g. its clients were destroyed)
        this.#options.onError?.(error);
        failed = true;
      } finally {
        this.#receiving -= 1;
      }
      if (failed) await sleep(500); // without holding a slot meanwhile
    }
  }

  /**
   * Gathers up to batchSize messages, waiting at most the batching window once the first has arrived. `lost`
   * resolves to the receipt handles whose extension SQS refused (see #claim).
   */
  async #receiveBatch(): Promise<{ messages: Message[]; lost: Promise<Set<string>> }> {
    const { settings, sqs, queueUrl, visibilitySeconds } = this.#options;
    const messages: Message[] = [];
    const claims: Array<Promise<Set<string>>> = [];
    const windowEnds = Date.now() + settings.batchingWindowSeconds * 1000;
    do {
      let out: ReceiveMessageCommandOutput;
      try {
        out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(10, settings.batchSize - messages.length),
            // Short long-polls so that stop() returns promptly; messages still arrive the moment they exist.
            WaitTimeSeconds: messages.length === 0 ? 1 : 0,
            VisibilityTimeout: Math.min(RECEIVE_VISIBILITY_SECONDS, visibilitySeconds),
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
          }),
        );
      } catch (error) {
        // Messages already received are held (their heartbeat runs): they go to the handler rather than be stranded.
        if (messages.length === 0) throw error;
        this.#options.onError?.(error);
        break;
      }
      const received = out.Messages ?? [];
      // After stop() the caller hands them back, unextended.
      if (this.#running) {
        const claim = this.#claim(received);
        messages.push(...claim.held);
        claims.push(claim.lost);
      } else messages.push(...received);
      if (received.length === 0) break;
    } while (messages.length < settings.batchSize && Date.now() < windowEnds && this.#running);
    const lost = Promise.all(claims).then((sets) => new Set(sets.flatMap((set) => [...set])));
    return { messages, lost };
  }

  #invoke(messages: Message[], lost: Promise<Set<string>>): void {
    const run = this.#handle(messages, lost).finally(() => this.#inFlight.delete(run));
    this.#inFlight.add(run);
  }

  async #handle(messages: Message[], lost: Promise<Set<string>>): Promise<void> {
    const { handler, settings } = this.#options;
    const event: SQSEvent = { Records: messages.map((m) => toSqsRecord(m, this.#options.queueArn)) };
    this.#invocations += 1;
    let failedIds: Set<string>;
    try {
      const response = await withinTimeout(handler(event, lambdaContext(settings)), settings.timeoutSeconds, (late) => {
        this.#abandoned.add(late);
        void late.finally(() => this.#abandoned.delete(late));
      });
      failedIds = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (error) {
      // A thrown invocation fails the whole batch, as on Lambda.
      this.#options.onError?.(error);
      failedIds = new Set(event.Records.map((r) => r.messageId));
    } finally {
      for (const record of event.Records) {
        // Only this receive's entry: the same message received again meanwhile is another invocation's to drop.
        if (this.#heartbeats.get(record.messageId) === record.receiptHandle) this.#heartbeats.delete(record.messageId);
      }
    }
    // A record whose extension was refused is another receiver's now: that one deletes or retries it.
    const refused = await lost;
    const ours = event.Records.filter((r) => !refused.has(r.receiptHandle));
    await Promise.all([
      this.#backOff(ours.filter((r) => failedIds.has(r.messageId))),
      this.#delete(ours.filter((r) => !failedIds.has(r.messageId))),
    ]);
  }

  /**
   * Failed records are backed off here, once the heartbeat has let go of them and the beats in flight have landed,
   * so that they are retried soon. The handlers back off their failed records too (Lambda has no heartbeat), but a
   * beat between that and their return set the full timeout again: a 1-s back-off became 3 s from that beat.
   */
  async #backOff(failed: readonly SQSRecord[]): Promise<void> {
    if (failed.length === 0) return;
    await Promise.all(this.#beats);
    await backOffSqsRecords(this.#options.sqs, this.#options.queueUrl, failed);
  }

  async #delete(records: readonly SQSRecord[]): Promise<void> {
    const { sqs, queueUrl, onError } = this.#options;
    // Whatever stays undeleted comes back after its visibility timeout, and the handler skips what is done.
    await deleteMessages(
      sqs,
      queueUrl,
      records.map((r) => r.receiptHandle),
      (error) => onError?.(error),
    );
  }

  /** Gives messages received after stop() back to the queue at once. */
  async #release(messages: Message[]): Promise<void> {
    for (const m of messages) if (m.MessageId) this.#heartbeats.delete(m.MessageId);
    // If this fails they come back after the receive's 1 s.
    await changeVisibility(
      this.#options.sqs,
      this.#options.queueUrl,
      messages.map((m) => ({ receiptHandle: m.ReceiptHandle ?? "", seconds: 0 })),
    );
  }

  /**
   * Extends what a receive got from its 1 s to the runtime's visibility timeout, beside the handler rather than before
   * it: a round trip less on the way to a move's first copy, twice (the list token, then the first batch). `lost`
   * resolves to the receipt handles SQS refused: such a message ran out of its 1 s first (a stall of a second or more)
   * and may be another receiver's by now. Its handler runs anyway, as Lambda's would on a duplicate delivery (the
   * handlers are idempotent), but this runtime neither renews, deletes nor backs it off.
   */
  #claim(received: readonly Message[]): { held: Message[]; lost: Promise<Set<string>> } {
    const held = received.filter((m): m is Message & { MessageId: string; ReceiptHandle: string } =>
      Boolean(m.MessageId && m.ReceiptHandle),
    );
    if (held.length === 0) return { held, lost: Promise.resolve(new Set()) };
    for (const m of held) this.#heartbeats.set(m.MessageId, m.ReceiptHandle);
    const lost = this.#extendVisibility(held.map((m) => m.ReceiptHandle)).then((refused) => {
      for (const m of held) {
        if (refused.has(m.ReceiptHandle) && this.#heartbeats.get(m.MessageId) === m.ReceiptHandle) {
          this.#heartbeats.delete(m.MessageId);
        }
      }
      return refused;
    });
    return { held, lost };
  }

  /**
   * Renews the visibility of the given receipt handles, by default of every record being worked on; returns those
   * SQS refused. A request that fails whole is reported and refuses nothing.
   */
  #extendVisibility(entries: readonly string[] = [...this.#heartbeats.values()]): Promise<Set<string>> {
    const { sqs, queueUrl, visibilitySeconds, onError } = this.#options;
    return changeVisibility(
      sqs,
      queueUrl,
      entries.map((receiptHandle) => ({ receiptHandle, seconds: visibilitySeconds })),
      (error) => onError?.(error),
    );
  }
}

/** An SQS message as Lambda's event source mapping hands it to a function. */
export function toSqsRecord(message: Message, queueArn: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? "",
    receiptHandle: message.ReceiptHandle ?? "",
    body: message.Body ?? "",
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? "1",
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? "local",
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      ...(attributes.MessageGroupId ? { MessageGroupId: attributes.MessageGroupId } : {}),
      ...(attributes.MessageDeduplicationId ? { MessageDeduplicationId: attributes.MessageDeduplicationId } : {}),
      ...(attributes.SequenceNumber ? { SequenceNumber: attributes.SequenceNumber } : {}),
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: "us-east-1",
  };
}

/** How long stop() waits for invocations that ran past their timeout. */
const ABANDONED_GRACE_MS = 2000;

/**
 * What the handler returns, or a "timed out" error once the function's timeout has passed, as Lambda ends an
 * invocation that runs past it. Its batch then fails and comes back, rather than stay in flight for as long as the
 * heartbeat runs. Unlike Lambda this cannot stop the handler: it is handed to `abandon`, and what it still does
 * lands as a duplicate delivery's would.
 */
async function withinTimeout<T>(
  invocation: Promise<T>,
  timeoutSeconds: number,
  abandon: (late: Promise<unknown>) => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abandon(invocation.catch(() => undefined)); // its later failure is nobody's to report
      reject(new Error(`Task timed out after ${timeoutSeconds} seconds; its batch goes back to the queue`));
    }, timeoutSeconds * 1000);
  });
  invocation.catch(() => {}); // a failure after the timeout is not an unhandled rejection
  try {
    return await Promise.race([invocation, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** A Lambda context for a local invocation: the function's timeout drives getRemainingTimeInMillis. */
export function lambdaContext(settings: Pick<ConsumerSettings, "functionName" | "timeoutSeconds">): Context {
  const deadline = Date.now() + settings.timeoutSeconds * 1000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: settings.functionName,
    functionVersion: "$LOCAL",
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${settings.functionName}`,
    memoryLimitInMB: "1024",
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/local/${settings.functionName}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
