import module from "node:module";
import { dirname } from "node:path";
import { setFlagsFromString } from "node:v8";
import { Worker } from "node:worker_threads";
import { MoverError } from "../errors.ts";
import type { StackSettings } from "../stackSettings.ts";
import type { Job, MoveRequest } from "../types.ts";
import type { MoveProgress } from "./localMove.ts";
import type { LocalResources } from "./resources.ts";

/** What the worker needs to run a move: plain data, since it crosses a thread. */
export interface MoveWorkerInput {
  endpoint?: string | undefined;
  copyConcurrency: number;
  /** As given: the main thread validates it and checks its buckets before anything is created. */
  request: MoveRequest;
  progressEveryMs: number;
}

/** What the main thread tells the worker while it starts: where the queues and table are, then the job's id. */
export type MoveWorkerSetup =
  | { kind: "resources"; resources: LocalResources; stack: StackSettings }
  | { kind: "opened"; jobId: string };

export type MoveWorkerMessage =
  | { kind: "progress"; progress: MoveProgress }
  | { kind: "result"; result: MoveProgress }
  | { kind: "error"; message: string; stack?: string | undefined; name?: string; code?: string; ours: boolean };

/**
 * The V8 heap of the worker that runs a local move. The live set is about 30 MB at 256 copies in flight (heap
 * snapshots at 6 s and 16 s of a 30,000-object move: 30 and 29 MB), but with V8's defaults on a large machine the
 * young generation grows to 128 MB and old space fills with promoted garbage for longer the longer a move runs:
 * peak RSS 250 MB at 10,000 objects, 360 MB at 100,000. Fixed limits keep it flat; old space grows with concurrency.
 * Measured on the bench rig: 96–144 MB young with 96 MB old ran far slower (V8 collects old space whenever it has no
 * room left for a full promotion). 48 MB young ran as fast as 64 MB (medians of 10 alternating runs, 3.16 s against
 * 3.19 s) in 28 MB less at every size (2026-12-04; an earlier measurement, before the runtime's later changes, had
 * put its GC cost at 6%).
 */
export function moveHeapLimits(copyConcurrency: number): {
  maxYoungGenerationSizeMb: number;
  maxOldGenerationSizeMb: number;
} {
  return { maxYoungGenerationSizeMb: 48, maxOldGenerationSizeMb: 128 + Math.ceil(copyConcurrency / 4) };
}

/**
 * Sets how the next worker's heap starts: the young generation at its full size and old space at 64 MB, rather than
 * both growing from a few MB, so that loading the SDK and the first batches do not set off a run of mark-compacts
 * (--trace-gc of one 10,000-object move: 8 in the worker with V8's defaults, 1–2 with these). A Worker's `execArgv`
 * does not take V8 flags, so they are set for the process just before the worker is created. Node documents that
 * flags set after start may do nothing; these are read when an isolate's heap is configured, so they take for every
 * worker created from then on in this process (a `move` creates one), override the same flags in NODE_OPTIONS, and
 * leave this thread's heap, configured at its start, as it is. test/unit/moveWorkerHeap.test.ts checks that they
 * take. On the bench the copy phase took 3.0 s instead of 3.4 s, for 11 MB more peak RSS (bench/README.md,
 * "2026-12-07, later").
 */
export function prepareMoveWorkerHeap(copyConcurrency: number): void {
  const { maxYoungGenerationSizeMb } = moveHeapLimits(copyConcurrency);
  // The young generation is three semi-spaces' worth: the two semi-spaces and the new large-object space.
  setFlagsFromString(`--min-semi-space-size=${Math.floor(maxYoungGenerationSizeMb / 3)}`);
  setFlagsFromString("--initial-old-space-size=64");
}

/** The job a local move opened (or attached to). */
export interface OpenedMove {
  job: Job;
  attached: boolean;
  /** An attached job: the keys it had moved as this move began, from which this run's rate is measured. */
  movedBefore?: number;
  /** Other unfinished jobs move keys this one's overlap: what that means (start.ts, overlapWarning). */
  overlapWarning?: string;
}

/**
 * Runs a local move in a worker thread with a bounded heap, so the JavaScript heap stays the same however many
 * objects move (peak RSS: about 202 MB at 10,000 objects, 213 MB at 100,000; bench/README.md, "2026-12-07, later").
 *
 * The worker takes ~0.3 s to boot and load the SDK. Meanwhile this thread, otherwise idle, does the start's round
 * trips: it checks both buckets, ensures the queues and table, and opens the job. The worker begins polling as
 * soon as it knows the queues.
 *
 * Progress arrives through `onProgress`; errors raised on purpose, in either thread, come back as MoverError.
 */
