// The move benchmark of issue #4: our `move` against rclone, aws-cli and the rig's ceiling, on the same emulator,
// behind the same latency proxy, each from a fresh seed. bench/README.md explains the columns and holds results.
//
//   npm run bench                                             # 10,000 × 20 KB, 20 ms, 3 runs, every tool
//   npm run bench -- --objects 2000 --runs 1                  # a quick smoke run
//   npm run bench -- --tools ours,ceiling --json bench/results/today.json
//   npm run bench -- --objects 100000 --size-kb 2 --tools ours --runs 1   # our peak RSS at 100k
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, freemem, platform, release, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { createClients, destroyClients, resolveTarget } from "../src/aws/clients.ts";
import { positiveInt, wholeNumber } from "../src/cli/argParsers.ts";
import { spawnEmulator } from "../src/emulator/process.ts";
import { seedBucket } from "../src/images/seed.ts";
import {
  checkBucketHolds,
  createBucket,
  type ExpectedObject,
  expectedObjects,
  removeBucket,
  type Verification,
  verifyRun,
} from "./buckets.ts";
import { CPU_ACCOUNTING, type CpuSeconds, cpuSince, cpuSnapshot } from "./cpuUsage.ts";
import { SAMPLE_EVERY_MS } from "./peakRss.ts";
import { checkPerf, formatPerfTable, type PerfProfile, perfCommand, readPerfProfile } from "./perfProfile.ts";
import { copyRate, formatPhaseTable, medianPhases, type Phases } from "./phases.ts";
import type { ProxySnapshot } from "./proxyProcess.ts";
import { runTool, stopRunningTool, type ToolRun } from "./runTool.ts";
import { spawnProxy } from "./spawnProxy.ts";
import { median, ratiosByRound } from "./stats.ts";
import { type Availability, buildTools, checkAvailability, TOOL_NAMES, type ToolName } from "./tools.ts";

interface BenchOptions {
  objects: number;
  sizeKb: number;
  latencyMs: number;
  runs: number;
  tools: ToolName[];
  json?: string;
  timeoutS?: number;
  aws: string;
  rclone: string;
  ourConcurrency?: number;
  ceilingConcurrency: number;
  seedConcurrency: number;
  verbose?: boolean;
  timeline?: boolean;
  quietWaitS: number;
  busyRetries: number;
  warmupObjects: number;
  skipMemoryCheck?: boolean;
  perf?: boolean;
}

/** What one run moves: its objects, their manifest (the ceiling's input) and its time limit. */
interface Workload {
  objects: number;
  expected: ExpectedObject[];
  manifestPath: string;
  timeoutMs: number;
}

/** A run's objects, with the manifest of their keys and ETags (the ceiling's input) written to tmpDir/<name>.tsv. */
function writeWorkload(tmpDir: string, name: string, objects: ExpectedObject[], timeoutMs: number): Workload {
  const manifestPath = join(tmpDir, `${name}.tsv`);
  writeFileSync(manifestPath, objects.map((object) => `${object.key}\t${object.etag}\n`).join(""));
  return { objects: objects.length, expected: objects, manifestPath, timeoutMs };
}

interface RunRecord extends Omit<ToolRun, "stdoutTail" | "stderrTail"> {
  round: number;
  /** The commit (and uncommitted src/ changes) when it started: ours runs from the working tree, which may change. */
  revision: Revision | undefined;
  /** Whether other work had stopped (< 0.25 cores) when the run started; see --quiet-wait-s. */
  startedQuiet: boolean;
  /** Other work competed for CPU during the run (see `disturbed`). */
  disturbed: boolean;
  /** Disturbed, and repeated on a fresh seed: left out of the medians. */
  repeated: boolean;
  ok: boolean;
  /** Why the run failed, in one line. */
  failure?: string;
  verification: Verification;
  /** CPU seconds during the run: the tool, the rig (proxy, emulator, bench) and other work on the machine. */
  cpu: CpuSeconds;
  /** The tool's last line of output (ours: its summary; the ceiling: its own timing, without process start). */
  lastLine: string;
  requests: { s3: number; sqs: number; dynamodb: number; byOperation: Record<string, number> };
  /** Requests per second at the proxy, from the proxy's reset just before the tool started. */
  timeline: ProxySnapshot["timeline"];
  /** Per operation: count, and first and last time it reached the proxy (ms after the tool was started). */
  spans: ProxySnapshot["spans"];
  /** With --perf: the tool's CPU by thread and by what it was doing (bench/perfProfile.ts). */
  perf?: PerfProfile;
  stdoutTail?: string;
  stderrTail?: string;
}

