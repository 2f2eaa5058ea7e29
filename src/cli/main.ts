import { once } from "node:events";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Command, Option } from "commander";
import { MAX_COPY_CONCURRENCY } from "../config.ts";
import { estimateFromListing, formatEstimate } from "../core/estimate.ts";
import { JobNotFoundError, MoverError, ValidationError } from "../errors.ts";
import type { LocalApp } from "../local/localApp.ts";
import { runMoveInWorker } from "../local/moveWorker.ts";
import { isFinished } from "../types.ts";
import { portNumber, positiveInt, wholeNumber } from "./argParsers.ts";
import { moveOutcome } from "./moveOutcome.ts";
import { createProgressReporter, formatProgressLine, keptOptions, openedLine } from "./progress.ts";

// The AWS SDK and the emulator load only in the commands that use them: `move` runs in a worker thread, which loads
// its own, so this thread stays small.
const awsClients = () => import("../aws/clients.ts");

/**
 * Builds the local app for one command (loading the SDK only now), runs `use`, then closes the app's clients. A
 * command that only reads or changes jobs (status, cancel, redrive) passes `noJobs`: where no move ever ran (no job
 * table), that runs instead, and no table or queue is created.
 */
async function withLocalApp(
  endpoint: string | undefined,
  use: (app: LocalApp) => Promise<void>,
  noJobs?: () => void,
): Promise<void> {
  const [{ createLocalApp }, { destroyClients, createClients, resolveTarget }, { jobTableExists }] = await Promise.all([
    import("../local/localApp.ts"),
    awsClients(),
    import("../local/resources.ts"),
  ]);
  if (noJobs) {
    const clients = createClients(resolveTarget({ endpoint }));
    try {
      if (!(await jobTableExists(clients))) return noJobs();
    } finally {
      destroyClients(clients);
    }
  }
  const app = await createLocalApp({ endpoint });
  try {
    await use(app);
  } finally {
    destroyClients(app.clients);
  }
}

