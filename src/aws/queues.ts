import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { describeError, MoverError } from "../errors.ts";

const MAX_ENTRIES_PER_BATCH = 10; // SendMessageBatch / DeleteMessageBatch limit
const DELETE_TRIES = 5; // per DeleteMessageBatch request, in deleteMessages
// The whole SendMessageBatch counts like one message; 256 KiB is accepted everywhere (1 MiB since 2025).
const MAX_BATCH_BYTES = 250_000;

export interface OutgoingMessage {
  /** Unique within one call; letters, digits, - and _ only. */
  id: string;
  body: string;
  groupId?: string;
  deduplicationId?: string;
  delaySeconds?: number;
}

/**
 * Sends messages with SendMessageBatch, up to 10 entries and 250 KB a call, retrying the entries that come back
 * in `Failed[]` (the call answers 200 even when some entries failed). Throws if any entry still fails.
 */
export async function sendMessages(
  sqs: SQSClient,
  queueUrl: string,
  messages: readonly OutgoingMessage[],
): Promise<void> {
  const calls: OutgoingMessage[][] = [];
  let current: OutgoingMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = Buffer.byteLength(message.body);
    if (current.length === MAX_ENTRIES_PER_BATCH || (current.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
      calls.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) calls.push(current);
  await Promise.all(calls.map((entries) => sendBatchWithRetries(sqs, queueUrl, entries)));
}

async function sendBatchWithRetries(sqs: SQSClient, queueUrl: string, messages: OutgoingMessage[]): Promise<void> {
  let pending = messages;
  for (let attempt = 1; ; attempt++) {
    const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending.map(toEntry) }));
    const failed = out.Failed ?? [];
    if (failed.length === 0) return;
    const failedIds = new Set(failed.map((f) => f.Id));
    const permanent = failed.filter((f) => f.SenderFault);
    if (permanent.length > 0 || attempt >= 5) {
      const first = failed[0];
      throw new MoverError(
        `SendMessageBatch to ${queueUrl} failed for ${failed.length} message(s): ${first?.Code} ${first?.Message ?? ""}`,
      );
    }
    pending = pending.filter((m) => failedIds.has(m.id));
    await sleep(100 * 2 ** attempt);
  }
}

function toEntry(message: OutgoingMessage): SendMessageBatchRequestEntry {
  return {
    Id: message.id,
    MessageBody: message.body,
    ...(message.groupId ? { MessageGroupId: message.groupId } : {}),
    ...(message.deduplicationId ? { MessageDeduplicationId: message.deduplicationId } : {}),
    ...(message.delaySeconds ? { DelaySeconds: message.delaySeconds } : {}),
  };
}

/**
 * Makes failed records visible again after a short, growing delay instead of the queue's full visibility timeout
 * (which must be 6x the function timeout): 1 s, 2 s, 4 s ... capped at 60 s. Best effort: on error the record simply
 * waits for its visibility timeout.
 */
export async function backOffRecords(
  sqs: SQSClient,
  queueUrl: string,
  records: ReadonlyArray<{ receiptHandle: string; receiveCount: number }>,
): Promise<void> {
  await changeVisibility(
    sqs,
    queueUrl,
    records.map((record) => ({ receiptHandle: record.receiptHandle, seconds: retryDelaySeconds(record.receiveCount) })),
  );
}

/**
 * Sets each receipt handle's visibility timeout, ten a request, and returns the handles SQS refused (no longer in
 * flight under that handle). A request that fails whole goes to `onError` (by default it is ignored) and refuses
 * nothing: its messages keep the time they have.
 */
export async function changeVisibility(
  sqs: SQSClient,
  queueUrl: string,
  entries: ReadonlyArray<{ receiptHandle: string; seconds: number }>,
  onError: (error: unknown) => void = () => undefined,
): Promise<Set<string>> {
  const refused = new Set<string>();
  for (let i = 0; i < entries.length; i += MAX_ENTRIES_PER_BATCH) {
    const chunk = entries.slice(i, i + MAX_ENTRIES_PER_BATCH);
    const out = await sqs
      .send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((entry, j) => ({
            Id: String(j),
            ReceiptHandle: entry.receiptHandle,
            VisibilityTimeout: entry.seconds,
          })),
        }),
      )
      .catch(onError);
    for (const failed of out?.Failed ?? []) {
      const entry = chunk[Number(failed.Id)];
      if (entry !== undefined) refused.add(entry.receiptHandle);
    }
  }
  return refused;
}

