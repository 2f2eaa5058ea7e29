import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { App } from "../app.ts";
import { queueDepth } from "../aws/queues.ts";
import { sendListToken } from "../core/listing.ts";
import { assembleReportFile, removeStalePartials, reportSinkFor } from "../core/report.ts";
import { checkMove, openMove } from "../core/start.ts";
import { validateMoveRequest } from "../core/validation.ts";
import { describeError } from "../errors.ts";
import { createListerHandler } from "../handlers/lister.ts";
import { createMoverHandler } from "../handlers/mover.ts";
import type { StackSettings } from "../stackSettings.ts";
import { isFinished, type Job, type JobCounts, type JobState } from "../types.ts";
import type { LocalResources } from "./resources.ts";
import { QueueConsumer, type SqsHandler } from "./runtime.ts";

/** While the queues look drained, progress is read this often to tell a finished job from a stalled one. */
const IDLE_RECHECK_MS = 500;

export interface LocalMoveOptions {
  /** Mover invocations in flight (default 3). */
  moverConcurrency?: number;
  /** Messages per mover invocation (default 1; serverless.yml's batchSize applies on Lambda). */
  moverBatchSize?: number;
  /** Local visibility timeout, extended by heartbeat while working. */
  visibilitySeconds?: number;
  onProgress?: (progress: MoveProgress) => void;
  onError?: (error: unknown) => void;
  /** How often progress is read (and onProgress called); default 500 ms. Each read is five requests. */
  progressEveryMs?: number;
  /** Wraps the mover handler, e.g. to deliver every batch twice in a test. */
  wrapMover?: (handler: SqsHandler) => SqsHandler;
  /**
   * The job was opened by another thread (the CLI's, while this one started), with the request validated and its
   * buckets checked: its id.
   */
  opened?: Promise<string>;
}

export interface MoveProgress {
  job: Job;
  counts: JobCounts;
  queued: number;
  inFlight: number;
  deadLetters: number;
  /** The assembled JSON Lines report, when the job's report location is a local directory and the job finished. */
  reportFile?: string;
  /**
   * Other jobs this move finished (the queues are shared: a redrive of all jobs sends their letters here too), with
   * their reports assembled where local.
   */
  othersFinished?: Array<{ jobId: string; state: Job["state"]; reportFile?: string; reportError?: string }>;
}

/**
 * Runs a move in this process: opens (or attaches to) the job, then runs the lister and mover handlers on a local
 * runtime polling the same queues as Lambda would, until the job is finished, or nothing is left to work on.
 * Several processes may run this for the same job at once: they share the work through the queues.
 */
export async function runLocalMove(
  app: App & { resources: LocalResources },
  settings: StackSettings,
  input: unknown,
  options: LocalMoveOptions = {},
): Promise<MoveProgress> {
  const checked = options.opened
    ? validateMoveRequest(input, undefined, { allowFileReports: true }) // for its defaults (dryRun)
    : await checkMove(app, input);
  const { opened } = options;
  const finishedHere = new Set<string>();
  const noteFinished = (jobId: string) => finishedHere.add(jobId);
  app.store.events.on("finished", noteFinished);
  let result: MoveProgress;
  try {
    // The consumers poll before the job opens: its first list token and first batches are taken at once.
    result = await runUntilSettled(app, settings, checked.dryRun === true, options, async () => {
      if (opened) {
        const jobId = await opened;
        app.store.noteNotCancelled(jobId); // as openMove does in the thread that opened it
        return jobId;
      }
      const started = await openMove(app, checked);
      return started.jobId;
    });
  } finally {
    app.store.events.off("finished", noteFinished);
  }
  finishedHere.delete(result.job.id);
  const reportFile = isFinished(result.job.state) ? await writeLocalReport(app, result.job) : undefined;
  const othersFinished = await Promise.all([...finishedHere].map((jobId) => otherJobFinished(app, jobId)));
  return {
    ...result,
    ...(reportFile ? { reportFile } : {}),
    ...(othersFinished.length > 0 ? { othersFinished } : {}),
  };
}

/**
 * Another job this move finished, with its local report assembled, as its own move would have done. A report that
 * cannot be assembled here is said, not thrown: this move's own job is done.
 */
async function otherJobFinished(app: App, jobId: string): Promise<NonNullable<MoveProgress["othersFinished"]>[number]> {
  const job = await app.store.getJob(jobId);
  if (!isFinished(job.state)) return { jobId, state: job.state };
  try {
    const reportFile = await writeLocalReport(app, job);
    return { jobId, state: job.state, ...(reportFile ? { reportFile } : {}) };
  } catch (error) {
    return { jobId, state: job.state, reportError: describeError(error) };
  }
}

