// What waiting with a deadline costs the lean client per CopyObject, client CPU only (2026-12-07, night (5)):
//   node bench/results/2026-12-07-giveup/giveUpCost.ts            arms "none" and "race"
//   git apply bench/results/2026-12-07-giveup/signal-per-request.patch, then the same command: also "signal"
// A child process answers every request at once with a CopyObjectResult, so only the client's CPU is measured.
// "signal": one AbortSignal for all copies, handed to each request (undici listens on it while the request runs).
// "race": one promise for all copies, each copy's answer raced against it (what src/core/moving.ts did at 9b26118; 046c9ea waits once per batch instead).
import { fork } from "node:child_process";
import { setMaxListeners } from "node:events";
import { fileURLToPath } from "node:url";
import { LeanObjectClient } from "../../../src/s3/leanObjectClient.ts";
import type { CopyInput } from "../../../src/s3/objectClient.ts";

if (process.argv[2] === "answer") {
  const { createServer } = await import("node:http");
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult><ETag>"0123456789abcdef0123456789abcdef"</ETag></CopyObjectResult>';
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/xml" }).end(body));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => process.send?.((server.address() as { port: number }).port));
} else {
  const child = fork(fileURLToPath(import.meta.url), ["answer"]);
  const port = await new Promise<number>((resolve) => child.once("message", (p) => resolve(p as number)));
  const client = new LeanObjectClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxSockets: 256,
  });
  const arms = ["none", "race", ...(process.argv.includes("--signal") ? ["signal"] : [])] as const;
  type Arm = (typeof arms)[number];
  const run = async (copies: number, arm: Arm): Promise<number> => {
    const signal = arm === "signal" ? AbortSignal.timeout(600_000) : undefined;
    if (signal) setMaxListeners(0, signal);
    const giveUp = arm === "race" ? Promise.withResolvers<symbol>() : undefined;
    const timer = setTimeout(() => giveUp?.resolve(Symbol()), 600_000);
    let next = 0;
    const cpu = process.cpuUsage();
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        for (let i = next++; i < copies; i = next++) {
          const input: CopyInput & { signal?: AbortSignal } = {
            fromBucket: "a",
            toBucket: "b",
            key: `photos/img-${i}.jpg`,
            ifMatch: '"x"',
            ...(signal ? { signal } : {}),
          };
          const copy = client.copyObject(input);
          await (giveUp ? Promise.race([copy, giveUp.promise]) : copy);
        }
      }),
    );
    clearTimeout(timer);
    const used = process.cpuUsage(cpu);
    return (used.user + used.system) / copies;
  };
  for (const arm of arms) await run(5_000, arm); // warm up
  const results = new Map<Arm, number[]>(arms.map((arm) => [arm, []]));
  for (let round = 0; round < 8; round++) {
    const order = round % 2 ? [...arms].reverse() : arms;
    for (const arm of order) results.get(arm)?.push(await run(20_000, arm));
  }
  for (const [arm, values] of results) {
    const median = [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0;
    console.log(
      `${arm.padEnd(7)} µs CPU per copy: ${values.map((v) => v.toFixed(1)).join(" ")}  median ${median.toFixed(1)}`,
    );
  }
  client.destroy();
  child.kill();
}
