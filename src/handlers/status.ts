import type { Context } from "aws-lambda";
import { type App, appFromEnv } from "../app.ts";
import { jobStatus, recentJobs } from "../core/status.ts";
import { ValidationError } from "../errors.ts";

/** `serverless invoke -f status --data '{"job":"<id>"}'`; without a job, the recent jobs. */
export function createStatusHandler(app: App) {
  return async (event: unknown, _context?: Context) => {
    const job = jobIdOf(event);
    if (job === undefined) return { jobs: await recentJobs(app) };
    return jobStatus(app, job);
  };
}

function jobIdOf(event: unknown): string | undefined {
  const value = typeof event === "string" && event.trim() !== "" ? parseJson(event) : event;
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "object") throw new ValidationError('Expected {"job":"<id>"} or nothing');
  const job = (value as { job?: unknown }).job;
  if (job === undefined) return undefined;
  if (typeof job !== "string" || job === "") throw new ValidationError('"job" must be a job id string');
  return job;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError(`Malformed JSON: expected {"job":"<id>"}`);
  }
}

let lambdaHandler: ReturnType<typeof createStatusHandler> | undefined;
export const handler = (event: unknown, context: Context) => {
  lambdaHandler ??= createStatusHandler(appFromEnv());
  return lambdaHandler(event, context);
};