/** Assembles a finished job's report parts into one <dir>/<job>.jsonl when its report location is local. */
export async function writeLocalReport(app: App, job: Job): Promise<string | undefined> {
  if (!job.report?.startsWith("file://")) return undefined;
  const dir = fileURLToPath(job.report);
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${job.id}.jsonl`);
  await assembleReportFile(reportSinkFor(job.report, app.clients.s3), job.id, file);
  // Left by a process killed mid-write, of a part or of an assembly; never read.
  await removeStalePartials(join(dir, job.id));
  await removeStalePartials(dir, { startingWith: `${job.id}.jsonl.` });
  return file;
}

async function runUntilSettled(
  app: App & { resources: LocalResources },
  settings: StackSettings,
  dryRun: boolean,
  options: LocalMoveOptions,
  open: () => Promise<string>,
): Promise<MoveProgress> {
  // Said, as Lambda's own log would say it: an invocation past its timeout, a receive or delete that failed.
  const onError =
    options.onError ??
    ((error: unknown) =>
      app.logger.error("local runtime: an invocation, a queue call or its stop did not go as it should", {
        reason: describeError(error),
      }));
  const consumers = [
    new QueueConsumer({
      sqs: app.clients.sqs,
      queueUrl: app.resources.listQueueUrl,
      queueArn: app.resources.listQueueArn,
      handler: createListerHandler(app),
      settings: settings.lister,
      concurrency: 1,
      ...(options.visibilitySeconds ? { visibilitySeconds: options.visibilitySeconds } : {}),
      onError,
    }),
    new QueueConsumer({
      sqs: app.clients.sqs,
      queueUrl: app.resources.moveQueueUrl,
      queueArn: app.resources.moveQueueArn,
      handler: (options.wrapMover ?? ((h) => h))(createMoverHandler(app)),
      // One message (up to 1,000 keys) per invocation, three at a time: the copy limit stays busy while memory holds
      // at most ~3,000 keys, however large the bucket. Lambda's 10 a batch would queue 10,000 keys per invocation here.
      settings: { ...settings.mover, batchSize: options.moverBatchSize ?? 1 },
      concurrency: options.moverConcurrency ?? 3,
      ...(options.visibilitySeconds ? { visibilitySeconds: options.visibilitySeconds } : {}),
      onError,
    }),
  ];
  // A dry run only lists: no mover runs, so not even another job's batches are touched.
  if (dryRun) consumers.pop();
  for (const consumer of consumers) consumer.start();
  const cleanups: Array<() => void> = [];
  try {
    let idleChecks = 0;
    // A mover in this process that finishes the job says so at once. Otherwise the job's progress (its state, counts
    // and queue depths: five reads) is read every progressEveryMs, and sooner while the queues look drained.
    let wake: () => void = () => undefined;
    let finished: JobState | undefined; // said by the store of this process as the job finished
    let jobId: string | undefined;
    const onFinished = (finishedId: string, state: JobState) => {
      if (finishedId !== jobId) return;
      finished = state;
      wake();
    };
    app.store.events.on("finished", onFinished);
    cleanups.push(() => app.store.events.off("finished", onFinished));
    jobId = await open();
    const everyMs = options.progressEveryMs ?? 500;
    for (;;) {
      if (!finished) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, idleChecks > 0 ? Math.min(everyMs, IDLE_RECHECK_MS) : everyMs);
        });
      }
      const progress = finished ? undefined : await progressOf(app, jobId);
      if (progress === undefined || isFinished(progress.job.state)) {
        // A done job's record and counts no longer change, so they are read while the consumers stop (the
        // invocation that finished it deletes its message meanwhile): a round trip less at the end of every move.
        // The queue depths read beside them may still count that message in flight. A cancelled job's batches
        // already under way still move and count their keys: its counts are read once they have ended.
        if ((finished ?? progress?.job.state) === "cancelled") {
          await Promise.all(consumers.map((c) => c.stop()));
          return progressOf(app, jobId);
        }
        const [settled] = await Promise.all([progressOf(app, jobId), ...consumers.map((c) => c.stop())]);
        return settled;
      }
      options.onProgress?.(progress);
      if (progress.queued + progress.inFlight > 0) {
        idleChecks = 0;
        continue;
      }
      // Queues drained but the job is not finished: settle it, or restart a listing whose token was lost.
      idleChecks += 1;
      const state = await app.store.completeIfResolved(jobId);
      if (isFinished(state)) return progressOf(app, jobId);
      if (!progress.job.listingDone && progress.job.listingError) {
        // The list token failed its tries and sits on the list DLQ: say why, rather than list into the same error.
        if (idleChecks >= 3) return progress;
      } else if (!progress.job.listingDone) {
        await sendListToken(app.clients.sqs, app.resources.listQueueUrl, progress.job);
      } else if (idleChecks >= 3) return progress; // keys left only in the DLQ: redrive them, then run again
    }
  } finally {
    for (const cleanup of cleanups) cleanup();
    await Promise.all(consumers.map((c) => c.stop()));
  }
}

export async function progressOf(app: App, jobId: string): Promise<MoveProgress> {
  const [job, counts, list, move, dead] = await Promise.all([
    app.store.getJob(jobId),
    app.store.sumTotals(jobId),
    queueDepth(app.clients.sqs, app.resources.listQueueUrl),
    queueDepth(app.clients.sqs, app.resources.moveQueueUrl),
    queueDepth(app.clients.sqs, app.resources.moveDeadLetterQueueUrl),
  ]);
  return {
    job,
    counts,
    queued: list.visible + move.visible,
    inFlight: list.inFlight + move.inFlight,
    deadLetters: dead.visible + dead.inFlight,
  };
}
