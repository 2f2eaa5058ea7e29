import { HeadBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import type { App } from "../app.ts";
import { BucketError } from "../errors.ts";
import type { JobStore } from "../jobs/jobStore.ts";
import { isFinished, type Job, type MoveRequest } from "../types.ts";
import { sendListToken } from "./listing.ts";
import { checkReportDirectory, reportBucketOf, s3ReportLocation } from "./report.ts";
import { listingReachesReport, refusedBucketName, validateMoveRequest } from "./validation.ts";

export interface StartResult {
  jobId: string;
  /** true: an unfinished job for the same from/to/prefix existed and this start continues it. */
  attached: boolean;
  job: Job;
  next: string;
  /** Unfinished jobs moving keys this one's overlap (see overlappingJobs), with what that means. */
  overlapping?: { jobs: Array<Pick<Job, "id" | "state" | "from" | "to" | "prefix">>; warning: string };
}

/**
 * Validates a move request, checks both buckets exist, then opens its job (or attaches to the unfinished one) and
 * sends a list token. Starting again is how a stopped job resumes: the token continues the listing from its cursor,
 * and an extra token is harmless.
 */
export async function startMove(app: App, input: unknown): Promise<StartResult> {
  return openMove(app, await checkMove(app, input));
}

/** The checks of a start, which change nothing: the request is valid, both buckets and the report location exist. */
export async function checkMove(app: App, input: unknown): Promise<MoveRequest> {
  const request = validateMoveRequest(input, app.allowedBuckets, { allowFileReports: app.allowFileReports });
  await checkBuckets(app.clients.s3, request);
  return request;
}

/** Opens the job of a checked request (or attaches to its unfinished one) and sends a list token. */
export async function openMove(
  app: Pick<App, "store" | "clients" | "resources">,
  request: MoveRequest,
): Promise<StartResult> {
  const { job, attached } = await openJobRecord(app.store, request);
  const [, overlapping] = await Promise.all([
    sendListToken(app.clients.sqs, app.resources.listQueueUrl, job),
    overlappingJobs(app.store, job),
  ]);
  const follow = `serverless invoke -f status --data '{"job":"${job.id}"}'`;
  return {
    jobId: job.id,
    attached,
    job,
    ...(overlapping.length > 0
      ? {
          overlapping: {
            jobs: overlapping.map(({ id, state, from, to, prefix }) => ({ id, state, from, to, prefix })),
            warning: overlapWarning(overlapping),
          },
        }
      : {}),
    next: request.dryRun
      ? `Dry run ${job.id} is listing the source; nothing will be copied, deleted or queued for moving. Its counts, time and cost: ${follow}`
      : `${attached ? "Continuing" : "Started"} job ${job.id}; follow it with: ${follow}`,
  };
}

/**
 * The unfinished jobs, among the recent ones, whose keys overlap this job's: they read or write a bucket this one
 * reads or writes, under prefixes of which one holds the other, or one writes its S3 report where the other lists
 * (its parts would be moved as keys). Side by side they still delete nothing unverified,
 * but what they do is not what a user running one expects: two jobs moving the same keys each count the keys they
 * reach; a job writing into this one's source feeds it keys; two sources moved into one bucket replace each other's.
 */
export async function overlappingJobs(store: Pick<JobStore, "listJobs">, job: Job): Promise<Job[]> {
  if (job.dryRun) return [];
  const nested = (a: string, b: string) => a.startsWith(b) || b.startsWith(a);
  // One job's report parts written where the other lists: they are moved as keys (the rule a start refuses its own by).
  const reportIn = (writer: Job, lister: Job) => {
    const location = s3ReportLocation(writer.report);
    return location?.bucket === lister.from && listingReachesReport(lister.prefix, location.prefix);
  };
  // Only a warning: a job list that cannot be read is no reason to hold up the move it is about.
  const recent = await store.listJobs(RECENT_JOBS_LOOKED_AT).catch(() => [] as Job[]);
  return recent.filter(
    (other) =>
      other.id !== job.id &&
      !other.dryRun &&
      !isFinished(other.state) &&
      ((nested(other.prefix, job.prefix) &&
        (other.from === job.from || other.to === job.to || other.to === job.from || other.from === job.to)) ||
        reportIn(other, job) ||
        reportIn(job, other)),
  );
}

/** How many of the most recent jobs overlappingJobs looks at (dry runs among them). */
export const RECENT_JOBS_LOOKED_AT = 50;

/** What a user should know about the jobs overlappingJobs found. */
export function overlapWarning(jobs: readonly Job[]): string {
  const named = jobs.map((j) => `${j.id} (${j.state}: s3://${j.from}/${j.prefix} → s3://${j.to}/${j.prefix})`);
  return (
    `Another unfinished job works on keys that overlap this job's: ${named.join(", ")}. Side by side, nothing is deleted ` +
    "before its copy is verified, but which job moves a key, where it ends up and what each job counts depend on " +
    "which gets to it first; where both write one key into the same bucket, the later copy replaces the earlier " +
    "(--no-overwrite skips it). Cancel one (cancel --job ID) if that is not what you meant."
  );
}

/**
 * The job record of a checked request: a new job, the unfinished one it attaches to, or a dry run. Nothing lists it
 * until a list token is sent (sendListToken), which needs only the job.
 */
export async function openJobRecord(store: JobStore, request: MoveRequest): Promise<{ job: Job; attached: boolean }> {
  return request.dryRun ? { job: await store.openDryRun(request), attached: false } : store.openJob(request);
}

/**
 * Both buckets, and the report's location, must exist and be reachable before anything is written. All are checked
 * at once; when several fail, the source's error is the one raised (then the destination's, then the report's),
 * whichever answer came first.
 */
export async function checkBuckets(s3: S3Client, request: Pick<MoveRequest, "from" | "to" | "report">): Promise<void> {
  const reportBucket = reportBucketOf(request.report);
  const buckets: Array<[string, string]> = [
    [request.from, "source"],
    [request.to, "destination"],
    ...(reportBucket ? [[reportBucket, "report"] as [string, string]] : []),
  ];
  const checked = await Promise.allSettled([
    ...buckets.map(async ([bucket, role]) => {
      try {
        await s3.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (error) {
        const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 404) {
          const refused = refusedBucketName(bucket);
          throw new BucketError(
            bucket,
            `The ${role} bucket "${bucket}" does not exist${refused ? ` (${refused})` : ""}`,
            {
              cause: error,
            },
          );
        }
        if (status === 403) {
          throw new BucketError(bucket, `Access to the ${role} bucket "${bucket}" is denied for these credentials`, {
            cause: error,
          });
        }
        // A bodiless answer (HEAD) leaves the SDK's message at "UnknownError": the status, and any region S3
        // named that the call was not sent again to (it named the region it was sent to, or no region at all).
        const { $response, $region } = error as { $response?: { headers?: Record<string, string> }; $region?: string };
        const named = $response?.headers?.["x-amz-bucket-region"];
        const redirect =
          named && named !== $region
            ? `, naming the bucket's region "${named}", which this call could not be sent to`
            : "";
        // A HEAD's 400 has no body to say why: most often credentials that expired or do not parse.
        const hint = status === 400 && !redirect ? "; check the credentials (an expired session token, say)" : "";
        const answer = status ? ` (S3 answered ${status}${redirect}${hint})` : "";
        throw new BucketError(
          bucket,
          `Could not reach the ${role} bucket "${bucket}": ${(error as Error).message}${answer}`,
          {
            cause: error,
          },
        );
      }
    }),
    request.report?.startsWith("file://") ? checkReportDirectory(request.report) : undefined,
  ]);
  for (const result of checked) if (result.status === "rejected") throw result.reason;
}
