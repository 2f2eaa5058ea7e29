import { createRequire } from "node:module";
import type { SingleBar } from "cli-progress";
import type { MoveProgress } from "../local/localMove.ts";
import { isFinished, type Job } from "../types.ts";

// cli-progress loads with the first bar drawn, not with the CLI: a move starts its worker thread once the CLI has
// loaded, so whatever loads before that delays the whole move (importing the CLI took 45 ms with it, 40 without).
const require = createRequire(import.meta.url);

export interface ProgressReporter {
  /** How often it wants an update: every read of progress is five requests, so only a live bar asks often. */
  everyMs: number;
  update(progress: MoveProgress): void;
  stop(): void;
  /** The rate of what this run moved, which the bar and lines show (and the move's last line). */
  rate: RunRate;
}

/**
 * The rate of what this run moved. A resumed job's counts include what earlier runs moved, and its age the time it
 * stood still: for one, the rate is measured from the first progress this run saw, not from the job's start.
 */
export class RunRate {
  #at = Date.now();
  #moved: number | undefined = 0; // undefined: resumed, the next progress sets where this run started
  /**
   * Said when the move attached to an unfinished job, with what it had moved when known: else the first progress
   * sets it, and a run that ends before one has no rate.
   */
  resumed(movedBefore?: number): void {
    this.#at = Date.now();
    this.#moved = movedBefore;
  }
  note(moved: number): void {
    if (this.#moved === undefined) {
      this.#at = Date.now();
      this.#moved = moved;
    }
  }
  /** Objects a second moved by this run so far; undefined before a resumed run's first progress. */
  perSecond(moved: number, now = Date.now()): number | undefined {
    if (this.#moved === undefined) return undefined;
    const seconds = (now - this.#at) / 1000;
    return seconds > 0 ? Math.max(0, moved - this.#moved) / seconds : 0;
  }
}

/**
 * A live bar on a terminal (objects, bytes, rate, ETA, failures); plain lines every few seconds otherwise;
 * nothing with --quiet.
 */
export function createProgressReporter(options: { quiet: boolean; stream?: NodeJS.WriteStream }): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  const runRate = new RunRate();
  if (options.quiet) {
    return { everyMs: 2000, update: (p) => runRate.note(p.counts.moved), stop: () => undefined, rate: runRate };
  }
  if (stream.isTTY) {
    let bar: SingleBar | undefined;
    let lastUpdate = Date.now();
    const watchdog = setInterval(() => {
      const silent = Date.now() - lastUpdate;
      if (silent < STALL_NOTICE_MS) return;
      if (bar) bar.update({ state: `waiting: the endpoint has not answered for ${Math.round(silent / 1000)} s` });
      else if (silent < STALL_NOTICE_MS + 1000) stream.write(`${stallLine(silent)}\n`); // once, before any bar
    }, 1000);
    watchdog.unref();
    return {
      everyMs: 500,
      rate: runRate,
      update(p) {
        lastUpdate = Date.now();
        runRate.note(p.counts.moved);
        const total = Math.max(p.job.listed, p.counts.listed, 1);
        const done = p.counts.moved + p.counts.skipped + p.counts.failed;
        const payload = {
          mb: (p.counts.movedBytes / 1e6).toFixed(1),
          rate: shownRate(runRate.perSecond(p.counts.moved)),
          failed: p.counts.failed,
          state: p.job.listingDone ? p.job.state : `${p.job.state} (${p.job.listed} listed)`,
        };
        if (!bar) {
          const cliProgress: typeof import("cli-progress") = require("cli-progress");
          bar = new cliProgress.SingleBar(
            {
              stream,
              format:
                "{bar} {percentage}% | {value}/{total} objects | {mb} MB | {rate} obj/s | ETA {eta_formatted} | failed {failed} | {state}",
              hideCursor: true,
              etaBuffer: 20,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(total, done, payload);
        } else {
          bar.setTotal(total);
          bar.update(done, payload);
        }
      },
      stop: () => {
        clearInterval(watchdog);
        bar?.stop();
      },
    };
  }
  let lastLine = 0;
  let lastUpdate = Date.now();
  // Progress is read from the endpoint: while it does not answer, no line would come at all. Say so instead.
  const watchdog = setInterval(() => {
    const silent = Date.now() - lastUpdate;
    if (silent >= STALL_NOTICE_MS && Date.now() - lastLine >= STALL_NOTICE_MS) {
      lastLine = Date.now();
      stream.write(`${stallLine(silent)}\n`);
    }
  }, 1000);
  watchdog.unref();
  return {
    everyMs: 2000,
    rate: runRate,
    update(p) {
      lastUpdate = Date.now();
      runRate.note(p.counts.moved);
      if (Date.now() - lastLine < 2000 && p.job.state !== "done") return;
      lastLine = Date.now();
      stream.write(`${formatProgressLine(p, runRate)}\n`);
    },
    stop: () => clearInterval(watchdog),
  };
}

/** No progress for this long, and a line says the endpoint is not answering. */
export const STALL_NOTICE_MS = 10_000;

function stallLine(silentMs: number): string {
  return (
    `(no progress read for ${Math.round(silentMs / 1000)} s: the endpoint is not answering; its calls are retried, ` +
    "each after its idle timeout (30 s, 60 s for S3, unless IDLE_TIMEOUT_MS says), and the move goes on once it answers)"
  );
}

export function formatProgressLine(p: MoveProgress, runRate: RunRate): string {
  // Once the job is finished the queues say nothing more about it (a finished move reads them while it stops);
  // the dead letters still matter: they are what a redrive would retry.
  // The queues are shared by every job: their depths are not this job's alone.
  const queues = isFinished(p.job.state)
    ? `dead letters (all jobs) ${p.deadLetters}`
    : `queues (all jobs): queued ${p.queued}, in flight ${p.inFlight}, dead letters ${p.deadLetters}`;
  return (
    `[${p.job.state}] listed ${Math.max(p.job.listed, p.counts.listed)}${p.job.listingDone || isFinished(p.job.state) ? "" : "+"}, moved ${p.counts.moved}, ` +
    `skipped ${p.counts.skipped}, failed ${p.counts.failed}, ${shownRate(runRate.perSecond(p.counts.moved))} obj/s, ` +
    queues
  );
}

function shownRate(perSecond: number | undefined): string {
  return perSecond === undefined ? "–" : Math.round(perSecond).toString();
}

/** The options an attached job keeps where this command's differ: worth saying even with --quiet. */
export function keptOptions(
  request: { overwrite: boolean; report?: string | undefined },
  opened: { job: Job; attached: boolean },
): string[] {
  const { job } = opened;
  if (!opened.attached || job.dryRun) return [];
  return [
    ...(job.overwrite !== request.overwrite ? [job.overwrite ? "overwrite on" : "--no-overwrite"] : []),
    ...(job.report !== request.report ? [`report to ${job.report ?? "nowhere"}`] : []),
  ];
}

/**
 * What a move says once its job is open: which job (its id is what `status` and `cancel` take), and, when it attached
 * to an unfinished job started with other options, that the job keeps its own.
 */
export function openedLine(
  request: { overwrite: boolean; report?: string | undefined },
  opened: { job: Job; attached: boolean },
): string {
  const { job } = opened;
  const route = `s3://${job.from}/${job.prefix} → s3://${job.to}/${job.prefix}`;
  if (job.dryRun) return `Dry run ${job.id}: listing s3://${job.from}/${job.prefix}`;
  if (!opened.attached) return `Job ${job.id}: moving ${route} (if stopped, the same command resumes it)`;
  const kept = keptOptions(request, opened);
  return (
    `Continuing job ${job.id}, started ${job.createdAt}: ${route}` +
    (kept.length === 0
      ? ""
      : `. It keeps the options it was started with (${kept.join(", ")}), not this command's; to change them, ` +
        `cancel it (\`s3-image-mover cancel --job ${job.id}\`) and move again`)
  );
}
