#!/usr/bin/env node
// Runs the TypeScript sources directly: Node 24 strips types natively (no build step).
import module from "node:module";

// Compiled code is cached on disk (Node 22+): the SDK's modules load about twice as fast from the second run on.
module.enableCompileCache?.();
const { main } = await import("../src/cli/main.ts");

// A reader that has gone (`report --job X | head -1`) is no error of the command's: what it still writes has
// nowhere to go, but the command runs to its end, with its own cleanup and exit code.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error) => {
    if (error.code !== "EPIPE" && error.code !== "ERR_STREAM_DESTROYED") throw error;
    stream.write = (_chunk, encoding, done) => {
      (typeof encoding === "function" ? encoding : done)?.();
      return true;
    };
  });
}

await main();
// What is written to a pipe is sent asynchronously: exit only once it is all out (a slow reader of `report` lost
// its tail), or once the reader has gone.
const flushed = (stream) =>
  new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.once("error", resolve).once("close", resolve);
    stream.write("", resolve);
  });
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
// Exit once the command is done rather than when the last idle long poll (up to 1 s) returns:
// anything such a poll receives now comes back after 1 s (RECEIVE_VISIBILITY_SECONDS in src/local/runtime.ts).
process.exit();
