import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { type App, appFromEnv, movingDeps } from "../app.ts";
import { backOffFailedRecords, sendMessages } from "../aws/queues.ts";
import { onlyItems, parseMoveMessage } from "../core/messages.ts";
import { moveBatch, NOT_STARTED_REASON } from "../core/moving.ts";
import { describeError, MoverError } from "../errors.ts";
import type { BatchCounts, MoveMessage } from "../types.ts";

/** Raised for a batch whose keys are not all resolved yet: the record is retried after a short backoff. */
export class BatchNotFinishedError extends MoverError {}

/**
 * How long before the function's timeout no copy starts and a multipart copy still running is cut short: time for
 * the batch's deletes, ledger, dead letters and roll-up, with retries, so that the partial batch response is still
 * returned.
 */
export const COPY_RESERVE_MS = 15_000;

/**
 * How long before the function's timeout copies S3 has not answered yet are given up (their keys retried): a copy
 * started just before the reserve normally answers within seconds, but one S3 leaves silent would otherwise hold the
 * batch's record past the timeout (the client waits up to 60 s for an answer, then retries).
 */
export const ANSWER_RESERVE_MS = 10_000;

interface CopyDeadlines {
  stopCopiesAt: number;
  giveUpCopiesAt: number;
}

/** The mover: copy, verify and delete each batch; a partial batch response names the records to retry. */
export function createMoverHandler(app: App) {
  const recordHandler = async (
    record: SQSRecord,
    addedByJob: Map<string, BatchCounts>,
    deadlines: CopyDeadlines,
  ): Promise<void> => {
    const attempt = Number(record.attributes.ApproximateReceiveCount ?? "1");
    let message: MoveMessage | undefined;
    try {
      message = parseMoveMessage(record.body);
      await moveRecord(message, attempt, addedByJob, deadlines);
    } catch (error) {
      // The batch processor keeps a failure to itself: said here, so a batch that keeps failing (and is dead-lettered
      // after maxReceiveCount receives) is never silent. An unfinished batch has said why already.
      if (!(error instanceof BatchNotFinishedError)) {
        const reason = describeError(error);
        app.logger.error("batch failed; it is retried, then dead-lettered", {
          jobId: message?.job,
          page: message?.page,
          batch: message?.batch,
          messageId: record.messageId,
          attempt,
          reason,
        });
        // And on the job, for `status`: its keys' own errors say nothing when the batch as a whole fails.
        if (message) {
          const batch = { key: `(batch ${message.page}.${message.batch}, all its keys)`, reason };
          await app.store.recordErrors(message.job, [batch]).catch(() => undefined); // the log line has it anyway
        }
      }
      throw error;
    }
  };

  const moveRecord = async (
    message: MoveMessage,
    attempt: number,
    addedByJob: Map<string, BatchCounts>,
    deadlines: CopyDeadlines,
  ) => {
    const result = await moveBatch(movingDeps(app), message, attempt, deadlines);
    addTo(addedByJob, message.job, result.added);
    const log = { jobId: message.job, page: message.page, batch: message.batch, attempt, ...result.counts };
    if (result.failed.length > 0) {
      app.logger.warn("keys failed for good; sent to the DLQ with their reasons", { ...log, failed: result.failed });
    }
    if (
      result.retry.length > 0 &&
      attempt >= app.settings.poisonAfterAttempts &&
      result.retry.every((r) => r.throttled)
    ) {
      const requeued = await requeueThrottledKeys(app, message, result.retry);
      const notStarted = result.retry.filter((r) => r.reason === NOT_STARTED_REASON).length;
      app.logger.info(
        notStarted === result.retry.length
          ? "keys not started before the invocation's timeout; batch sent back to the queue"
          : "S3 keeps throttling; batch sent back to the queue",
        { ...log, ...requeued, throttled: result.retry.length - notStarted, notStarted },
      );
      return;
    }
    if (result.retry.length > 0) {
      app.logger.info("batch not finished; retrying after backoff", { ...log, retry: result.retry.slice(0, 5) });
      throw new BatchNotFinishedError(
        `${result.retry.length} key(s) of batch ${message.page}.${message.batch} not moved yet: ${result.retry[0]?.reason}`,
      );
    }
    app.logger.debug("batch done", log);
  };

  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const addedByJob = new Map<string, BatchCounts>();
    const timeoutAt = Date.now() + context.getRemainingTimeInMillis();
    const deadlines = { stopCopiesAt: timeoutAt - COPY_RESERVE_MS, giveUpCopiesAt: timeoutAt - ANSWER_RESERVE_MS };
    // A processor per invocation: it holds the batch's state, and the local runtime runs invocations concurrently.
    const processor = new BatchProcessor(EventType.SQS);
    const response = await processPartialResponse(
      event,
      (record: SQSRecord) => recordHandler(record, addedByJob, deadlines),
      processor,
      {
        context,
        throwOnFullBatchFailure: false,
      },
    );
    await backOffFailedRecords(app.clients.sqs, app.resources.moveQueueUrl, event, response);
    publishMetrics(app.metrics, addedByJob);
    return response;
  };
}

function addTo(byJob: Map<string, BatchCounts>, job: string, added: BatchCounts): void {
  const sum = byJob.get(job) ?? { moved: 0, movedBytes: 0, skipped: 0, failed: 0 };
  byJob.set(job, {
    moved: sum.moved + added.moved,
    movedBytes: sum.movedBytes + added.movedBytes,
    skipped: sum.skipped + added.skipped,
    failed: sum.failed + added.failed,
  });
}

/** One EMF line per job per invocation: objects and bytes moved, keys failed (CloudWatch graphs them, no API calls). */
function publishMetrics(metrics: Metrics | undefined, byJob: Map<string, BatchCounts>): void {
  if (!metrics) return;
  for (const [jobId, added] of byJob) {
    metrics.addDimension("jobId", jobId);
    metrics.addMetric("ObjectsMoved", MetricUnit.Count, added.moved);
    metrics.addMetric("BytesMoved", MetricUnit.Bytes, added.movedBytes);
    metrics.addMetric("KeysFailed", MetricUnit.Count, added.failed);
    metrics.publishStoredMetrics();
  }
}

/**
 * S3 throttles (503 SlowDown) at its per-prefix limits for as long as the movers outrun it, so a key whose last try
 * met SlowDown is never failed. Past the poison attempt its batch goes back to the queue as a fresh message, so that
 * SQS's receive count (maxReceiveCount) starts again: only the unresolved keys, delayed 2, 4, 8 ... up to 900 s.
 * The original record then counts as processed. Should the process die between the two, both are delivered:
 * the ledger makes the second a no-op for every key the first resolved.
 */
async function requeueThrottledKeys(
  app: App,
  message: MoveMessage,
  retry: ReadonlyArray<{ i: number }>,
): Promise<{ keys: number; requeued: number; delaySeconds: number }> {
  const requeued = (message.requeued ?? 0) + 1;
  const delaySeconds = Math.min(900, 2 ** Math.min(requeued, 10));
  const again: MoveMessage = { ...onlyItems(message, retry), requeued };
  await sendMessages(app.clients.sqs, app.resources.moveQueueUrl, [
    { id: "requeued", body: JSON.stringify(again), delaySeconds },
  ]);
  return { keys: again.items.length, requeued, delaySeconds };
}

export const handler = (event: SQSEvent, context: Context) => createMoverHandlerOnce()(event, context);

let lambdaHandler: ReturnType<typeof createMoverHandler> | undefined;
function createMoverHandlerOnce() {
  lambdaHandler ??= createMoverHandler(appFromEnv());
  return lambdaHandler;
}
