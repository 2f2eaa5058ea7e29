import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { type App, appFromEnv } from "../app.ts";
import { backOffFailedRecords, sendMessages } from "../aws/queues.ts";
import { parseMoveMessage } from "../core/messages.ts";
import { moveBatch } from "../core/moving.ts";
import { MoverError } from "../errors.ts";
import type { MoveMessage } from "../types.ts";

/** Raised for a batch whose keys are not all resolved yet: the record is retried after a short backoff. */
export class BatchNotFinishedError extends MoverError {}

/** The mover: copy, verify and delete each batch; a partial batch response names the records to retry. */
export function createMoverHandler(app: App) {
  const processor = new BatchProcessor(EventType.SQS);
  const recordHandler = async (record: SQSRecord): Promise<void> => {
    const message = parseMoveMessage(record.body);
    const attempt = Number(record.attributes.ApproximateReceiveCount ?? "1");
    const result = await moveBatch(
      { objects: app.objects, s3: app.clients.s3, store: app.store, settings: app.settings, copyLimit: app.copyLimit },
      message,
      attempt,
    );
    const log = { jobId: message.job, page: message.page, batch: message.batch, attempt, ...result.counts };
    if (result.failed.length > 0) {
      await sendFailedToDeadLetterQueue(app, message, result.failed);
      app.logger.warn("keys failed for good; sent to the DLQ with their reasons", { ...log, failed: result.failed });
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
    const response = await processPartialResponse(event, recordHandler, processor, {
      context,
      throwOnFullBatchFailure: false,
    });
    await backOffFailedRecords(app.clients.sqs, app.resources.moveQueueUrl, event, response);
    return response;
  };
}

/**
 * Poison keys leave their batch: one DLQ message holding only them and why they failed, marked so that a redrive
 * retries them (their ledger outcome is "failed" until then).
 */
async function sendFailedToDeadLetterQueue(
  app: App,
  message: MoveMessage,
  failed: ReadonlyArray<{ i: number; reason: string }>,
): Promise<void> {
  const positions = new Set(failed.map((f) => f.i));
  const dead: MoveMessage = {
    ...message,
    items: message.items.filter((item) => positions.has(item.i)),
    retryFailed: true,
    reasons: Object.fromEntries(failed.map((f) => [String(f.i), f.reason])),
  };
  await sendMessages(app.clients.sqs, app.resources.moveDeadLetterQueueUrl, [{ id: "dead", body: JSON.stringify(dead) }]);
}

export const handler = (event: SQSEvent, context: Context) => createMoverHandlerOnce()(event, context);

let lambdaHandler: ReturnType<typeof createMoverHandler> | undefined;
function createMoverHandlerOnce() {
  lambdaHandler ??= createMoverHandler(appFromEnv());
  return lambdaHandler;
}