interface ToolResult {
  tool: ToolName;
  command: string;
  version: string;
  status: "ok" | "FAILED" | "skipped";
  skipped?: string;
  runs: RunRecord[];
  median?: Medians;
  /** This tool's median seconds over ours: 2.0 means it takes twice as long. */
  timeVsOurs?: number;
  /** Its passing runs over ours in the same round (ratiosByRound), and their median. */
  timeVsOursByRound?: Array<{ round: number; ratio: number }>;
  timeVsOursByRoundMedian?: number;
}

interface Medians {
  seconds: number;
  objectsPerSecond: number;
  s3PerObject: number;
  sqsPerObject: number;
  dynamodbPerObject: number;
  peakRssMB: number | undefined;
  toolCpuMsPerObject: number;
  /** Mean cores busy with other work during the runs: above ~0.1 the machine was not quiet. */
  otherCores: number;
  /** Where the time went: first copy, copy rate, tail, cores busy (medians). */
  phases: Phases | undefined;
}

/** Cores of other work, on average over a run, above which the run is considered disturbed. */
const BUSY_CORES = 0.25;

const RSS_METHOD = `sum of VmHWM (the kernel's peak RSS per process) over the tool's process tree, polled from /proc every ${SAMPLE_EVERY_MS} ms`;

function parseOptions(argv: string[]): BenchOptions {
  const program = new Command("bench")
    .description("Time moving N objects between buckets with ours, rclone, aws-cli and a bare CopyObject client")
    .addOption(
      new Option("--objects <n>", "objects seeded per run").default(10_000).argParser(positiveInt("--objects")),
    )
    .addOption(new Option("--size-kb <n>", "size of each JPEG in KB").default(20).argParser(positiveInt("--size-kb")))
    .addOption(
      new Option("--latency-ms <n>", "delay the proxy adds to every request")
        .default(20)
        .argParser(wholeNumber("--latency-ms")),
    )
    .addOption(
      new Option("--runs <n>", "runs per tool; the table shows medians").default(3).argParser(positiveInt("--runs")),
    )
    .addOption(
      new Option("--tools <list>", `comma-separated subset of ${TOOL_NAMES.join(",")}`)
        .default([...TOOL_NAMES], "all")
        .argParser(toolList),
    )
    .option("--json <file>", "also write the results as JSON here")
    .addOption(
      new Option("--timeout-s <n>", "time limit per tool run (default: 60 s + 50 ms per object)").argParser(
        positiveInt("--timeout-s"),
      ),
    )
    .option("--aws <path>", "aws-cli v2 (Debian's package)", "/usr/bin/aws")
    .option("--rclone <path>", "rclone", "rclone")
    .addOption(
      new Option("--our-concurrency <n>", "pass --concurrency to ours (default: its own, 256)").argParser(
        positiveInt("--our-concurrency"),
      ),
    )
    .addOption(
      new Option("--ceiling-concurrency <n>", "CopyObject calls in flight in the ceiling")
        .default(256)
        .argParser(positiveInt("--ceiling-concurrency")),
    )
    .addOption(
      new Option("--seed-concurrency <n>", "PutObject calls in flight while seeding")
        .default(64)
        .argParser(positiveInt("--seed-concurrency")),
    )
    .addOption(
      new Option(
        "--quiet-wait-s <n>",
        "before each run, wait up to this long for other work on the machine to stop (0: never wait)",
      )
        .default(30)
        .argParser(wholeNumber("--quiet-wait-s")),
    )
    .addOption(
      new Option(
        "--busy-retries <n>",
        "repeat a run that other work on the machine competed with for CPU, this many times at most",
      )
        .default(2)
        .argParser(wholeNumber("--busy-retries")),
    )
    .addOption(
      new Option(
        "--warmup-objects <n>",
        "before the timed rounds, every tool moves this many objects once, untimed (0: no warm-up)",
      )
        .default(1000)
        .argParser(wholeNumber("--warmup-objects")),
    )
    .option("--verbose", "pass each tool's own output through (e.g. with POWERTOOLS_LOG_LEVEL=INFO for ours)")
    .option("--timeline", "print our run's requests per second at the proxy (the JSON always has every run's)")
    .option("--skip-memory-check", "run even when the emulator may not fit in the memory available")
    .option(
      "--perf",
      "profile each timed run with Linux perf and print where each tool's CPU went (profiling slows the runs: compare the CPU, not the times)",
    )
    .showHelpAfterError();
  program.parse(argv);
  return program.opts<BenchOptions>();
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv);
  const objects = options.objects;
  const bytes = options.sizeKb * 1024;
  const timeoutMs = (options.timeoutS ?? 60 + Math.ceil(objects * 0.05)) * 1000;
  checkMemory(options);
  if (options.perf) {
    const perf = checkPerf();
    if (!perf.ok) throw new Error(`--perf: ${perf.detail}`);
    log(
      `--perf: every timed run is profiled (${perf.detail}); profiling slows them, so compare their CPU, not their times`,
    );
  }

  const binaries = {
    aws: options.aws,
    rclone: options.rclone,
    ourConcurrency: options.ourConcurrency,
    ceilingConcurrency: options.ceilingConcurrency,
  };
  const tools = buildTools(binaries);
  const availability = new Map<ToolName, Availability>();
  for (const name of options.tools) {
    const found = checkAvailability(name, binaries);
    availability.set(name, found);
    if (!found.ok) log(`Skipping ${name}: ${found.detail}`);
  }
  const active = options.tools.filter((name) => availability.get(name)?.ok);

  const tmpDir = mkdtempSync(join(tmpdir(), "s3-image-mover-bench-"));
  log(`Computing the ${objects.toLocaleString("en-US")} expected objects (${options.sizeKb} KB each)...`);
  const expected = expectedObjects(objects, bytes);
  const timed = writeWorkload(tmpDir, "manifest", expected, timeoutMs);
  // The warm-up runs the emulator's and the proxy's code for each tool's requests once before anything is timed,
  // so that a fresh rig's JIT warm-up (and our first run's CreateTable) is not charged to whichever tool runs first.
  const warmupObjects = Math.min(options.warmupObjects, objects);
  const warm =
    warmupObjects > 0
      ? writeWorkload(
          tmpDir,
          "warmup",
          expectedObjects(warmupObjects, bytes),
          (60 + Math.ceil(warmupObjects * 0.05)) * 1000,
        )
      : undefined;

  const revisionAtStart = revision();
  const emulator = await spawnEmulator({ port: 0 });
  const proxy = await spawnProxy({ target: emulator.endpoint, latencyMs: options.latencyMs });
  log(
    `Emulator ${emulator.endpoint} (pid ${emulator.pid}); proxy ${proxy.endpoint} (pid ${proxy.pid}), ${options.latencyMs} ms per request`,
  );
  // Seeding, checking and clearing go straight to the emulator: never timed, never counted.
  // An empty env: createClients then gives an emulator endpoint its dummy credentials.
  const direct = createClients(
    resolveTarget({ endpoint: emulator.endpoint, region: "us-east-1", maxSockets: 128 }, {}),
    {},
  );

  // Ctrl-C stops the running tool; the loop then ends and the finally block stops the rig. A second one exits now
  // (the emulator and the proxy exit by themselves when this process is gone).
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping the running tool, then the proxy and the emulator.`);
    stopRunningTool();
  };
  process.on("SIGINT", onSignal).on("SIGTERM", onSignal);

  const rigPids = { proxy: proxy.pid, emulator: emulator.pid };
  /** Seeds fresh buckets, runs one tool once, verifies and clears; undefined when interrupted. Round 0 is the warm-up. */
  const runOnce = async (
    name: ToolName,
    round: number,
    attempt: number,
    { objects, expected, manifestPath, timeoutMs }: Workload = timed,
  ): Promise<RunRecord | undefined> => {
    const tool = tools[name];
    const prefix = `[${round === 0 ? "warm-up" : `run ${round}/${options.runs}`}] ${name.padEnd(15)}`;
    const id = `${round === 0 ? "w" : `r${round}`}${attempt > 0 ? `a${attempt}` : ""}-${name}`;
    const from = `bench-${id}-src`;
    const to = `bench-${id}-dst`;
    const seedStarted = performance.now();
    await createBucket(direct.s3, from);
    await createBucket(direct.s3, to);
    await seedBucket(direct.s3, { bucket: from, objects, bytes, concurrency: options.seedConcurrency });
    const seeded = await checkBucketHolds(direct.s3, from, expected);
    if (!seeded.ok)
      throw new Error(`Seeding ${from} went wrong (${describeVerification(seeded)}): the rig is broken, not a tool.`);
    log(`${prefix} seeded ${from} in ${seconds(performance.now() - seedStarted)} s; running...`);

    const runTmp = join(tmpDir, id);
    mkdirSync(runTmp);
    const plain = tool.command({ endpoint: proxy.endpoint, from, to, manifestPath, tmpDir: runTmp });
    const perfData = options.perf && round > 0 ? join(runTmp, "perf.data") : undefined;
    const command = perfData ? perfCommand(plain, perfData) : plain;
    const quiet = await waitForQuiet(rigPids, options.quietWaitS);
    if (!quiet.quiet)
      log(`${prefix} the machine is busy (${quiet.otherCores.toFixed(2)} cores of other work); running anyway`);
    const startedAt = revision();
    await proxy.reset();
    const cpuBefore = cpuSnapshot(rigPids);
    const run = await runTool(command, { timeoutMs, passThrough: options.verbose === true });
    if (interrupted) return undefined;
    const cpu = cpuSince(cpuBefore);
    const snapshot = await proxy.counts();
    const verification = await verifyRun(direct.s3, { from, to, outcome: tool.outcome }, expected);
    const perf = perfData ? readPerfProfile(perfData) : undefined;
    const record: RunRecord = {
      ...toRecord(round, run, verification, cpu, snapshot),
      ...(perf ? { perf } : {}),
      revision: startedAt,
      startedQuiet: quiet.quiet,
      disturbed: disturbed(cpu, run.seconds),
      repeated: false,
    };
    log(
      `${prefix} ${record.ok ? "ok    " : "FAILED"} ${run.seconds.toFixed(2)} s, ` +
        `${Math.round(objects / run.seconds).toLocaleString("en-US")} objects/s, ` +
        `S3 ${(snapshot.s3 / objects).toFixed(2)}/object, SQS ${(snapshot.sqs / objects).toFixed(3)}/object, ` +
        `peak RSS ${formatMB(run.peakRssBytes)} MB; CPU s: tool ${cpu.tool.toFixed(1)}, proxy ${cpu.proxy.toFixed(1)}, ` +
        `emulator ${cpu.emulator.toFixed(1)}, bench ${cpu.bench.toFixed(1)}, other ${cpu.other.toFixed(1)}` +
        `${record.failure ? ` — ${record.failure}` : ""}`,
    );
    if (!record.ok && !options.verbose) {
      if (run.stderrTail.trim()) log(`${prefix} stderr (tail):\n${indent(run.stderrTail)}`);
      if (run.stdoutTail.trim()) log(`${prefix} stdout (tail):\n${indent(run.stdoutTail)}`);
    }
    if (name === "ours" && options.timeline && round > 0)
      log(formatPhases(snapshot.spans, run.seconds), formatTimeline(snapshot.timeline, objects));
    await removeBucket(direct.s3, from, objects);
    await removeBucket(direct.s3, to, objects * 2);
    return record;
  };

  const runsByTool = new Map<ToolName, RunRecord[]>(active.map((name) => [name, []]));
  try {
    for (const name of warm ? active : []) {
      if (interrupted) break;
      const record = await runOnce(name, 0, 0, warm);
      // Not counted either way; a tool that fails here is reported by its timed runs.
      if (record && !record.ok) log(`[warm-up] ${name.padEnd(15)} failed; its timed runs follow anyway`);
    }
    for (let round = 1; round <= options.runs && !interrupted; round++) {
      // Rounds interleave the tools, so that a drift of the machine over time spreads over all of them, and each
      // round starts with the next tool, so that none always runs first after seeding.
      const shift = (round - 1) % active.length;
      for (const name of [...active.slice(shift), ...active.slice(0, shift)]) {
        // A run that other work on the machine slowed down is repeated (a bounded number of times) on a fresh seed;
        // the disturbed attempt stays in the JSON, marked `repeated`, and out of the medians. A failed one still fails the tool.
        for (let attempt = 0; attempt <= options.busyRetries && !interrupted; attempt++) {
          const record = await runOnce(name, round, attempt);
          if (!record) break;
          runsByTool.get(name)?.push(record);
          if (!record.disturbed || attempt === options.busyRetries) break; // out of retries: it counts, with a warning
          record.repeated = true;
          log(`[run ${round}/${options.runs}] ${name.padEnd(15)} repeating it: other work competed for the CPU`);
        }
      }
    }
  } finally {
    destroyClients(direct);
    await proxy.stop();
    // Bounded: an emulator that does not stop within 10 s is killed.
    const killLater = setTimeout(() => emulator.kill("SIGKILL"), 10_000);
    await emulator.stop();
    clearTimeout(killLater);
    rmSync(tmpDir, { recursive: true, force: true });
  }

  if (interrupted) {
    process.exitCode = 130;
    return;
  }
  const results = summarize(options, tools, availability, runsByTool, objects);
  const report = {
    benchmark: "s3-image-mover: move N objects between buckets through a latency proxy (issue #4)",
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    date: new Date().toISOString(),
    machine: machine(),
    revision: { atStart: revisionAtStart, atEnd: revision() },
    settings: {
      objects,
      sizeKb: options.sizeKb,
      latencyMs: options.latencyMs,
      runs: options.runs,
      timeoutSeconds: timeoutMs / 1000,
      warmupObjects,
      rss: RSS_METHOD,
    },
    tools: results,
  };
  const table = formatTable(results, objects);
  process.stdout.write(
    `\n${report.command}\n${report.date.slice(0, 10)}, ${report.machine.cpus} cores (${report.machine.cpuModel}), ` +
      `${report.machine.memoryGB} GB, Node ${process.version}; ${objects.toLocaleString("en-US")} objects × ${options.sizeKb} KB, ` +
      `${options.latencyMs} ms per request, median of ${options.runs} run(s); ${describeRevisions(results)}\n\n${table}\n`,
  );
  if (options.perf) {
    const profiles = results.map((result) => ({
      tool: result.tool,
      profiles: result.runs.flatMap((run) => (run.ok && !run.repeated && run.perf ? [run.perf] : [])),
    }));
    process.stdout.write(
      `\nWhere each tool's CPU went (perf record -F 999 -g; mean ms of CPU per run, by thread and by what the stack was doing):\n\n${formatPerfTable(profiles)}\n`,
    );
  }
  if (options.json) {
    mkdirSync(dirname(options.json), { recursive: true });
    writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
    log(`Wrote ${options.json}`);
  }
  const failed = results.filter((result) => result.status === "FAILED").map((result) => result.tool);
  if (failed.length > 0) {
    log(`FAILED: ${failed.join(", ")} (see above, or the JSON's runs[].failure)`);
    process.exitCode = 1;
  }
}