/**
 * Deletes messages by receipt handle, ten a request, with up to five tries a request: the entries SQS answers in
 * `Failed[]` for its own reasons are tried again (the call answers 200 even when some failed), and so is a request
 * that fails whole, after `onError` has seen its error (by default it is ignored; one that throws ends the tries and
 * the call). An entry refused as the sender's fault (a receipt handle that expired, say) is not tried again. Returns
 * the receipt handles still not deleted, whose messages come back after their visibility timeout, and why the last
 * of them stayed.
 */
export async function deleteMessages(
  sqs: SQSClient,
  queueUrl: string,
  receiptHandles: readonly string[],
  onError: (error: unknown) => void = () => undefined,
): Promise<{ undeleted: Set<string>; reason?: string }> {
  const undeleted = new Set<string>();
  let reason: string | undefined;
  for (let i = 0; i < receiptHandles.length; i += MAX_ENTRIES_PER_BATCH) {
    let pending = receiptHandles.slice(i, i + MAX_ENTRIES_PER_BATCH);
    let lastFailure: string | undefined;
    for (let attempt = 0; pending.length > 0 && attempt < DELETE_TRIES; attempt++) {
      if (attempt > 0) await sleep(100 * 2 ** attempt);
      try {
        const out = await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: pending.map((receiptHandle, j) => ({ Id: String(j), ReceiptHandle: receiptHandle })),
          }),
        );
        const retry = new Set<number>();
        for (const failed of out.Failed ?? []) {
          const entry = pending[Number(failed.Id)];
          if (entry === undefined) continue; // an Id we never sent: nothing of ours to keep
          lastFailure = `${failed.Code ?? "Failed"}: ${failed.Message ?? "refused"}`;
          if (failed.SenderFault) {
            undeleted.add(entry);
            reason = lastFailure;
          } else retry.add(Number(failed.Id));
        }
        pending = pending.filter((_, j) => retry.has(j));
      } catch (error) {
        lastFailure = error instanceof Error ? `${error.name}: ${describeError(error)}` : describeError(error);
        onError(error);
      }
    }
    if (pending.length > 0) reason = lastFailure;
    for (const receiptHandle of pending) undeleted.add(receiptHandle);
  }
  return reason === undefined ? { undeleted } : { undeleted, reason };
}

/** Backs off the records a partial batch response names as failed. */
export async function backOffFailedRecords(
  sqs: SQSClient,
  queueUrl: string,
  event: {
    Records: ReadonlyArray<{
      messageId: string;
      receiptHandle: string;
      attributes: { ApproximateReceiveCount?: string };
    }>;
  },
  response: { batchItemFailures: ReadonlyArray<{ itemIdentifier: string }> },
): Promise<void> {
  const failedIds = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  await backOffSqsRecords(
    sqs,
    queueUrl,
    event.Records.filter((r) => failedIds.has(r.messageId)),
  );
}

/** Backs off records as Lambda hands them over, by their receive count. */
export async function backOffSqsRecords(
  sqs: SQSClient,
  queueUrl: string,
  records: ReadonlyArray<{ receiptHandle: string; attributes: { ApproximateReceiveCount?: string } }>,
): Promise<void> {
  await backOffRecords(
    sqs,
    queueUrl,
    records.map((r) => ({
      receiptHandle: r.receiptHandle,
      receiveCount: Number(r.attributes.ApproximateReceiveCount ?? "1"),
    })),
  );
}

export function retryDelaySeconds(receiveCount: number): number {
  return Math.min(60, 2 ** Math.max(0, receiveCount - 1));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Messages visible, in flight (or backing off), and in a dead-letter queue. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
      ],
    }),
  );
  const a = out.Attributes ?? {};
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}
