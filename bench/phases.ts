// Where each tool's wall time goes, from what the proxy saw and what the CPU accounting measured: the numbers that
// explain a tool's distance from the ceiling (issue #4 asks for them when a target is not met).
import { median } from "./stats.ts";

/** What one run contributes: its wall time, its CopyObject span at the proxy, and the rig's CPU seconds. */
export interface PhaseInput {
  seconds: number;
  /** First and last time a CopyObject reached the proxy, in ms after the tool was spawned; absent without copies. */
  copies?: { count: number; firstMs: number; lastMs: number } | undefined;
  cpu: { tool: number; proxy: number; emulator: number };
}

export interface Phases {
  /** Spawn to the first CopyObject: process start, set-up and, for a move, the first listing. */
  firstCopySeconds: number;
  /** CopyObject requests per second between the first and the last. */
  copiesPerSecond: number;
  /** The last CopyObject to the exit: the last deletes, the bookkeeping, the exit. */
  tailSeconds: number;
  /** Cores kept busy by the tool, the proxy and the emulator together, on average over the run. */
  rigCores: number;
}

/** The median of each phase over the runs with a copy rate (two copies or more); undefined when none has one. */
export function medianPhases(runs: readonly PhaseInput[]): Phases | undefined {
  const copied = runs.filter(
    (run): run is PhaseInput & { copies: NonNullable<PhaseInput["copies"]> } =>
      run.copies !== undefined && copyRate(run.copies) !== undefined,
  );
  if (copied.length === 0) return undefined;
  return {
    firstCopySeconds: median(copied.map((run) => run.copies.firstMs / 1000)),
    copiesPerSecond: median(copied.map((run) => copyRate(run.copies) ?? 0)),
    tailSeconds: median(copied.map((run) => Math.max(0, run.seconds - run.copies.lastMs / 1000))),
    rigCores: median(copied.map((run) => (run.cpu.tool + run.cpu.proxy + run.cpu.emulator) / run.seconds)),
  };
}

/**
 * A Markdown table of each tool's phases, with its copy rate relative to the ceiling's. `cpu`: whether CPU time was
 * measured (Linux's /proc); without it the cores column says n/a.
 */
export function formatPhaseTable(
  rows: ReadonlyArray<{ tool: string; phases: Phases | undefined }>,
  { cpu }: { cpu: boolean },
): string {
  const reference = rows.find((row) => row.tool === "ceiling")?.phases;
  const header = [
    "tool",
    "first CopyObject (s)",
    "copies/s while copying",
    "vs the ceiling's rate",
    "last copy to exit (s)",
    "cores busy (tool + proxy + emulator)",
  ];
  const lines = rows.flatMap(({ tool, phases }) =>
    phases
      ? [
          [
            tool,
            phases.firstCopySeconds.toFixed(2),
            Math.round(phases.copiesPerSecond).toLocaleString("en-US"),
            reference ? `${Math.round((100 * phases.copiesPerSecond) / reference.copiesPerSecond)}%` : "–",
            phases.tailSeconds.toFixed(2),
            cpu ? phases.rigCores.toFixed(2) : "n/a",
          ],
        ]
      : [],
  );
  if (lines.length === 0) return "";
  return [header, header.map(() => "---"), ...lines].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

/** CopyObject requests per second between the first and the last one; undefined for fewer than two, or no time. */
export function copyRate(copies: { count: number; firstMs: number; lastMs: number }): number | undefined {
  if (copies.count < 2 || copies.lastMs <= copies.firstMs) return undefined;
  return ((copies.count - 1) * 1000) / (copies.lastMs - copies.firstMs);
}
