// The worker thread of runMoveInWorker (moveWorker.ts): builds the local app, runs the move, posts what happens.
import module from "node:module";
import { parentPort, workerData } from "node:worker_threads";
import type { MoveWorkerInput, MoveWorkerMessage } from "./moveWorker.ts";

// Before the first import of our code and the SDK (static imports would load first): a worker is a new Node.js
// instance, and without the on-disk cache every module is compiled again.
module.enableCompileCache?.();
const [
  { destroyClients },
  { checkBuckets },
  { validateMoveRequest },
  { MoverError },
  { createLocalApp },
  { runLocalMove },
] = await Promise.all([
  import("../aws/clients.ts"),
  import("../core/start.ts"),
  import("../core/validation.ts"),
  import("../errors.ts"),
  import("./localApp.ts"),
  import("./localMove.ts"),
]);

const input = workerData as MoveWorkerInput;
const post = (message: MoveWorkerMessage) => parentPort?.postMessage(message);

try {
  validateMoveRequest(input.request, undefined, { allowFileReports: true }); // before any queue or table is created
  const app = await createLocalApp({
    endpoint: input.endpoint,
    copyConcurrency: input.copyConcurrency,
    alongside: (clients) => checkBuckets(clients.s3, input.request),
  });
  try {
    const result = await runLocalMove(app, app.stack, input.request, {
      checked: true,
      onProgress: (progress) => post({ kind: "progress", progress }),
      progressEveryMs: input.progressEveryMs,
    });
    post({ kind: "result", result });
  } finally {
    destroyClients(app.clients);
  }
} catch (error) {
  const e = error instanceof Error ? error : new Error(String(error));
  post({ kind: "error", message: e.message, stack: e.stack, ours: error instanceof MoverError });
}
// Idle long polls may still be open: end the thread now rather than when they return (as the CLI's exit does).
process.exit();