function toRecord(
  round: number,
  run: ToolRun,
  verification: Verification,
  cpu: CpuSeconds,
  snapshot: ProxySnapshot,
): Omit<RunRecord, "revision" | "startedQuiet" | "disturbed" | "repeated"> {
  const { stdoutTail, stderrTail, ...measured } = run;
  let failure: string | undefined;
  if (run.timedOut) failure = `timed out after ${run.seconds.toFixed(0)} s`;
  else if (run.exitCode !== 0) failure = `exited with ${run.signal ?? `code ${run.exitCode}`}`;
  if (!verification.ok)
    failure = [failure, `verification: ${describeVerification(verification)}`].filter(Boolean).join("; ");
  return {
    round,
    ...measured,
    ok: failure === undefined,
    ...(failure ? { failure, stdoutTail, stderrTail } : {}),
    verification,
    cpu,
    lastLine: run.stdoutTail.trimEnd().split("\n").at(-1) ?? "",
    requests: { s3: snapshot.s3, sqs: snapshot.sqs, dynamodb: snapshot.dynamodb, byOperation: snapshot.byOperation },
    timeline: snapshot.timeline,
    spans: snapshot.spans,
  };
}

/**
 * Whether other work competed with a run for CPU: it used more than BUSY_CORES on average, and together with the
 * tool and the rig it asked for more than three quarters of the machine. A latency-bound run (rclone's defaults
 * use a fifth of a core) is not slowed by a busy neighbour, and is not repeated for one.
 */