export function buildCli(): Command {
  const program = new Command("s3-image-mover")
    .description("Move every object from one S3 bucket to another: copy, verify, delete. Resumes where it stopped.")
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride();

  program
    .command("demo")
    .description("Start the embedded emulator, generate JPEGs in a source bucket, move them, verify, print a summary")
    .addOption(new Option("--objects <n>", "images to generate").default(1000).argParser(positiveInt("--objects")))
    .addOption(
      new Option("--concurrency <n>", "copies in flight")
        .default(256)
        .argParser(positiveInt("--concurrency", MAX_COPY_CONCURRENCY)),
    )
    .option("--quiet", "no progress display")
    .action(async (opts: { objects: number; concurrency: number; quiet?: boolean }) => {
      const { runDemo } = await import("./demo.ts"); // the emulator's code loads only for the commands that run it
      const summary = await runDemo({
        objects: opts.objects,
        concurrency: opts.concurrency,
        quiet: opts.quiet === true,
      });
      process.exitCode = summary.ok ? 0 : 1;
    });

  program
    .command("emulator")
    .description("Run the embedded S3 + SQS + DynamoDB emulator on 127.0.0.1 until stopped (Ctrl-C)")
    .addOption(new Option("--port <n>", "port").default(4566).argParser(portNumber))
    .option("--data-dir <dir>", "keep state on disk here (survives restarts)")
    .action(async (opts: { port: number; dataDir?: string }) => {
      const { startEmulator } = await import("../emulator/emulator.ts");
      const emulator = await startEmulator({ port: opts.port, ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
      console.log(
        `Emulator listening on ${emulator.endpoint} (S3, SQS, DynamoDB)${opts.dataDir ? `, state in ${opts.dataDir}` : ""}`,
      );
      console.log(`Use it with: AWS_ENDPOINT_URL=${emulator.endpoint} npx s3-image-mover move --from A --to B`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await emulator.stop();
    });

  program
    .command("seed")
    .description("Create a bucket if missing and upload N generated JPEGs")
    .requiredOption("--bucket <name>", "bucket")
    .addOption(
      new Option("--objects <n>", "images (0: just create the bucket)")
        .default(1000)
        .argParser(wholeNumber("--objects")),
    )
    .option("--prefix <prefix>", "key prefix", "")
    .addOption(new Option("--size-kb <n>", "approximate image size").default(20).argParser(positiveInt("--size-kb")))
    .option("--endpoint <url>", "S3 endpoint (default: AWS_ENDPOINT_URL, else AWS)")
    .action(async (opts: { bucket: string; objects: number; prefix: string; sizeKb: number; endpoint?: string }) => {
      const [{ createClients, destroyClients, resolveTarget }, { seedBucket }, { bucketName }] = await Promise.all([
        awsClients(),
        import("../images/seed.ts"),
        import("../core/validation.ts"),
      ]);
      bucketName(opts.bucket, "--bucket"); // S3's own answer is a stack trace here
      const clients = createClients(resolveTarget({ endpoint: opts.endpoint }));
      try {
        const out = await seedBucket(clients.s3, {
          bucket: opts.bucket,
          objects: opts.objects,
          prefix: opts.prefix,
          bytes: opts.sizeKb * 1024,
        });
        console.log(
          `Seeded ${out.objects} JPEGs (${(out.bytes / 1e6).toFixed(1)} MB) into s3://${opts.bucket}/${opts.prefix}`,
        );
      } finally {
        destroyClients(clients);
      }
    });

  program
    .command("move")
    .description("Move every object under --prefix from --from to --to, with workers in this process")
    .requiredOption("--from <bucket>", "source bucket")
    .requiredOption("--to <bucket>", "destination bucket")
    .option("--prefix <prefix>", "only keys starting with this", "")
    .option("--endpoint <url>", "S3/SQS/DynamoDB endpoint (default: AWS_ENDPOINT_URL, else AWS)")
    .addOption(
      new Option("--concurrency <n>", "copies in flight")
        .default(256)
        .argParser(positiveInt("--concurrency", MAX_COPY_CONCURRENCY)),
    )
    .option("--no-overwrite", "skip keys that already exist in the destination with other content")
    .option("--dry-run", "list and estimate only; move nothing")
    .option(
      "--report <dir-or-s3>",
      "where the JSON Lines move report goes (a directory, or s3://bucket/prefix/)",
      "s3-image-mover-reports",
    )
    .option("--quiet", "no progress display")
    .action(
      async (opts: {
        from: string;
        to: string;
        prefix: string;
        endpoint?: string;
        concurrency: number;
        overwrite: boolean;
        dryRun?: boolean;
        report: string;
        quiet?: boolean;
      }) => {
        const request = {
          from: opts.from,
          to: opts.to,
          prefix: opts.prefix,
          overwrite: opts.overwrite,
          dryRun: opts.dryRun === true,
          // A directory, or a location as the start function takes it (s3://, file:///).
          report: /^(s3|file):\/\//.test(opts.report) ? opts.report : `${pathToFileURL(resolve(opts.report)).href}/`,
        };
        const reporter = createProgressReporter({ quiet: opts.quiet === true });
        let jobId: string | undefined;
        // Ctrl-C ends the move where it is (nothing is lost: every key is resolved or left for the next run).
        const interrupted = () => {
          reporter.stop();
          console.error(
            !jobId
              ? "\nInterrupted before the job opened: nothing was moved."
              : request.dryRun // a dry run never attaches: the same command starts a new one
                ? `\nInterrupted: dry run ${jobId} stops here; nothing was moved. Run the same command to start it again.`
                : `\nInterrupted: job ${jobId} stops here; run the same command to resume it.`,
          );
          process.exit(130);
        };
        process.once("SIGINT", interrupted);
        try {
          // The worker validates the request before any queue or table is created, then checks both buckets.
          const result = await runMoveInWorker(
            {
              endpoint: opts.endpoint,
              copyConcurrency: opts.concurrency,
              request,
              progressEveryMs: reporter.everyMs,
            },
            (p) => reporter.update(p),
            (opened) => {
              jobId = opened.job.id;
              if (opened.attached) reporter.rate.resumed(opened.movedBefore);
              // Even with --quiet: an attached job keeps options this command would change, which the user must know.
              if (!opts.quiet || keptOptions(request, opened).length > 0) console.error(openedLine(request, opened));
              if (opened.overlapWarning) console.error(`Warning: ${opened.overlapWarning}`);
            },
          );
          reporter.stop();
          if (result.job.dryRun) {
            console.log(formatEstimate(estimateFromListing(result.job.listed, result.job.listedBytes)));
            console.log(`Nothing was copied, deleted or queued for moving (dry run ${result.job.id}).`);
            return;
          }
          console.log(formatProgressLine(result, reporter.rate));
          if (result.reportFile) console.log(`Report: ${result.reportFile}`);
          else if (result.job.report?.startsWith("s3://") && isFinished(result.job.state)) {
            // Parts stay in S3 (several per batch, the newest line of a key winning); `report` assembles them.
            console.log(
              `Report parts: ${result.job.report}${result.job.id}/ (one file: s3-image-mover report --job ${result.job.id} > ${result.job.id}.jsonl)`,
            );
          }
          for (const other of result.othersFinished ?? []) {
            console.log(
              `Also finished job ${other.jobId} (${other.state}), whose batches were in the same queues` +
                (other.reportFile ? `; its report: ${other.reportFile}` : "") +
                (other.reportError
                  ? `; its report could not be assembled (${other.reportError}): run report --job`
                  : ""),
            );
          }
          const outcome = moveOutcome(result);
          if (outcome.message) console.error(outcome.message);
          process.exitCode = outcome.exitCode;
        } finally {
          process.off("SIGINT", interrupted);
          reporter.stop();
        }
      },
    );

  program
    .command("status")
    .description("A job's state, exact counts, rate, ETA, queues and last errors; without --job, the recent jobs")
    .option("--job <id>", "job id")
    .option("--json", "print JSON")
    .option("--watch", "refresh every 2 seconds until the job finishes")
    .option("--endpoint <url>", "endpoint (default: AWS_ENDPOINT_URL, else AWS)")
    .action(async (opts: { job?: string; json?: boolean; watch?: boolean; endpoint?: string }) => {
      const { formatJobList, formatStatus, jobStatus, recentJobs } = await import("../core/status.ts");
      const noJobs = () => {
        if (opts.job) throw new JobNotFoundError(opts.job);
        console.log(opts.json ? "[]" : formatJobList([]));
      };
      await withLocalApp(
        opts.endpoint,
        async (app) => {
          if (!opts.job) {
            const jobs = await recentJobs(app);
            console.log(opts.json ? JSON.stringify(jobs, null, 2) : formatJobList(jobs));
            return;
          }
          for (;;) {
            const status = await jobStatus(app, opts.job);
            if (opts.watch && process.stdout.isTTY && !opts.json) process.stdout.write("\x1b[2J\x1b[H");
            console.log(opts.json ? JSON.stringify(status, null, 2) : formatStatus(status));
            if (!opts.watch || isFinished(status.job.state)) return;
            await new Promise((resolve) => setTimeout(resolve, 2000));
          }
        },
        noJobs,
      );
    });

  program
    .command("report")
    .description("Assemble a finished job's report: a local one into <dir>/<job>.jsonl, an S3 one onto stdout")
    .requiredOption("--job <id>", "job id")
    .option("--endpoint <url>", "endpoint (default: AWS_ENDPOINT_URL, else AWS)")
    .action(async (opts: { job: string; endpoint?: string }) => {
      const [{ writeLocalReport }, { assembleReport, reportSinkFor }] = await Promise.all([
        import("../local/localMove.ts"),
        import("../core/report.ts"),
      ]);
      await withLocalApp(
        opts.endpoint,
        async (app) => {
          const job = await app.store.getJob(opts.job);
          if (!job.report) throw new ValidationError(`Job ${job.id} was started without a report location`);
          // A move assembles its job's report when it finishes it; one finished by another process is assembled here.
          if (!isFinished(job.state)) {
            throw new ValidationError(`Job ${job.id} is still ${job.state}: its report is assembled once it finishes`);
          }
          const file = await writeLocalReport(app, job);
          if (file) console.log(`Report: ${file}`);
          else
            await assembleReport(reportSinkFor(job.report, app.clients.s3), job.id, async (chunk) => {
              if (!process.stdout.write(chunk)) await once(process.stdout, "drain");
            }).catch((error: NodeJS.ErrnoException) => {
              if (error.code !== "EPIPE") throw error; // its reader has gone (| head): nothing more to write to
            });
        },
        () => {
          throw new JobNotFoundError(opts.job);
        },
      );
    });

  program
    .command("redrive")
    .description("Move dead-letter messages back to their queues (all jobs, or one); the next move retries them")
    .option("--job <id>", "only this job's messages")
    .option("--endpoint <url>", "endpoint (default: AWS_ENDPOINT_URL, else AWS)")
    .action(async (opts: { job?: string; endpoint?: string }) => {
      const { redriveDeadLetters } = await import("../core/redrive.ts");
      await withLocalApp(
        opts.endpoint,
        async (app) => {
          if (opts.job) await app.store.getJob(opts.job); // an unknown id is refused, not "redriven" with nothing
          const result = await redriveDeadLetters(app, { jobId: opts.job });
          console.log(
            `Redrove ${result.moved.move} move and ${result.moved.list} list message(s)` +
              (result.jobs.length ? ` of job(s) ${result.jobs.join(", ")}` : "") +
              (result.moved.move + result.moved.list > 0
                ? ". Run `move` again (or let the deployed movers) to finish."
                : "."),
          );
          if (result.undeleted > 0) {
            console.error(
              `${result.undeleted} redriven message(s) could not be deleted from their dead-letter queue` +
                (result.undeletedReason ? ` (${result.undeletedReason})` : "") +
                ": they reappear there within 60 s of being received, and a later redrive sends them again " +
                "(a duplicate, skipped where its work is done)." +
                (result.stoppedEarly
                  ? " The redrive stopped there, leaving the rest on the DLQ: fix the cause, then run it again."
                  : ""),
            );
            process.exitCode = 1;
          }
        },
        () => {
          if (opts.job) throw new JobNotFoundError(opts.job);
          console.log("Redrove 0 move and 0 list message(s): no move ever ran at this endpoint.");
        },
      );
    });

  program
    .command("cancel")
    .description("Cancel a job: listing stops, queued batches are dropped unmoved, unmoved keys stay in the source")
    .requiredOption("--job <id>", "job id")
    .option("--endpoint <url>", "endpoint (default: AWS_ENDPOINT_URL, else AWS)")
    .action(async (opts: { job: string; endpoint?: string }) => {
      await withLocalApp(
        opts.endpoint,
        async (app) => {
          const before = await app.store.getJob(opts.job);
          const job = isFinished(before.state) ? before : await app.store.cancel(opts.job);
          console.log(
            job === before
              ? `Job ${job.id} is already ${job.state}: nothing to cancel`
              : job.state === "cancelled"
                ? `Job ${job.id}: cancelled; its unmoved keys stay in the source`
                : `Job ${job.id} finished (${job.state}) before the cancel reached it: nothing to cancel`,
          );
        },
        () => {
          throw new JobNotFoundError(opts.job);
        },
      );
    });

  return program;
}

/**
 * Runs the CLI. Exit codes: 0 done; 1 a move ran but did not move every key; 2 refused (bad arguments or input,
 * a missing bucket: one clear line, nothing changed).
 */
export async function main(argv = process.argv): Promise<void> {
  const program = buildCli();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const e = error as { code?: string; exitCode?: number };
    if (typeof e.code === "string" && e.code.startsWith("commander.")) {
      // Commander has printed its message (or the help, or the version: exit code 0); its usage errors exit 1.
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    const unreachable = networkFailureOf(error);
    if (unreachable) {
      // Not "refused": the endpoint may have gone away in the middle of a move, which then resumes when run again.
      console.error(
        `Error: could not reach S3, SQS or DynamoDB: ${unreachable}. Is the endpoint running ` +
          "(`s3-image-mover emulator`, LocalStack), and is --endpoint right? A move resumes when run again.",
      );
      process.exitCode = 1;
      return;
    }
    if (error instanceof MoverError) {
      console.error(`Error: ${error.message}`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}

/** Error codes of a connection that could not be made or was lost. */
const NETWORK_CODES = /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNRESET|ETIMEDOUT)\b/;

/**
 * The first line of a network failure anywhere in the error's chain (its causes, or an AggregateError's errors),
 * else undefined. The worker thread's errors arrive as their message alone, so the message counts as well as the code.
 */
function networkFailureOf(error: unknown, depth = 0): string | undefined {
  if (!(error instanceof Error) || depth > 5) return undefined;
  const { code } = error as NodeJS.ErrnoException;
  // TimeoutError: an endpoint that took the connection and then said nothing (clients.ts, IDLE_TIMEOUT_MS).
  if ((code && NETWORK_CODES.test(code)) || NETWORK_CODES.test(error.message) || error.name === "TimeoutError") {
    return (error.message.split("\n")[0] || code || error.name).replace(/\.$/, "");
  }
  const inner = error instanceof AggregateError ? error.errors : [error.cause];
  for (const each of inner) {
    const found = networkFailureOf(each, depth + 1);
    if (found) return found;
  }
  return undefined;
}

function packageVersion(): string {
  const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };
  return version;
}
