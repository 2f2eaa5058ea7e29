import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ProxyHello, ProxyReply, ProxyRequest, ProxySnapshot } from "./proxyProcess.ts";

export interface SpawnedProxy {
  /** Give this to every tool instead of the emulator's endpoint. */
  endpoint: string;
  pid: number;
  /** Requests forwarded since the last reset, per service, operation and second. */
  counts(): Promise<ProxySnapshot>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

const MAIN = fileURLToPath(new URL("./proxyProcess.ts", import.meta.url));
const ANSWER_WITHIN_MS = 10_000;

/** Runs test/support/proxy.ts in a child process (bench/proxyProcess.ts) in front of `target`. */
export async function spawnProxy(options: { target: string; latencyMs: number }): Promise<SpawnedProxy> {
  const child = fork(MAIN, ["--target", options.target, "--latency-ms", String(options.latencyMs)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const endpoint = await withTimeout(
    new Promise<string>((resolve, reject) => {
      child.once("message", (message: ProxyHello) => resolve(message.endpoint));
      child.once("exit", (code, signal) =>
        reject(new Error(`The proxy process exited (${signal ?? `code ${code}`}) before it was ready.`)),
      );
    }),
    "the proxy to start",
  );

  let nextId = 0;
  const ask = (op: ProxyRequest["op"]) =>
    withTimeout(
      new Promise<ProxySnapshot>((resolve, reject) => {
        if (!child.connected) {
          reject(new Error("The proxy process is gone: it exited or was stopped."));
          return;
        }
        const id = ++nextId;
        const onMessage = (message: ProxyReply) => {
          if (message.id !== id) return;
          child.off("message", onMessage);
          resolve(message.counts);
        };
        child.on("message", onMessage);
        child.send({ id, op } satisfies ProxyRequest);
      }),
      `the proxy to answer "${op}"`,
    );

  return {
    endpoint,
    pid: child.pid as number,
    counts: () => ask("counts"),
    reset: async () => {
      await ask("reset");
    },
    stop: async () => {
      stopChild(child);
      await exited;
    },
  };
}

function stopChild(child: ChildProcess): void {
  if (child.connected) child.disconnect(); // the proxy exits when its channel closes
  setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
}

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ANSWER_WITHIN_MS} ms waiting for ${what}.`)),
      ANSWER_WITHIN_MS,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