function disturbed(cpu: CpuSeconds, seconds: number): boolean {
  const other = cpu.other / seconds;
  const demand = (cpu.tool + cpu.proxy + cpu.emulator + cpu.bench + cpu.other) / seconds;
  return other > BUSY_CORES && demand > 0.75 * cpus().length;
}

/** Waits (at most `maxSeconds`) until other processes use less than a quarter of a core, measured over 1 s. */
async function waitForQuiet(
  pids: { proxy: number; emulator: number },
  maxSeconds: number,
): Promise<{ quiet: boolean; otherCores: number }> {
  let otherCores = 0;
  for (let waited = 0; waited < maxSeconds; waited++) {
    const before = cpuSnapshot(pids);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    otherCores = cpuSince(before).other;
    if (otherCores < 0.25) return { quiet: true, otherCores };
  }
  return { quiet: maxSeconds === 0, otherCores };
}

function describeVerification(v: Verification): string {
  if (v.ok) return "ok";
  const parts = [
    v.missing && `${v.missing} missing`,
    v.wrong && `${v.wrong} with wrong ETag/size`,
    v.extra && `${v.extra} unexpected`,
    v.sourceLeft && `${v.sourceLeft} left in source`,
  ].filter(Boolean);
  return `${parts.join(", ")} (e.g. ${v.examples.slice(0, 2).join("; ")})`;
}

