// `npm run bench -- --perf`: where each tool's own CPU went, from a sampling profile of its whole process tree
// (Linux perf). Each timed run goes under `perf record -g`; its samples are then split two ways: by thread (the
// main JavaScript thread, worker threads, V8's helper threads, the rest) and by what the call stack is doing (garbage collection, the JIT
// compilers, compiling and parsing code, everything else). Profiled runs are slower (sampling, call graphs): read the
// CPU split, not their times.
import { spawnSync } from "node:child_process";
import type { Availability, ToolCommand } from "./tools.ts";

/** Samples per second per thread: about one per millisecond of CPU. */
export const PERF_HZ = 999;

export const PERF_THREADS = ["main", "workers", "v8Helpers", "other"] as const;
export type PerfThread = (typeof PERF_THREADS)[number];
export const PERF_KINDS = ["scavenge", "markSweep", "jit", "compile", "rest"] as const;
export type PerfKind = (typeof PERF_KINDS)[number];

export interface PerfProfile {
  hz: number;
  samples: number;
  /** Samples by thread group, then by kind. */
  byThread: Record<PerfThread, Record<PerfKind, number>>;
}

export function perfCommand(command: ToolCommand, dataFile: string): ToolCommand {
  return {
    ...command,
    file: "perf",
    args: ["record", "--quiet", "-F", String(PERF_HZ), "-g", "-o", dataFile, "--", command.file, ...command.args],
  };
}

export function checkPerf(): Availability {
  const probe = spawnSync("perf", ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (probe.error || probe.status !== 0)
    return { ok: false, detail: "perf is not installed; install it with: sudo apt-get install -y linux-perf" };
  return { ok: true, detail: probe.stdout.trim() };
}

/**
 * Node names its threads: the main one "MainThread" (or "node" before it is renamed), worker threads
 * "WorkerThread", V8's platform threads (GC helpers, background compilers) "V8Worker".
 */
export function threadGroup(comm: string): PerfThread {
  if (comm === "MainThread" || comm === "node") return "main";
  if (comm === "WorkerThread") return "workers";
  if (comm.startsWith("V8Worker")) return "v8Helpers";
  return "other";
}

/** What a sample's stack (any frame, innermost first) is doing, from V8's and Node's native symbol names. */
export function classifyStack(frames: readonly string[]): PerfKind {
  const stack = frames.join("\n");
  if (/Scaveng|MinorMarkSweep|MinorMS/.test(stack)) return "scavenge";
  if (/MarkCompact|ConcurrentMarking|IncrementalMarking|MarkingVisitor|Sweeper|Evacuat/.test(stack)) return "markSweep";
  if (/maglev::|turboshaft::|compiler::|baseline::|OptimizingCompile|Turbofan|Sparkplug/.test(stack)) return "jit";
  if (
    /Compiler::|CompileLazy|UnoptimizedCompil|internal::Parser::|PreParser|Deserializer|CompileFunction|CompileSourceTextModule/.test(
      stack,
    )
  )
    return "compile";
  return "rest";
}

/** Counts `perf script -F comm,tid,ip,sym` output: one block per sample, a "comm tid" line, then its frames. */
export function parsePerfScript(text: string, hz = PERF_HZ): PerfProfile {
  const byThread = Object.fromEntries(
    PERF_THREADS.map((thread) => [thread, Object.fromEntries(PERF_KINDS.map((kind) => [kind, 0]))]),
  ) as PerfProfile["byThread"];
  let samples = 0;
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block.split("\n").filter((line) => line.trim() !== "");
    const header = lines[0]?.trim();
    if (!header) continue;
    // "comm tid": comm may hold spaces, the tid is the last field.
    const comm = header.replace(/\s+\d+\s*$/, "");
    const frames = lines.slice(1).map((line) => line.trim().replace(/^[0-9a-f]+\s+/, ""));
    byThread[threadGroup(comm)][classifyStack(frames)] += 1;
    samples += 1;
  }
  return { hz, samples, byThread };
}

/** The profile of a `perf record` data file, or undefined (with the reason on stderr) when perf cannot read it. */
export function readPerfProfile(dataFile: string): PerfProfile | undefined {
  const out = spawnSync("perf", ["script", "-i", dataFile, "-F", "comm,tid,ip,sym"], {
    encoding: "utf8",
    maxBuffer: 1 << 30,
    timeout: 120_000,
  });
  if (out.error || out.status !== 0) {
    process.stderr.write(`perf script failed on ${dataFile}: ${out.error?.message ?? out.stderr.trim()}\n`);
    return undefined;
  }
  return parsePerfScript(out.stdout);
}

/** CPU ms in a profile, by thread group and by kind (each sums to the total). */
export function perfMs(profile: PerfProfile): {
  total: number;
  threads: Record<PerfThread, number>;
  kinds: Record<PerfKind, number>;
} {
  const ms = (samples: number) => (samples * 1000) / profile.hz;
  const threads = Object.fromEntries(
    PERF_THREADS.map((thread) => [thread, ms(sum(Object.values(profile.byThread[thread])))]),
  ) as Record<PerfThread, number>;
  const kinds = Object.fromEntries(
    PERF_KINDS.map((kind) => [kind, ms(sum(PERF_THREADS.map((thread) => profile.byThread[thread][kind])))]),
  ) as Record<PerfKind, number>;
  return { total: ms(profile.samples), threads, kinds };
}

/** One row per tool: the mean over its profiled runs, in ms of CPU. */
export function formatPerfTable(rows: ReadonlyArray<{ tool: string; profiles: readonly PerfProfile[] }>): string {
  const header = [
    "tool",
    "runs",
    "CPU ms sampled",
    "main thread",
    "worker threads",
    "V8 helper threads",
    "other threads",
    "GC: scavenges",
    "GC: mark & sweep",
    "JIT compilers",
    "compiling & parsing",
    "the rest",
  ];
  const lines = [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`];
  for (const { tool, profiles } of rows) {
    if (profiles.length === 0) continue;
    const each = profiles.map(perfMs);
    const mean = (pick: (m: ReturnType<typeof perfMs>) => number) =>
      Math.round(sum(each.map(pick)) / each.length).toLocaleString("en-US");
    lines.push(
      `| ${[
        tool,
        String(profiles.length),
        mean((m) => m.total),
        ...PERF_THREADS.map((thread) => mean((m) => m.threads[thread])),
        ...PERF_KINDS.map((kind) => mean((m) => m.kinds[kind])),
      ].join(" | ")} |`,
    );
  }
  return lines.join("\n");
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
