// The move benchmark of issue #4: our `move` against rclone, aws-cli and the rig's ceiling, on the same emulator,
// behind the same latency proxy, each from a fresh seed. bench/README.md explains the columns and holds results.
//
//   npm run bench                                             # 10,000 × 20 KB, 20 ms, 3 runs, every tool
//   npm run bench -- --objects 2000 --runs 1                  # a quick smoke run
//   npm run bench -- --tools ours,ceiling --json bench/results/today.json
//   npm run bench -- --objects 100000 --size-kb 2 --tools ours --runs 1   # our peak RSS at 100k
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, freemem, platform, release, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { createClients, destroyClients, resolveTarget } from "../src/aws/clients.ts";
import { spawnEmulator } from "../src/emulator/process.ts";
import { seedBucket } from "../src/images/seed.ts";
import { checkBucketHolds, createBucket, expectedObjects, removeBucket, type Verification, verifyRun } from "./buckets.ts";
import { type CpuSeconds, cpuSince, cpuSnapshot } from "./cpuUsage.ts";
import { SAMPLE_EVERY_MS } from "./peakRss.ts";
import type { ProxySnapshot } from "./proxyProcess.ts";
import { runTool, stopRunningTool, type ToolRun } from "./runTool.ts";
import { spawnProxy } from "./spawnProxy.ts";
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
  skipMemoryCheck?: boolean;
}

interface RunRecord extends Omit<ToolRun, "stdoutTail" | "stderrTail"> {
  round: number;
  ok: boolean;
  /** Why the run failed, in one line. */
  failure?: string;
  verification: Verification;
  /** CPU seconds during the run: the tool, the rig (proxy, emulator, bench) and other work on the machine. */
  cpu: CpuSeconds;
  /** The tool's last line of output (ours: its summary; the ceiling: its own timing, without process start). */
  lastLine: string;
  requests: { s3: number; sqs: number; dynamodb: number; byOperation: Record<string, number> };
  timeline?: ProxySnapshot["timeline"];
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
}

const RSS_METHOD =
  `sum of VmHWM (the kernel's peak RSS per process) over the tool's process tree, polled from /proc every ${SAMPLE_EVERY_MS} ms`;

