/**
 * A model of a move's wall time and AWS cost, from the inputs in DEFAULT_INPUTS (each says where it comes from).
 * docs/SCALING.md explains the model and holds the tables it prints.
 *
 *   npm run model                                   # the table for 1k … 1B objects, as deployed
 *   npm run model -- --tuned                        # the same, with the recommended settings per row
 *   npm run model -- --objects 1e6 --avg-kb 200 --latency-ms 30 --in-flight 256 --workers 50 [--json]
 *
 * Pure functions (estimateMove, recommendSettings, formatTable) are exported for test/unit/model.test.ts.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import {
  DEFAULT_INPUTS,
  estimateMove,
  formatCount,
  formatTable,
  type ModelInputs,
  TABLE_SIZES,
  tuneInputs,
} from "../src/core/costModel.ts";

export * from "../src/core/costModel.ts";

/** One line naming the inputs a table was computed from, so it can be reproduced. */
export function describeInputs(inputs: ModelInputs, tuned: boolean): string {
  return (
    `avg ${inputs.avgKb} KiB, keys ${inputs.avgKeyBytes} B, S3 latency ${inputs.latencyMs} ms, ` +
    `${inputs.inFlight} in flight, client CPU ${inputs.cpuMsPerS3Request} ms/S3 request, ` +
    `listing ${formatCount(inputs.listKeysPerSecond)} keys/s per job, ` +
    (tuned
      ? "workers / prefixes / jobs recommended per row"
      : `${inputs.workers} workers, ${inputs.prefixes} prefix(es), ${inputs.jobs} job(s)`)
  );
}

// ---- CLI ----

function positiveNumber(flag: string) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0)
      throw new InvalidArgumentError(`${flag} must be a number > 0, got "${raw}"`);
    return value;
  };
}

function wholeNumber(flag: string) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1)
      throw new InvalidArgumentError(`${flag} must be a whole number ≥ 1, got "${raw}"`);
    return value;
  };
}

function nonNegativeNumber(flag: string) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0)
      throw new InvalidArgumentError(`${flag} must be a number ≥ 0, got "${raw}"`);
    return value;
  };
}

export function buildModelCli(): Command {
  const d = DEFAULT_INPUTS;
  return new Command("model")
    .description(
      "Estimate a move's wall time and AWS cost (docs/SCALING.md). Without --objects: the table for 1k … 1B objects.",
    )
    .addOption(new Option("--objects <n>", "objects to move (e.g. 1e6); one row").argParser(wholeNumber("--objects")))
    .addOption(
      new Option("--avg-kb <n>", "average object size, KiB").default(d.avgKb).argParser(positiveNumber("--avg-kb")),
    )
    .addOption(
      new Option("--key-bytes <n>", "average key length, bytes")
        .default(d.avgKeyBytes)
        .argParser(wholeNumber("--key-bytes")),
    )
    .addOption(
      new Option("--latency-ms <n>", "S3 CopyObject latency, ms")
        .default(d.latencyMs)
        .argParser(positiveNumber("--latency-ms")),
    )
    .addOption(
      new Option("--in-flight <n>", "copies in flight per invocation (COPY_CONCURRENCY)")
        .default(d.inFlight)
        .argParser(wholeNumber("--in-flight")),
    )
    .addOption(
      new Option("--workers <n>", "mover invocations at once (maximumConcurrency)")
        .default(d.workers)
        .argParser(wholeNumber("--workers")),
    )
    .addOption(
      new Option("--prefixes <n>", "partitioned S3 prefixes the keys spread over")
        .default(d.prefixes)
        .argParser(wholeNumber("--prefixes")),
    )
    .addOption(
      new Option("--jobs <n>", "jobs over disjoint prefixes (one lister each)")
        .default(d.jobs)
        .argParser(wholeNumber("--jobs")),
    )
    .addOption(
      new Option("--cpu-ms <n>", "client CPU per S3 request, ms (SDK ~0.6, lean signer ~0.18: bench/clientCpu.ts)")
        .default(d.cpuMsPerS3Request)
        .argParser(positiveNumber("--cpu-ms")),
    )
    .addOption(
      new Option("--list-rate <n>", "keys listed per second per job")
        .default(d.listKeysPerSecond)
        .argParser(positiveNumber("--list-rate")),
    )
    .addOption(
      new Option("--heads <n>", "HeadObject calls per object (1 with --no-overwrite)")
        .default(d.headsPerObject)
        .argParser(nonNegativeNumber("--heads")),
    )
    .option("--tuned", "use the recommended workers, prefixes and jobs for each row")
    .option("--json", "print the estimates as JSON")
    .showHelpAfterError()
    .exitOverride();
}

interface CliOptions {
  objects?: number;
  avgKb: number;
  keyBytes: number;
  latencyMs: number;
  inFlight: number;
  workers: number;
  prefixes: number;
  jobs: number;
  cpuMs: number;
  listRate: number;
  heads: number;
  tuned?: boolean;
  json?: boolean;
}

/** Parses argv, computes the rows and returns what to print. */
export function runModelCli(argv: readonly string[]): string {
  const options = buildModelCli().parse(argv, { from: "node" }).opts<CliOptions>();
  const base: ModelInputs = {
    ...DEFAULT_INPUTS,
    avgKb: options.avgKb,
    avgKeyBytes: options.keyBytes,
    latencyMs: options.latencyMs,
    inFlight: options.inFlight,
    workers: options.workers,
    prefixes: options.prefixes,
    jobs: options.jobs,
    cpuMsPerS3Request: options.cpuMs,
    listKeysPerSecond: options.listRate,
    headsPerObject: options.heads,
  };
  const tuned = options.tuned === true;
  const sizes = options.objects === undefined ? TABLE_SIZES : [options.objects];
  const estimates = sizes.map((objects) => {
    const inputs = { ...base, objects };
    return estimateMove(tuned ? tuneInputs(inputs) : inputs);
  });
  if (options.json === true) return JSON.stringify(estimates.length === 1 ? estimates[0] : estimates, null, 2);
  return `${describeInputs(base, tuned)}\n\n${formatTable(estimates)}`;
}

if (import.meta.main) {
  try {
    console.log(runModelCli(process.argv));
  } catch (error) {
    // commander has already printed its own message for bad arguments and --help
    const code = (error as { exitCode?: number }).exitCode;
    if (code === undefined) console.error(error instanceof Error ? error.message : error);
    process.exitCode = code ?? 1;
  }
}