function summarize(
  options: BenchOptions,
  tools: ReturnType<typeof buildTools>,
  availability: Map<ToolName, Availability>,
  runsByTool: Map<ToolName, RunRecord[]>,
  objects: number,
): ToolResult[] {
  const results: ToolResult[] = options.tools.map((name) => {
    const found = availability.get(name);
    const runs = runsByTool.get(name) ?? [];
    if (!found?.ok) {
      return {
        tool: name,
        command: tools[name].describe,
        version: "",
        status: "skipped",
        skipped: found?.detail ?? "",
        runs,
      };
    }
    // Medians over the runs that passed; a tool with no passing run shows its failed runs' numbers.
    const counted = runs.filter((run) => !run.repeated);
    const passed = counted.filter((run) => run.ok);
    const basis = passed.length > 0 ? passed : counted;
    const status = runs.length > 0 && runs.every((run) => run.ok) ? "ok" : "FAILED";
    const result: ToolResult = { tool: name, command: tools[name].describe, version: found.detail, status, runs };
    if (basis.length > 0) {
      const secs = median(basis.map((run) => run.seconds));
      const rss = basis.flatMap((run) => (run.peakRssBytes === undefined ? [] : [run.peakRssBytes]));
      result.median = {
        seconds: secs,
        objectsPerSecond: objects / secs,
        s3PerObject: median(basis.map((run) => run.requests.s3)) / objects,
        sqsPerObject: median(basis.map((run) => run.requests.sqs)) / objects,
        dynamodbPerObject: median(basis.map((run) => run.requests.dynamodb)) / objects,
        peakRssMB: rss.length > 0 ? median(rss) / 2 ** 20 : undefined,
        toolCpuMsPerObject: (median(basis.map((run) => run.cpu.tool)) * 1000) / objects,
        otherCores:
          basis.reduce((sum, run) => sum + run.cpu.other, 0) / basis.reduce((sum, run) => sum + run.seconds, 0),
        phases: medianPhases(
          basis.map((run) => ({ seconds: run.seconds, copies: run.spans.CopyObject, cpu: run.cpu })),
        ),
      };
    }
    return result;
  });
  const oursResult = results.find((result) => result.tool === "ours" && result.status === "ok");
  const ours = oursResult?.median;
  const passing = (result: ToolResult) => result.runs.filter((run) => !run.repeated && run.ok);
  for (const result of results) {
    if (!ours || !result.median) continue;
    result.timeVsOurs = result.median.seconds / ours.seconds;
    if (result === oursResult || result.status !== "ok") continue;
    const byRound = ratiosByRound(passing(result), passing(oursResult as ToolResult));
    if (byRound.length === 0) continue;
    result.timeVsOursByRound = byRound;
    result.timeVsOursByRoundMedian = median(byRound.map((r) => r.ratio));
  }
  return results;
}

