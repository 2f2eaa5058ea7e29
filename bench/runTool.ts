// Runs one tool command to completion (or its time limit), timing it and measuring its peak memory.
import { spawn } from "node:child_process";
import { samplePeakRss } from "./peakRss.ts";
import type { ToolCommand } from "./tools.ts";

export interface ToolRun {
  seconds: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  peakRssBytes: number | undefined;
  /** Processes seen in the tool's tree while measuring. */
  processes: number;
  /** The last few KB the tool wrote, for the report when it failed. */
  stdoutTail: string;
  stderrTail: string;
}

const TAIL_BYTES = 4096;
const KILL_GRACE_MS = 5_000;

/** Tracks the running tool so that an interrupted bench can stop it (it runs in its own process group). */
let running: { pid: number } | undefined;

export function stopRunningTool(): void {
  if (running) killGroup(running.pid, "SIGKILL");
}

/**
 * Spawns the command in its own process group, with stdout and stderr kept to their tails (or passed through when
 * `passThrough`), and resolves when it exits. After `timeoutMs` the group gets SIGTERM, then SIGKILL.
 */
export function runTool(command: ToolCommand, options: { timeoutMs: number; passThrough: boolean }): Promise<ToolRun> {
  const started = performance.now();
  const child = spawn(command.file, command.args, {
    env: command.env,
    cwd: command.cwd,
    detached: true, // its own process group: a timeout stops the whole tree
    stdio: ["ignore", options.passThrough ? "inherit" : "pipe", options.passThrough ? "inherit" : "pipe"],
  });
  let stdoutTail = "";
  let stderrTail = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdoutTail = (stdoutTail + chunk).slice(-TAIL_BYTES);
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-TAIL_BYTES);
  });
  const sampler = child.pid === undefined ? undefined : samplePeakRss(child.pid);
  if (child.pid !== undefined) running = { pid: child.pid };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid === undefined) return;
    killGroup(child.pid, "SIGTERM");
    setTimeout(
      () => child.pid !== undefined && child.exitCode === null && killGroup(child.pid, "SIGKILL"),
      KILL_GRACE_MS,
    ).unref();
  }, options.timeoutMs);

  // The time and memory stop when the process exits; the promise waits for its pipes to close too.
  let exitedAt: number | undefined;
  let memory: { peakRssBytes: number | undefined; processes: number } | undefined;
  child.once("exit", () => {
    exitedAt = performance.now();
    memory = sampler?.stop();
  });
  return new Promise((resolve) => {
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      clearTimeout(timer);
      running = undefined;
      memory ??= sampler?.stop() ?? { peakRssBytes: undefined, processes: 0 };
      resolve({
        seconds: ((exitedAt ?? performance.now()) - started) / 1000,
        exitCode,
        signal,
        timedOut,
        ...memory,
        stdoutTail,
        stderrTail: spawnError ? `${stderrTail}${spawnError.message}` : stderrTail,
      });
    };
    child.once("error", (error) => finish(null, null, error));
    child.once("close", (code, signal) => finish(code, signal));
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