export async function runMoveInWorker(
  input: MoveWorkerInput,
  onProgress: (progress: MoveProgress) => void,
  /** The job is open (new, or the unfinished one this move attached to) and its listing asked for. */
  onOpened?: (opened: OpenedMove) => void,
): Promise<MoveProgress> {
  prepareMoveWorkerHeap(input.copyConcurrency);
  // First of all: the worker's boot is the longest step. It waits for the queues before it touches anything.
  const worker = new Worker(new URL("./moveWorkerMain.ts", import.meta.url), {
    workerData: input,
    resourceLimits: moveHeapLimits(input.copyConcurrency),
    env: compileCacheEnv(),
  });
  const moved = resultOf(worker, input.copyConcurrency, onProgress);
  moved.catch(() => undefined); // awaited below, once the start is done
  try {
    const opened = await openMoveForWorker(input.endpoint, input.request, (setup: MoveWorkerSetup) =>
      worker.postMessage(setup),
    );
    onOpened?.(opened);
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  return moved;
}

/**
 * The start of a move, on this thread: request validated, buckets (and the report location) checked, queues and
 * table ensured, job opened (or attached to). Nothing is created before the checks pass: a refused move leaves no
 * table or queue behind. The job opens once the table exists and the checks passed, while the move queues are still
 * being created (they wait for their dead-letter queues): a round trip less.
 */
async function openMoveForWorker(
  endpoint: string | undefined,
  input: MoveRequest,
  post: (setup: MoveWorkerSetup) => void,
): Promise<OpenedMove> {
  // Loaded only now, and only what the start needs: the CLI's other commands never pay for the SDK on this thread.
  const [
    { validateMoveRequest },
    { createClients, destroyClients, resolveTarget },
    { startLocalSetup },
    { checkBuckets, openJobRecord, overlappingJobs, overlapWarning },
    { sendListToken },
    { JobStore },
    { LOCAL_RESOURCES },
  ] = await Promise.all([
    import("../core/validation.ts"),
    import("../aws/clients.ts"),
    import("./resources.ts"),
    import("../core/start.ts"),
    import("../core/listing.ts"),
    import("../jobs/jobStore.ts"),
    import("../config.ts"),
  ]);
  const request = validateMoveRequest(input, undefined, { allowFileReports: true });
  const clients = createClients(resolveTarget({ endpoint }));
  try {
    const buckets = checkBuckets(clients.s3, request);
    const setup = startLocalSetup(clients, buckets);
    const checked = Promise.all([setup.table, buckets]);
    const store = new JobStore(clients.dynamo, LOCAL_RESOURCES.table);
    const opened = checked.then(() => openJobRecord(store, request));
    opened.catch(() => undefined); // awaited below, after the queues
    const [resources, stack] = await Promise.all([setup.resources, setup.stack, checked]);
    post({ kind: "resources", resources, stack });
    const { job, attached } = await opened;
    const [, overlapping, before] = await Promise.all([
      sendListToken(clients.sqs, resources.listQueueUrl, job).then(() => post({ kind: "opened", jobId: job.id })),
      overlappingJobs(store, job),
      attached ? store.sumTotals(job.id).catch(() => undefined) : undefined, // for the rate alone: never fatal
    ]);
    return {
      job,
      attached,
      ...(before ? { movedBefore: before.moved } : {}),
      ...(overlapping.length > 0 ? { overlapWarning: overlapWarning(overlapping) } : {}),
    };
  } finally {
    destroyClients(clients);
  }
}

/**
 * The worker's environment, with this thread's compile cache named in it. Enabled from the worker's first line that
 * way, the cache also holds our modules with their types stripped; module.enableCompileCache() in the worker comes
 * too late for that, and it strips every .ts file again (~45-70 ms of CPU at start-up, in a CPU profile).
 */
function compileCacheEnv(): NodeJS.ProcessEnv {
  const dir = module.getCompileCacheDir?.(); // <cache>/<node version>: the worker adds the version itself
  return dir ? { ...process.env, NODE_COMPILE_CACHE: dirname(dir) } : process.env;
}

function resultOf(
  worker: Worker,
  copyConcurrency: number,
  onProgress: (progress: MoveProgress) => void,
): Promise<MoveProgress> {
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
        if (!message.ours && message.name) error.name = message.name;
        if (message.code) Object.assign(error, { code: message.code });
        reject(error);
      }
    });
    worker.on("error", (error) => {
      settled = true;
      // ERR_WORKER_OUT_OF_MEMORY lands here: say what to change rather than only that it died.
      reject(
        (error as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY"
          ? new MoverError(
              `The move ran out of its ${moveHeapLimits(copyConcurrency).maxOldGenerationSizeMb} MB heap: run it again (it resumes) with a lower --concurrency`,
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