/** The results as a Markdown table, ready to paste into bench/README.md. */
function formatTable(results: ToolResult[], objects: number): string {
  const header = [
    "tool",
    "status",
    "seconds",
    "objects/s",
    "S3 req/object",
    "SQS req/object",
    "DynamoDB req/object",
    "peak RSS (MB)",
    "tool CPU ms/object",
    "time vs ours",
  ];
  const rows = results.map((result) => {
    const m = result.median;
    if (!m) {
      const status = result.status === "skipped" ? `skipped: ${result.skipped}` : result.status;
      return [result.tool, status, ...header.slice(2).map(() => "")];
    }
    const runs = result.runs.filter((run) => !run.repeated).map((run) => run.seconds);
    const spread = runs.length > 1 ? ` (${Math.min(...runs).toFixed(1)}–${Math.max(...runs).toFixed(1)})` : "";
    return [
      result.tool,
      result.status,
      `${m.seconds.toFixed(2)}${spread}`,
      result.status === "ok" ? Math.round(m.objectsPerSecond).toLocaleString("en-US") : "–",
      m.s3PerObject.toFixed(2),
      m.sqsPerObject.toFixed(3),
      m.dynamodbPerObject.toFixed(3),
      m.peakRssMB === undefined ? "n/a" : m.peakRssMB.toFixed(0),
      CPU_ACCOUNTING ? m.toolCpuMsPerObject.toFixed(2) : "n/a",
      result.timeVsOurs === undefined || result.status !== "ok" ? "–" : `${result.timeVsOurs.toFixed(2)}×`,
    ];
  });
  const lines = [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`);
  const commands = results.map(
    (result) => `- ${result.tool}: \`${result.command}\`${result.version ? ` (${result.version})` : ""}`,
  );
  const busy = results.filter((result) => result.runs.some((run) => run.disturbed && !run.repeated));
  const repeated = results.reduce((n, result) => n + result.runs.filter((run) => run.repeated).length, 0);
  const warning = busy.length
    ? `\nWarning: other work competed for the CPU during counted runs of ${busy.map((r) => `${r.tool} (${(r.median?.otherCores ?? 0).toFixed(2)} cores on average)`).join(", ")}; ` +
      "those times are pessimistic. Rerun on a quiet machine."
    : "";
  const phases = formatPhaseTable(
    results.map((result) => ({
      tool: result.tool,
      phases: result.status === "ok" ? result.median?.phases : undefined,
    })),
    { cpu: CPU_ACCOUNTING },
  );
  const phaseNote = phases
    ? `\n\nWhere the time went (medians; times at the proxy, from the tool's spawn):\n\n${phases}\n`
    : "\n";
  return (
    `${lines.join("\n")}${phaseNote}${formatRoundTable(results)}\n${objects.toLocaleString("en-US")} objects per run. Commands:\n${commands.join("\n")}\n` +
    `Peak RSS: ${RSS_METHOD}.${repeated ? `\n${repeated} run(s) disturbed by other work were repeated (kept in the JSON, marked repeated).` : ""}${warning}`
  );
}

