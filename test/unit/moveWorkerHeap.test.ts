import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { moveHeapLimits } from "../../src/local/moveWorker.ts";

const moveWorkerModule = new URL("../../src/local/moveWorker.ts", import.meta.url).href;

/**
 * In a process of its own (the flags prepareMoveWorkerHeap sets are the process's from then on, whatever pool the
 * tests run in), starts workers with the move worker's limits, four before it and four after. Each reports its
 * young generation's semi-space as V8 sizes it at the start, and how many mark-compacts it ran while it built and
 * kept about 60 MB of small objects, as a move's worker does while it loads and takes its first batches.
 */
const probe = `
import { Worker } from "node:worker_threads";
const { moveHeapLimits, prepareMoveWorkerHeap } = await import(${JSON.stringify(moveWorkerModule)});
const inWorker = \`
  const { getHeapSpaceStatistics } = require("node:v8");
  const { PerformanceObserver, constants } = require("node:perf_hooks");
  let markCompacts = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (entry.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) markCompacts++;
  }).observe({ entryTypes: ["gc"] });
  const semiSpace = getHeapSpaceStatistics().find((space) => space.space_name === "new_space").space_size;
  const kept = [];
  for (let i = 0; i < 600000; i++) kept.push({ i, text: "x".repeat(20) + i, pair: [i, i + 1] });
  // Observer entries arrive after the collection: give them a moment.
  setTimeout(() => require("node:worker_threads").parentPort.postMessage({ semiSpace, markCompacts, kept: kept.length }), 100);
\`;
const run = () => new Promise((resolve, reject) => {
  // execArgv: [] so the eval'd code is CommonJS, not this process's --input-type=module.
  const worker = new Worker(inWorker, { eval: true, execArgv: [], resourceLimits: moveHeapLimits(256) });
  worker.once("message", (report) => { resolve(report); void worker.terminate(); });
  worker.once("error", reject);
  worker.once("exit", (code) => reject(new Error("probe worker exited with " + code + " before it reported")));
});
// Four workers an arm, one after another: a single worker's count varies by one from run to run.
const arm = async () => {
  const reports = [];
  for (let i = 0; i < 4; i++) reports.push(await run());
  return reports;
};
const before = await arm();
prepareMoveWorkerHeap(256);
const after = await arm();
console.log(JSON.stringify({ before, after }));
`;

interface WorkerReport {
  semiSpace: number;
  markCompacts: number;
  kept: number;
}

describe("the move worker's heap", () => {
  it("starts at full size once prepared: the young generation whole, and fewer mark-compacts as it fills", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", probe]);
    const { before, after } = JSON.parse(stdout) as { before: WorkerReport[]; after: WorkerReport[] };
    const mb = 1024 * 1024;
    // A semi-space is a third of the young generation (two semi-spaces and the new large-object space).
    const fullSemiSpace = Math.floor(moveHeapLimits(256).maxYoungGenerationSizeMb / 3) * mb;
    for (const report of before) expect(report.semiSpace).toBeLessThan(fullSemiSpace);
    for (const report of after) expect(report).toMatchObject({ semiSpace: fullSemiSpace, kept: 600_000 });
    // One worker made 3–4 mark-compacts with V8's defaults and 2–3 prepared, in 20 runs of one of each here.
    const markCompacts = (reports: WorkerReport[]) => reports.reduce((sum, report) => sum + report.markCompacts, 0);
    expect(markCompacts(after)).toBeLessThan(markCompacts(before));
  });
});
