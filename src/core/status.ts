import type { App } from "../app.ts";
import { queueDepth } from "../aws/queues.ts";
import { describeError } from "../errors.ts";
import { isFinished, type Job, type JobCounts } from "../types.ts";
import { type DryRunEstimate, estimateFromListing, formatEstimate } from "./estimate.ts";
import { reportSinkFor } from "./report.ts";

export interface JobStatus {
  job: Pick<
    Job,
    "id" | "from" | "to" | "prefix" | "state" | "listingDone" | "createdAt" | "updatedAt" | "finishedAt"
  > & {
    overwrite: boolean;
    dryRun: boolean;
  };
  counts: JobCounts & { unresolved: number };
  /** Objects and bytes per second over (up to) the last minute. */
  rate: { objectsPerSecond: number; bytesPerSecond: number; overSeconds: number };
  etaSeconds: number | undefined;
  queues: { listQueued: number; moveQueued: number; inFlight: number; deadLetters: number };
  lastErrors: Array<{ key: string; reason: string; at: string }>;
  /** Why listing stopped, while it has not listed a page since. */
  listingError?: { reason: string; attempt: number; at: string };
  /** The move report: where its parts are and how many there are so far (or why they cannot be read). */
  report?: { location: string; parts: number; unreadable?: string };
  /** Dry runs: what the move would take, from what was listed. */
  estimate?: DryRunEstimate;
  /** Redriven letters not yet retried: they hold the job open. */
  redrivenPending?: number;
}

/**
 * A job's state with exact counts (summed from its page totals), rates over the last minute, ETA, queue depths
 * and its last errors. When its queues are drained it also settles the job (done or done with failures).
 */
export async function jobStatus(app: App, jobId: string, now = Date.now()): Promise<JobStatus> {
  let job = await app.store.getJob(jobId);
  const [counts, list, move, moveDead, listDead] = await Promise.all([
    app.store.sumTotals(jobId),
    queueDepth(app.clients.sqs, app.resources.listQueueUrl),
    queueDepth(app.clients.sqs, app.resources.moveQueueUrl),
    queueDepth(app.clients.sqs, app.resources.moveDeadLetterQueueUrl),
    queueDepth(app.clients.sqs, app.resources.listDeadLetterQueueUrl),
  ]);
  const queues = {
    listQueued: list.visible,
    moveQueued: move.visible,
    inFlight: list.inFlight + move.inFlight,
    deadLetters: moveDead.visible + moveDead.inFlight + listDead.visible + listDead.inFlight,
  };
  if (!isFinished(job.state) && queues.listQueued + queues.moveQueued + queues.inFlight === 0) {
    await app.store.completeIfResolved(jobId);
    job = await app.store.getJob(jobId);
  }
  const report = job.report ? await reportPartsOf(app, job) : undefined;
  const samples = isFinished(job.state)
    ? []
    : await app.store.sampleProgress(jobId, counts.moved, counts.movedBytes, now);
  const rate = rateOf(samples, job, counts, now);
  // The page totals can be ahead of the job record: a page's batches go out before its cursor moves, and the cursor
  // of a job cancelled meanwhile never moves.
  const listed = Math.max(job.listed, counts.listed);
  const listedBytes = Math.max(job.listedBytes, counts.listedBytes);
  const unresolved = Math.max(0, listed - counts.moved - counts.skipped - counts.failed);
  return {
    job: {
      id: job.id,
      from: job.from,
      to: job.to,
      prefix: job.prefix,
      overwrite: job.overwrite,
      dryRun: job.dryRun,
      state: job.state,
      listingDone: job.listingDone,
      createdAt: job.createdAt,
      updatedAt: job.updatedAt,
      ...(job.finishedAt ? { finishedAt: job.finishedAt } : {}),
    },
    counts: { ...counts, listed, listedBytes, unresolved },
    rate,
    etaSeconds: etaSecondsOf(job, unresolved, rate.objectsPerSecond),
    queues,
    lastErrors: job.lastErrors ?? [],
    ...(job.listingError && !job.listingDone ? { listingError: job.listingError } : {}),
    ...(report ? { report } : {}),
    ...(job.dryRun ? { estimate: estimateFromListing(listed, listedBytes) } : {}),
    ...(job.redriven ? { redrivenPending: job.redriven.length } : {}),
  };
}

/**
 * Seconds until the job's unresolved keys are resolved at the recent rate; none while it lists (the total is not
 * known), once it has finished, or when nothing is left unresolved (what still holds the job, such as a redriven
 * letter, does not go at the rate).
 */
export function etaSecondsOf(
  job: Pick<Job, "state" | "listingDone">,
  unresolved: number,
  objectsPerSecond: number,
): number | undefined {
  if (isFinished(job.state) || !job.listingDone || unresolved <= 0 || objectsPerSecond <= 0) return undefined;
  return Math.ceil(unresolved / objectsPerSecond);
}