/** Each tool's time over ours round by round, when there are several rounds: the pairs share the machine's moment. */
function formatRoundTable(results: ToolResult[]): string {
  const rows = results.filter((result) => result.timeVsOursByRound !== undefined);
  const rounds = [...new Set(rows.flatMap((result) => (result.timeVsOursByRound ?? []).map((r) => r.round)))].sort(
    (a, b) => a - b,
  );
  if (rows.length === 0 || rounds.length < 2) return "";
  const header = ["tool", ...rounds.map((round) => `round ${round}`), "median"];
  const lines = [
    header,
    header.map(() => "---"),
    ...rows.map((result) => {
      const byRound = new Map((result.timeVsOursByRound ?? []).map((r) => [r.round, r.ratio]));
      return [
        result.tool,
        ...rounds.map((round) => {
          const ratio = byRound.get(round);
          return ratio === undefined ? "–" : `${ratio.toFixed(2)}×`;
        }),
        `${(result.timeVsOursByRoundMedian ?? Number.NaN).toFixed(2)}×`,
      ];
    }),
  ].map((cells) => `| ${cells.join(" | ")} |`);
  return (
    "\nTime vs ours, round by round (each run over ours in the same round; for the ceiling, ours' share of it):\n\n" +
    `${lines.join("\n")}\n`
  );
}

