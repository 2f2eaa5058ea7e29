// Where the CPU went during a run (Linux /proc; zeros elsewhere): the tool, the proxy, the emulator, the bench itself,
// and everything else on the machine. On a 2-core laptop the rig competes with the tool for CPU, and anything else
// running at the same time (a test run, a type check) slows every tool down: this makes both visible.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

export interface CpuSeconds {
  /** The tool's process tree (waited-for children of the bench: exact, read when the tool has exited). */
  tool: number;
  proxy: number;
  emulator: number;
  /** The bench process itself (polling /proc, IPC). */
  bench: number;
  /** Busy CPU time of the whole machine not accounted above: other work that competed with the run. */
  other: number;
}

interface Snapshot {
  machineBusy: number;
  children: number;
  proxy: number;
  emulator: number;
  bench: number;
}

const TICKS_PER_SECOND = clockTicks();
/** Without /proc (macOS, Windows) every reading is zero: the report shows n/a instead. */
export const CPU_ACCOUNTING = existsSync("/proc/self/stat");

/** A CPU-time reading now; `cpuSince(before)` later gives the seconds spent in between. */
export function cpuSnapshot(pids: { proxy: number; emulator: number }): Snapshot & { pids: typeof pids } {
  const self = processTicks("self");
  return {
    machineBusy: machineBusyTicks() / TICKS_PER_SECOND,
    children: (self?.childrenTicks ?? 0) / TICKS_PER_SECOND,
    proxy: processCpuSeconds(pids.proxy),
    emulator: processCpuSeconds(pids.emulator),
    bench: (self?.ticks ?? 0) / TICKS_PER_SECOND,
    pids,
  };
}

export function cpuSince(before: ReturnType<typeof cpuSnapshot>): CpuSeconds {
  const now = cpuSnapshot(before.pids);
  const tool = now.children - before.children;
  const proxy = now.proxy - before.proxy;
  const emulator = now.emulator - before.emulator;
  const bench = now.bench - before.bench;
  const other = Math.max(0, now.machineBusy - before.machineBusy - tool - proxy - emulator - bench);
  return { tool, proxy, emulator, bench, other };
}

/** CPU seconds (user + system) one process has used so far; 0 once it is gone, or without /proc. */
export function processCpuSeconds(pid: number): number {
  return (processTicks(String(pid))?.ticks ?? 0) / TICKS_PER_SECOND;
}

/** utime+stime, and cutime+cstime (children waited for), from /proc/<pid>/stat; fields count from after "(comm)". */
function processTicks(pid: string): { ticks: number; childrenTicks: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat
      .slice(stat.lastIndexOf(")") + 2)
      .split(" ")
      .map(Number);
    // After the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    return {
      ticks: (fields[11] ?? 0) + (fields[12] ?? 0),
      childrenTicks: (fields[13] ?? 0) + (fields[14] ?? 0),
    };
  } catch {
    return undefined;
  }
}

/**
 * user + nice + system of all CPUs, from the first line of /proc/stat. Interrupt time is left out: whether the kernel
 * also charges it to the process it interrupted depends on its configuration, and counting it twice would show
 * "other" work that is not there.
 */
function machineBusyTicks(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const [, user, nice, system] = line.trim().split(/\s+/).map(Number);
    return (user ?? 0) + (nice ?? 0) + (system ?? 0);
  } catch {
    return 0;
  }
}

function clockTicks(): number {
  const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const ticks = Number(out.stdout?.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
}
