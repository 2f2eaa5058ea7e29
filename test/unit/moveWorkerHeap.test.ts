import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { moveHeapLimits, prepareMoveWorkerHeap } from "../../src/local/moveWorker.ts";

/** The size of a new worker's young generation (one semi-space) as V8 reports it, with the move worker's limits. */
function newSpaceOfNextWorker(copyConcurrency: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(
      `const { getHeapSpaceStatistics } = require("node:v8");
       const newSpace = getHeapSpaceStatistics().find((space) => space.space_name === "new_space");
       require("node:worker_threads").parentPort.postMessage(newSpace.space_size);`,
      { eval: true, resourceLimits: moveHeapLimits(copyConcurrency) },
    );
    worker.once("message", (size: number) => {
      resolve(size);
      void worker.terminate();
    });
    worker.once("error", reject);
  });
}

describe("the move worker's heap", () => {
  // The flags are the process's from then on: this file runs in its own process, and this is its only test.
  it("starts with its young generation at full size once prepared, where V8 would grow it from a few MB", async () => {
    const mb = 1024 * 1024;
    const full = (moveHeapLimits(256).maxYoungGenerationSizeMb / 3) * mb; // a semi-space: a third of the young one
    expect(await newSpaceOfNextWorker(256)).toBeLessThan(full);
    prepareMoveWorkerHeap(256);
    expect(await newSpaceOfNextWorker(256)).toBe(full);
  });
});