/** Where a run's wall time went, from the first and last time each operation reached the proxy. */
function formatPhases(spans: ProxySnapshot["spans"], seconds: number): string {
  const all = Object.values(spans);
  if (all.length === 0) return "no requests reached the proxy";
  const first = Math.min(...all.map((span) => span.firstMs));
  const last = Math.max(...all.map((span) => span.lastMs));
  const copies = spans.CopyObject;
  const ms = (n: number) => `${(n / 1000).toFixed(2)} s`;
  return [
    `phases: start to first request ${ms(first)}`,
    copies
      ? `first CopyObject at ${ms(copies.firstMs)}, last at ${ms(copies.lastMs)} (${Math.round(copyRate(copies) ?? 0)}/s between)`
      : "no CopyObject",
    `last request at ${ms(last)}, exit at ${ms(seconds * 1000)}`,
  ].join("; ");
}

/** Our run per second: which requests reached the proxy when, to see where the time goes. */
function formatTimeline(timeline: ProxySnapshot["timeline"], objects: number): string {
  const lines = timeline.map((second, t) => {
    const ops = Object.entries(second.byOperation)
      .sort((a, b) => b[1] - a[1])
      .map(([op, n]) => `${op} ${n}`)
      .join(", ");
    return `  t=${String(t).padStart(3)}s  s3 ${String(second.s3).padStart(5)}  sqs ${String(second.sqs).padStart(4)}  ddb ${String(second.dynamodb).padStart(4)}  | ${ops}`;
  });
  return `ours, requests per second at the proxy (${objects} objects):\n${lines.join("\n")}`;
}

function checkMemory(options: BenchOptions): void {
  // The emulator keeps every body in memory, and during a move both the source and the destination copy exist.
  const perObject = 2 * options.sizeKb * 1024 + 4096;
  const needed = options.objects * perObject;
  const available = memAvailable();
  const gb = (n: number) => (n / 2 ** 30).toFixed(1);
  log(`The emulator may hold up to ${gb(needed)} GB (source + destination); ${gb(available)} GB available.`);
  if (needed > available * 0.6 && !options.skipMemoryCheck) {
    const fits = Math.max(1, Math.floor((available * 0.6) / options.objects / 2 / 1024 - 2));
    throw new InvalidArgumentError(
      `${options.objects} objects × ${options.sizeKb} KB may not fit in memory: use --size-kb ${fits} or smaller ` +
        "(the request counts and our RSS do not depend on object size), or --skip-memory-check.",
    );
  }
}

function memAvailable(): number {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // not Linux
  }
  return freemem();
}

function machine() {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? "unknown",
    memoryGB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
  };
}

/** "commit abc1234", or every commit and uncommitted state ours ran from when the code changed during the bench. */
function describeRevisions(results: ToolResult[]): string {
  const seen = new Set<string>();
  for (const result of results) {
    for (const run of result.runs) {
      if (run.revision)
        seen.add(
          `${run.revision.commit}${run.revision.srcChanges ? ` + ${run.revision.srcChanges} changed src file(s)` : ""}`,
        );
    }
  }
  if (seen.size === 0) return "commit unknown";
  if (seen.size === 1) return `commit ${[...seen][0]}`;
  return `WARNING: the code changed during the bench (${[...seen].join("; ")}): see runs[].revision in the JSON`;
}

interface Revision {
  commit: string;
  /** Files under src/ and bin/ with uncommitted changes. */
  srcChanges: number;
}

/** The commit measured, and whether src/ had uncommitted changes (ours runs from the working tree). */
function revision(): Revision | undefined {
  const root = new URL("..", import.meta.url);
  const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" });
  if (commit.status !== 0) return undefined;
  const status = spawnSync("git", ["status", "--porcelain", "--", "src", "bin"], { cwd: root, encoding: "utf8" });
  return { commit: commit.stdout.trim(), srcChanges: status.stdout.split("\n").filter(Boolean).length };
}

function toolList(value: string): ToolName[] {
  const names = value
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !(TOOL_NAMES as readonly string[]).includes(name));
  if (names.length === 0 || unknown.length > 0) {
    throw new InvalidArgumentError(`--tools takes a comma-separated subset of ${TOOL_NAMES.join(",")}, got "${value}"`);
  }
  return [...new Set(names)] as ToolName[];
}

function formatMB(bytes: number | undefined): string {
  return bytes === undefined ? "n/a" : (bytes / 2 ** 20).toFixed(0);
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");
}

function log(...lines: string[]): void {
  process.stderr.write(`${lines.join("\n")}\n`);
}

await main().catch((error: unknown) => {
  log(error instanceof Error ? `bench: ${error.message}` : String(error));
  process.exitCode = 2;
});