function rateOf(
  samples: ReadonlyArray<{ t: number; moved: number; bytes: number }>,
  job: Job,
  counts: JobCounts,
  now: number,
): JobStatus["rate"] {
  const recent = samples.filter((s) => now - s.t <= 60_000);
  const first = recent[0];
  const last = recent.at(-1);
  if (first && last && last.t > first.t) {
    const seconds = (last.t - first.t) / 1000;
    return {
      objectsPerSecond: (last.moved - first.moved) / seconds,
      bytesPerSecond: (last.bytes - first.bytes) / seconds,
      overSeconds: Math.round(seconds),
    };
  }
  // One sample only: the average over the job's life so far.
  const end = job.finishedAt ? Date.parse(job.finishedAt) : now;
  const seconds = Math.max(0.001, (end - Date.parse(job.createdAt)) / 1000);
  return {
    objectsPerSecond: counts.moved / seconds,
    bytesPerSecond: counts.movedBytes / seconds,
    overSeconds: Math.round(seconds),
  };
}

/** A human-readable status, a few lines. */
export function formatStatus(status: JobStatus): string {
  const { job, counts, rate, queues } = status;
  const lines = [
    `Job ${job.id}: ${job.state}${job.listingDone || job.state === "listing" || isFinished(job.state) ? "" : " (still listing)"}${job.dryRun ? " [dry run]" : ""}`,
    `  s3://${job.from}/${job.prefix} → s3://${job.to}/${job.prefix}`,
    // A dry run moves nothing: its keys are never resolved, so only what it listed is said.
    `  listed ${counts.listed}${job.listingDone || isFinished(job.state) ? "" : "+"} (${mb(counts.listedBytes)})` +
      (job.dryRun
        ? ""
        : `, moved ${counts.moved} (${mb(counts.movedBytes)}), skipped ${counts.skipped}, failed ${counts.failed}, ` +
          `unresolved ${counts.unresolved}`),
    // A dry run moves nothing: no rate to show.
    ...(job.dryRun
      ? []
      : [
          `  rate ${rate.objectsPerSecond.toFixed(1)} objects/s, ${mb(rate.bytesPerSecond)}/s over ${rate.overSeconds} s` +
            (status.etaSeconds !== undefined ? `, ETA ${status.etaSeconds} s` : ""),
        ]),
    // The queues are shared by every job: their depths are not this job's alone.
    `  queues (all jobs): ${queues.listQueued} list + ${queues.moveQueued} move messages queued, ${queues.inFlight} in flight, ${queues.deadLetters} in dead-letter queues`,
    `  started ${job.createdAt}${job.finishedAt ? `, finished ${job.finishedAt}` : ""}`,
  ];
  if (status.report?.unreadable)
    lines.push(`  report: cannot read ${status.report.location}${status.job.id}/: ${status.report.unreadable}`);
  else if (status.report)
    lines.push(`  report: ${status.report.parts} part(s) under ${status.report.location}${status.job.id}/`);
  if (status.estimate)
    lines.push(
      ...formatEstimate(status.estimate)
        .split("\n")
        .map((line) => `  ${line}`),
    );
  if (status.listingError) {
    const { reason, attempt, at } = status.listingError;
    lines.push(`  listing failed (try ${attempt}, ${at}): ${reason}`);
  }
  if (status.redrivenPending) {
    lines.push(
      `  redriven letters not yet retried: ${status.redrivenPending}; they hold the job open (with none queued, run redrive again)`,
    );
  }
  if (status.lastErrors.length > 0) {
    lines.push("  last errors:");
    for (const e of status.lastErrors.slice(0, 5)) lines.push(`    ${e.key}: ${e.reason}`);
  }
  return lines.join("\n");
}

/**
 * The recent jobs, each with its listed keys as `status --job` counts them: a job still listing (or cancelled
 * while it listed) can have listed a page more than its record says, whose batches went out before its cursor moved.
 */
export async function recentJobs(app: App): Promise<Job[]> {
  const jobs = await app.store.listJobs();
  return Promise.all(
    jobs.map(async (job) => {
      if (job.listingDone) return job; // its last page moved the cursor: the record has every page
      const counts = await app.store.sumTotals(job.id);
      return {
        ...job,
        listed: Math.max(job.listed, counts.listed),
        listedBytes: Math.max(job.listedBytes, counts.listedBytes),
      };
    }),
  );
}

/** One line per recent job. */
export function formatJobList(jobs: readonly Job[]): string {
  if (jobs.length === 0) return "No jobs yet.";
  return jobs
    .map(
      (j) =>
        `${j.id}  ${`${j.state}${j.dryRun ? " (dry run)" : ""}`.padEnd(18)} ${String(j.listed).padStart(9)} listed  ` +
        `s3://${j.from}/${j.prefix} → s3://${j.to}/${j.prefix}`,
    )
    .join("\n");
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** The job's report parts so far. A location that cannot be read (its bucket deleted, say) is said, not thrown: the
 * rest of the status is still true. */
async function reportPartsOf(app: App, job: Job): Promise<{ location: string; parts: number; unreadable?: string }> {
  const location = job.report as string;
  try {
    return { location, parts: (await reportSinkFor(location, app.clients.s3).listParts(job.id)).length };
  } catch (error) {
    return { location, parts: 0, unreadable: describeError(error) };
  }
}