function parseOptions(argv: string[]): BenchOptions {
  const program = new Command("bench")
    .description("Time moving N objects between buckets with ours, rclone, aws-cli and a bare CopyObject client")
    .addOption(new Option("--objects <n>", "objects seeded per run").default(10_000).argParser(positiveInt("--objects")))
    .addOption(new Option("--size-kb <n>", "size of each JPEG in KB").default(20).argParser(positiveInt("--size-kb")))
    .addOption(new Option("--latency-ms <n>", "delay the proxy adds to every request").default(20).argParser(nonNegativeInt("--latency-ms")))
    .addOption(new Option("--runs <n>", "runs per tool; the table shows medians").default(3).argParser(positiveInt("--runs")))
    .addOption(
      new Option("--tools <list>", `comma-separated subset of ${TOOL_NAMES.join(",")}`)
        .default([...TOOL_NAMES], "all")
        .argParser(toolList),
    )
    .option("--json <file>", "also write the results as JSON here")
    .addOption(
      new Option("--timeout-s <n>", "time limit per tool run (default: 60 s + 50 ms per object)").argParser(positiveInt("--timeout-s")),
    )
    .option("--aws <path>", "aws-cli v2 (Debian's package)", "/usr/bin/aws")
    .option("--rclone <path>", "rclone", "rclone")
    .addOption(new Option("--our-concurrency <n>", "pass --concurrency to ours (default: its own, 256)").argParser(positiveInt("--our-concurrency")))
    .addOption(new Option("--ceiling-concurrency <n>", "CopyObject calls in flight in the ceiling").default(256).argParser(positiveInt("--ceiling-concurrency")))
    .addOption(new Option("--seed-concurrency <n>", "PutObject calls in flight while seeding").default(64).argParser(positiveInt("--seed-concurrency")))
    .option("--verbose", "pass each tool's own output through (e.g. with POWERTOOLS_LOG_LEVEL=INFO for ours)")
    .option("--timeline", "keep the proxy's per-second request counts of every run in the JSON, and print ours'")
    .option("--skip-memory-check", "run even when the emulator may not fit in the memory available")
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
  const manifestPath = join(tmpDir, "manifest.tsv");
  writeFileSync(manifestPath, expected.map((object) => `${object.key}\t${object.etag}\n`).join(""));

  const emulator = await spawnEmulator({ port: 0 });
  const proxy = await spawnProxy({ target: emulator.endpoint, latencyMs: options.latencyMs });
  log(`Emulator ${emulator.endpoint} (pid ${emulator.pid}); proxy ${proxy.endpoint} (pid ${proxy.pid}), ${options.latencyMs} ms per request`);
  // Seeding, checking and clearing go straight to the emulator: never timed, never counted.
  // An empty env: createClients then gives an emulator endpoint its dummy credentials.
  const direct = createClients(resolveTarget({ endpoint: emulator.endpoint, region: "us-east-1", maxSockets: 128 }, {}), {});

  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    log(`${signal}: stopping the running tool, the proxy and the emulator.`);
    stopRunningTool();
    void Promise.allSettled([proxy.stop(), emulator.stop()]).finally(() => {
      rmSync(tmpDir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);

  const runsByTool = new Map<ToolName, RunRecord[]>(active.map((name) => [name, []]));
  try {
    for (let round = 1; round <= options.runs && !interrupted; round++) {
      // Rounds interleave the tools, so that a drift of the machine over time spreads over all of them.
      for (const name of active) {
        if (interrupted) break;
        const tool = tools[name];
        const prefix = `[run ${round}/${options.runs}] ${name.padEnd(15)}`;
        const from = `bench-r${round}-${name}-src`;
        const to = `bench-r${round}-${name}-dst`;
        const seedStarted = performance.now();
        await createBucket(direct.s3, from);
        await createBucket(direct.s3, to);
        await seedBucket(direct.s3, { bucket: from, objects, bytes, concurrency: options.seedConcurrency });
        const seeded = await checkBucketHolds(direct.s3, from, expected);
        if (!seeded.ok) throw new Error(`Seeding ${from} went wrong (${describeVerification(seeded)}): the rig is broken, not a tool.`);
        log(`${prefix} seeded ${from} in ${seconds(performance.now() - seedStarted)} s; running...`);

        const runTmp = join(tmpDir, `r${round}-${name}`);
        mkdirSync(runTmp);
        await proxy.reset();
        const command = tool.command({ endpoint: proxy.endpoint, from, to, manifestPath, tmpDir: runTmp });
        const cpuBefore = cpuSnapshot({ proxy: proxy.pid, emulator: emulator.pid });
        const run = await runTool(command, { timeoutMs, passThrough: options.verbose === true });
        const cpu = cpuSince(cpuBefore);
        const snapshot = await proxy.counts();
        const verification = await verifyRun(direct.s3, { from, to, outcome: tool.outcome }, expected);
        const record = toRecord(round, run, verification, cpu, snapshot, options.timeline === true);
        runsByTool.get(name)?.push(record);
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
        if (name === "ours" && options.timeline) log(formatTimeline(snapshot.timeline, objects));
        await removeBucket(direct.s3, from, objects);
        await removeBucket(direct.s3, to, objects * 2);
      }
    }
  } finally {
    destroyClients(direct);
    await proxy.stop();
    await emulator.stop();
    rmSync(tmpDir, { recursive: true, force: true });
  }

  const results = summarize(options, tools, availability, runsByTool, objects);
  const report = {
    benchmark: "s3-image-mover: move N objects between buckets through a latency proxy (issue #4)",
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    date: new Date().toISOString(),
    machine: machine(),
    settings: {
      objects,
      sizeKb: options.sizeKb,
      latencyMs: options.latencyMs,
      runs: options.runs,
      timeoutSeconds: timeoutMs / 1000,
      rss: RSS_METHOD,
    },
    tools: results,
  };
  const table = formatTable(results, objects);
  process.stdout.write(
    `\n${report.command}\n${report.date.slice(0, 10)}, ${report.machine.cpus} cores (${report.machine.cpuModel}), ` +
      `${report.machine.memoryGB} GB, Node ${process.version}; ${objects.toLocaleString("en-US")} objects × ${options.sizeKb} KB, ` +
      `${options.latencyMs} ms per request, median of ${options.runs} run(s)\n\n${table}\n`,
  );
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
  if (interrupted) process.exitCode = 130;
}

function toRecord(
  round: number,
  run: ToolRun,
  verification: Verification,
  cpu: CpuSeconds,
  snapshot: ProxySnapshot,
  keepTimeline: boolean,
): RunRecord {
  const { stdoutTail, stderrTail, ...measured } = run;
  let failure: string | undefined;
  if (run.timedOut) failure = `timed out after ${run.seconds.toFixed(0)} s`;
  else if (run.exitCode !== 0) failure = `exited with ${run.signal ?? `code ${run.exitCode}`}`;
  if (!verification.ok) failure = [failure, `verification: ${describeVerification(verification)}`].filter(Boolean).join("; ");
  return {
    round,
    ...measured,
    ok: failure === undefined,
    ...(failure ? { failure, stdoutTail, stderrTail } : {}),
    verification,
    cpu,
    lastLine: run.stdoutTail.trimEnd().split("\n").at(-1) ?? "",
    requests: { s3: snapshot.s3, sqs: snapshot.sqs, dynamodb: snapshot.dynamodb, byOperation: snapshot.byOperation },
    ...(keepTimeline ? { timeline: snapshot.timeline } : {}),
  };
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
      return { tool: name, command: tools[name].describe, version: "", status: "skipped", skipped: found?.detail ?? "", runs };
    }
    // Medians over the runs that passed; a tool with no passing run shows its failed runs' numbers.
    const passed = runs.filter((run) => run.ok);
    const basis = passed.length > 0 ? passed : runs;
    const status = runs.length > 0 && passed.length === runs.length ? "ok" : "FAILED";
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
        otherCores: basis.reduce((sum, run) => sum + run.cpu.other, 0) / basis.reduce((sum, run) => sum + run.seconds, 0),
      };
    }
    return result;
  });
  const ours = results.find((result) => result.tool === "ours" && result.status === "ok")?.median;
  for (const result of results) if (ours && result.median) result.timeVsOurs = result.median.seconds / ours.seconds;
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
    const runs = result.runs.map((run) => run.seconds);
    const spread = runs.length > 1 ? ` (${Math.min(...runs).toFixed(1)}–${Math.max(...runs).toFixed(1)})` : "";
    return [
      result.tool,
      result.status,
      `${m.seconds.toFixed(2)}${spread}`,
      Math.round(m.objectsPerSecond).toLocaleString("en-US"),
      m.s3PerObject.toFixed(2),
      m.sqsPerObject.toFixed(3),
      m.dynamodbPerObject.toFixed(3),
      m.peakRssMB === undefined ? "n/a" : m.peakRssMB.toFixed(0),
      m.toolCpuMsPerObject.toFixed(2),
      result.timeVsOurs === undefined ? "–" : `${result.timeVsOurs.toFixed(2)}×`,
    ];
  });
  const lines = [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`);
  const commands = results.map((result) => `- ${result.tool}: \`${result.command}\`${result.version ? ` (${result.version})` : ""}`);
  const busy = results.filter((result) => (result.median?.otherCores ?? 0) > 0.1);
  const warning = busy.length
    ? `\nWarning: other work kept ${busy.map((r) => `${(r.median?.otherCores ?? 0).toFixed(2)} cores busy during ${r.tool}`).join(", ")}; ` +
      "those times are pessimistic. Rerun on a quiet machine."
    : "";
  return (
    `${lines.join("\n")}\n\n${objects.toLocaleString("en-US")} objects per run. Commands:\n${commands.join("\n")}\n` +
    `Peak RSS: ${RSS_METHOD}.${warning}`
  );
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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function toolList(value: string): ToolName[] {
  const names = value.split(",").map((name) => name.trim()).filter(Boolean);
  const unknown = names.filter((name) => !(TOOL_NAMES as readonly string[]).includes(name));
  if (names.length === 0 || unknown.length > 0) {
    throw new InvalidArgumentError(`--tools takes a comma-separated subset of ${TOOL_NAMES.join(",")}, got "${value}"`);
  }
  return [...new Set(names)] as ToolName[];
}

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}"`);
    return n;
  };
}

function nonNegativeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number ≥ 0, got "${value}"`);
    return n;
  };
}

function formatMB(bytes: number | undefined): string {
  return bytes === undefined ? "n/a" : (bytes / 2 ** 20).toFixed(0);
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

function indent(text: string): string {
  return text.trimEnd().split("\n").map((line) => `    ${line}`).join("\n");
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

await main().catch((error: unknown) => {
  log(error instanceof Error ? `bench: ${error.message}` : String(error));
  process.exitCode = 2;
});
