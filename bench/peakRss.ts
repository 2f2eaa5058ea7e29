// Peak resident memory of a process tree, read from /proc while it runs (Linux only).
// Each process's VmHWM is the kernel's own high-water mark of its RSS, so a sample never misses a short spike; the
// polling (every ~50 ms) only has to see each process once while it lives. The tree's peak is the sum of its
// processes' high-water marks: exact for a single process (all tools here), an upper bound for several.
import { existsSync, readdirSync, readFileSync } from "node:fs";

export interface PeakRssSampler {
  /** Stops polling; the peak in bytes (undefined where /proc is unavailable), and how many processes were seen. */
  stop(): { peakRssBytes: number | undefined; processes: number };
}

export const SAMPLE_EVERY_MS = 50;
const MAX_TREE = 256; // a tool that forks more than this is not measured beyond it

export function samplePeakRss(rootPid: number): PeakRssSampler {
  const available = existsSync(`/proc/${process.pid}/status`);
  const hwmKbByPid = new Map<number, number>();
  const sample = () => {
    for (const pid of processTree(rootPid)) {
      const kb = readHwmKb(pid);
      if (kb !== undefined) hwmKbByPid.set(pid, Math.max(kb, hwmKbByPid.get(pid) ?? 0));
    }
  };
  if (available) sample();
  const timer = available ? setInterval(sample, SAMPLE_EVERY_MS) : undefined;
  return {
    stop() {
      clearInterval(timer);
      if (!available) return { peakRssBytes: undefined, processes: 0 };
      let kb = 0;
      for (const value of hwmKbByPid.values()) kb += value;
      return { peakRssBytes: kb * 1024, processes: hwmKbByPid.size };
    },
  };
}

function readHwmKb(pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined; // it exited between listing and reading
  }
}

/** The root and its descendants, breadth first. */
function processTree(rootPid: number): number[] {
  const childrenOf = HAS_CHILDREN_FILES ? childrenFromTasks : childrenFromParents(parentsOfAll());
  const seen: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0 && seen.length < MAX_TREE) {
    const pid = queue.shift() as number;
    seen.push(pid);
    queue.push(...childrenOf(pid));
  }
  return seen;
}

// /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN; without it, parents are read from every /proc/<pid>/stat.
const HAS_CHILDREN_FILES = existsSync(`/proc/${process.pid}/task/${process.pid}/children`);

function childrenFromTasks(pid: number): number[] {
  const children: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return children;
  }
  for (const tid of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text) for (const child of text.split(/\s+/)) children.push(Number(child));
    } catch {
      // the thread ended meanwhile
    }
  }
  return children;
}

function childrenFromParents(parents: Map<number, number>): (pid: number) => number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  return (pid) => children.get(pid) ?? [];
}

/** pid → parent pid of every process; the parent is the 2nd field after the command name, which may hold ")". */
function parentsOfAll(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // it exited meanwhile
    }
  }
  return parents;
}
