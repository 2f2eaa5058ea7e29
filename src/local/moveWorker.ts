import { Worker } from "node:worker_threads";
import { MoverError } from "../errors.ts";
import type { MoveRequest } from "../types.ts";
import type { MoveProgress } from "./localMove.ts";

/** What the worker needs to run a move: plain data, since it crosses a thread. */
export interface MoveWorkerInput {
  endpoint?: string | undefined;
  copyConcurrency: number;
  request: MoveRequest;
  progressEveryMs: number;
}

export type MoveWorkerMessage =
  | { kind: "progress"; progress: MoveProgress }
  | { kind: "result"; result: MoveProgress }
  | { kind: "error"; message: string; stack?: string | undefined; ours: boolean };

/**
 * The V8 heap of the worker that runs a local move. The live set is about 30 MB at 256 copies in flight (heap
 * snapshots at 6 s and 16 s of a 30,000-object move: 30 and 29 MB), but with V8's defaults on a large machine the
 * young generation grows to 128 MB and old space fills with promoted garbage for longer the longer a move runs:
 * peak RSS 250 MB at 10,000 objects, 360 MB at 100,000. Fixed limits keep it flat; old space grows with concurrency.
 * Measured on the bench rig: a 48 MB young generation cost ~6% in GC, 96–144 MB young with 96 MB old far more (V8
 * collects old space whenever it has no room left for a full promotion); 64 + 192 MB ran as fast as no limits.
 */
export function moveHeapLimits(copyConcurrency: number): {
  maxYoungGenerationSizeMb: number;
  maxOldGenerationSizeMb: number;
} {
  return { maxYoungGenerationSizeMb: 64, maxOldGenerationSizeMb: 128 + Math.ceil(copyConcurrency / 4) };
}

/**
 * Runs a local move (createLocalApp + runLocalMove) in a worker thread with a bounded heap, so the JavaScript heap
 * stays the same however many objects move (peak RSS still grows outside it: about 204 MB at 10,000 objects,
 * 240-247 MB at 100,000). Progress arrives through `onProgress`; errors the worker raises
 * on purpose come back as MoverError, with their message.
 */
export function runMoveInWorker(
  input: MoveWorkerInput,
  onProgress: (progress: MoveProgress) => void,
): Promise<MoveProgress> {
  const worker = new Worker(new URL("./moveWorkerMain.ts", import.meta.url), {
    workerData: input,
    resourceLimits: moveHeapLimits(input.copyConcurrency),
  });
  return new Promise<MoveProgress>((resolve, reject) => {
    let settled = false;
    worker.on("message", (message: MoveWorkerMessage) => {
      if (message.kind === "progress") onProgress(message.progress);
      else if (message.kind === "result") {
        settled = true;
        resolve(message.result);
      } else {
        settled = true;
        const error = message.ours ? new MoverError(message.message) : new Error(message.message);
        if (message.stack) error.stack = message.stack;
        reject(error);
      }
    });
    worker.on("error", (error) => {
      settled = true;
      // ERR_WORKER_OUT_OF_MEMORY lands here: say what to change rather than only that it died.
      reject(
        (error as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY"
          ? new MoverError(
              `The move ran out of its ${moveHeapLimits(input.copyConcurrency).maxOldGenerationSizeMb} MB heap: run it again (it resumes) with a lower --concurrency`,
              { cause: error },
            )
          : error,
      );
    });
    worker.on("exit", (code) => {
      if (!settled)
        reject(
          new MoverError(
            `The move's worker thread exited with code ${code} before it finished; run the move again to resume it`,
          ),
        );
    });
  });
}
