import type { Context } from "aws-lambda";
import { type App, appFromEnv } from "../app.ts";
import { redriveDeadLetters } from "../core/redrive.ts";
import { ValidationError } from "../errors.ts";

/** `serverless invoke -f redrive [--data '{"job":"<id>"}']`: dead letters back to their queues, with counts. */
export function createRedriveHandler(app: App) {
  return async (event: unknown, _context?: Context) => {
    const job = typeof event === "object" && event !== null ? (event as { job?: unknown }).job : undefined;
    if (job !== undefined && typeof job !== "string") throw new ValidationError('"job" must be a job id string');
    const result = await redriveDeadLetters(app, { jobId: job });
    app.logger.info("redrive done", { ...result.moved, jobs: result.jobs, undeleted: result.undeleted });
    if (result.undeleted > 0) {
      // They reappear on their DLQ within 60 s of the receive; a later redrive sends them again, as duplicates.
      app.logger.warn("some redriven messages are still on their dead-letter queue", {
        undeleted: result.undeleted,
        reason: result.undeletedReason,
        stoppedEarly: result.stoppedEarly ?? false,
      });
    }
    return result;
  };
}

let lambdaHandler: ReturnType<typeof createRedriveHandler> | undefined;
export const handler = (event: unknown, context: Context) => {
  lambdaHandler ??= createRedriveHandler(appFromEnv());
  return lambdaHandler(event, context);
};
