// The worker thread of runMoveInWorker (moveWorker.ts): builds the local app, runs the move, posts what happens.
import module from "node:module";
import { parentPort, workerData } from "node:worker_threads";
import type { MoveWorkerInput, MoveWorkerMessage, MoveWorkerSetup } from "./moveWorker.ts";

// The main thread starts the move meanwhile: it says where the queues are, then which job it opened.
const resources = Promise.withResolvers<Extract<MoveWorkerSetup, { kind: "resources" }>>();
const opened = Promise.withResolvers<string>();
parentPort?.on("message", (setup: MoveWorkerSetup) => {
  if (setup.kind === "resources") resources.resolve(setup);
  else opened.resolve(setup.jobId);
});

// A worker is a new Node.js instance: without the on-disk cache every module is compiled again. runMoveInWorker
// names the cache in NODE_COMPILE_CACHE, so this is a fallback, called before our code and the SDK load.
module.enableCompileCache?.();
const [{ destroyClients }, { MoverError }, { createLocalApp }, { runLocalMove }] = await Promise.all([
  import("../aws/clients.ts"),
  import("../errors.ts"),
  import("./localApp.ts"),
  import("./localMove.ts"),
]);

const input = workerData as MoveWorkerInput;
const post = (message: MoveWorkerMessage) => parentPort?.postMessage(message);

try {
  const app = await createLocalApp({
    endpoint: input.endpoint,
    copyConcurrency: input.copyConcurrency,
    prepared: await resources.promise,
  });
  try {
    const result = await runLocalMove(app, app.stack, input.request, {
      opened: opened.promise,
      onProgress: (progress) => post({ kind: "progress", progress }),
      progressEveryMs: input.progressEveryMs,
    });
    post({ kind: "result", result });
  } finally {
    destroyClients(app.clients);
  }
} catch (error) {
  const e = error instanceof Error ? error : new Error(String(error));
  // The name and code too: the CLI tells a network failure (ECONNREFUSED, a TimeoutError) by them.
  const { code } = e as NodeJS.ErrnoException;
  post({
    kind: "error",
    message: e.message,
    stack: e.stack,
    name: e.name,
    ...(code ? { code } : {}),
    ours: error instanceof MoverError,
  });
}
// Idle long polls may still be open: end the thread now rather than when they return (as the CLI's exit does).
process.exit();
