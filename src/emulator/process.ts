import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type Emulator, EmulatorError, type EmulatorOptions } from "./emulator.ts";

export interface SpawnedEmulator extends Emulator {
  pid: number;
  /** Signals the child directly (SIGKILL simulates a crash); `stop()` afterwards waits until it is gone. */
  kill(signal?: NodeJS.Signals): void;
}

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

/**
 * Runs the emulator in a child process, so a test can kill it mid-run and start it again on the same dataDir.
 * The child exits when its stdin closes, which also happens when this process dies in any way: no orphans.
 */
export async function spawnEmulator(options: EmulatorOptions = {}): Promise<SpawnedEmulator> {
  const args = [MAIN];
  if (options.port !== undefined) args.push("--port", String(options.port));
  if (options.dataDir !== undefined) args.push("--data-dir", options.dataDir);
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
  // Closing stdin is how stop() asks the child to stop; it may already be gone.
  child.stdin.on("error", () => {});
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  // Keep the child's stderr for the error message until it is ready, then pass it through.
  let started = false;
  let startupErrors = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    if (started) process.stderr.write(chunk);
    else startupErrors += chunk;
  });

  const { endpoint, port, address } = await new Promise<Omit<Emulator, "stop">>((resolve, reject) => {
    child.once("error", (cause) =>
      reject(new EmulatorError(`Could not run ${process.execPath} for the emulator: ${cause.message}`, { cause })),
    );
    child.once("exit", (code, signal) =>
      reject(
        new EmulatorError(
          `The emulator process exited (${signal ?? `code ${code}`}) before it was ready: ${startupErrors.trim()}`,
        ),
      ),
    );
    createInterface({ input: child.stdout }).once("line", (line) => {
      try {
        resolve(JSON.parse(line));
      } catch (cause) {
        reject(new EmulatorError(`The emulator process printed "${line}" instead of its address.`, { cause }));
      }
    });
  });
  started = true;

  return {
    endpoint,
    port,
    address,
    pid: child.pid as number, // set once the child has spoken
    kill: (signal = "SIGTERM") => child.kill(signal),
    async stop() {
      child.stdin.end();
      await exited;
    },
  };
}
