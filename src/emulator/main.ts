// Runs the emulator as a child process of spawnEmulator (process.ts):
//   node src/emulator/main.ts [--port N] [--data-dir DIR]
// Prints one JSON line {"endpoint","port","address"} on stdout when ready, and stops when stdin closes (the parent
// exited or asked it to) or on SIGTERM/SIGINT.
import { parseArgs } from "node:util";
import { startEmulator } from "./emulator.ts";

const { values } = parseArgs({ options: { port: { type: "string" }, "data-dir": { type: "string" } } });
const emulator = await startEmulator({
  port: values.port === undefined ? undefined : Number(values.port),
  dataDir: values["data-dir"],
}).catch((err: unknown) => {
  // The parent shows this line in its own error; a stack trace would bury it.
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
process.stdout.write(
  `${JSON.stringify({ endpoint: emulator.endpoint, port: emulator.port, address: emulator.address })}\n`,
);

const shutdown = () => emulator.stop().then(() => process.exit(0));
process.stdin.on("end", shutdown).on("error", shutdown).resume();
process.on("SIGTERM", shutdown).on("SIGINT", shutdown);
