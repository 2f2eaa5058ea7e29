import type { Context } from "aws-lambda";
import { type App, appFromEnv } from "../app.ts";
import { startMove } from "../core/start.ts";

/** `serverless invoke -f start --data '{"from":"old","to":"new"}'`: opens the job and returns its id. */
export function createStartHandler(app: App) {
  return async (event: unknown, _context?: Context) => {
    const result = await startMove(app, event);
    app.logger.info("job started", { jobId: result.jobId, attached: result.attached });
    if (result.overlapping) app.logger.warn(result.overlapping.warning, { jobId: result.jobId });
    return {
      jobId: result.jobId,
      attached: result.attached,
      state: result.job.state,
      next: result.next,
      ...(result.overlapping ? { warning: result.overlapping.warning, overlapping: result.overlapping.jobs } : {}),
    };
  };
}

let lambdaHandler: ReturnType<typeof createStartHandler> | undefined;
export const handler = (event: unknown, context: Context) => {
  lambdaHandler ??= createStartHandler(appFromEnv());
  return lambdaHandler(event, context);
};
