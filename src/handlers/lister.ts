import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { type App, appFromEnv, listingDeps } from "../app.ts";
import { backOffFailedRecords } from "../aws/queues.ts";
import { continueListing } from "../core/listing.ts";
import { parseListMessage } from "../core/messages.ts";
import { describeError } from "../errors.ts";

/** Stop listing with this much time left, so the hand-on is sent well before the function times out. */
const RESERVE_MS = 20_000;

/** The lister: continue a job's listing from its cursor, one page record at a time. */
export function createListerHandler(app: App) {
  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const recordHandler = async (record: SQSRecord): Promise<void> => {
      const { job, cursor } = parseListMessage(record.body);
      const attempt = Number(record.attributes.ApproximateReceiveCount ?? "1");
      try {
        const progress = await continueListing(
          listingDeps(app),
          job,
          () => context.getRemainingTimeInMillis() < RESERVE_MS,
          cursor,
          record.messageId,
        );
        if (progress.refusedTokens > 0) {
          // Only a shortcut lost: the run of empty pages it skipped is walked again.
          app.logger.warn("S3 refused the list token's continuation token; listed from the cursor's key instead", {
            jobId: job,
            continuationToken: cursor?.continuationToken,
          });
        }
        app.logger.info("listing progressed", { jobId: job, ...progress });
      } catch (error) {
        // The batch processor keeps a failure to itself: said here, so a listing that cannot go on is never silent.
        const reason = describeError(error);
        app.logger.error("listing failed; its list token is retried from the cursor, then dead-lettered", {
          jobId: job,
          attempt,
          reason,
        });
        // Best effort: the job record may be what failed. The token's retry does not depend on it.
        await app.store.noteListingError(job, { reason, attempt }).catch(() => undefined);
        throw error;
      }
    };
    // A processor per invocation: it holds the batch's state, and the local runtime runs invocations concurrently.
    const processor = new BatchProcessor(EventType.SQS);
    const response = await processPartialResponse(event, recordHandler, processor, {
      context,
      throwOnFullBatchFailure: false,
    });
    await backOffFailedRecords(app.clients.sqs, app.resources.listQueueUrl, event, response);
    return response;
  };
}

let lambdaHandler: ReturnType<typeof createListerHandler> | undefined;
export const handler = (event: SQSEvent, context: Context) => {
  lambdaHandler ??= createListerHandler(appFromEnv());
  return lambdaHandler(event, context);
};
