// Client CPU per CopyObject, SDK vs lean client, 256 copies in flight:
//   node bench/clientCpu.ts [--copies 10000] [--rounds 2]
// Runs once against an emulator in this process (its CPU counts too) and once against a spawned emulator (client only).

import { parseArgs } from "node:util";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import pLimit from "p-limit";
import { createClients, destroyClients, resolveTarget } from "../src/aws/clients.ts";
import { startEmulator } from "../src/emulator/emulator.ts";
import { spawnEmulator } from "../src/emulator/process.ts";
import { ensureBucket } from "../src/images/seed.ts";
import { LeanObjectClient, signRequest } from "../src/s3/leanObjectClient.ts";
import type { ObjectClient } from "../src/s3/objectClient.ts";
import { SdkObjectClient } from "../src/s3/sdkObjectClient.ts";

const { values } = parseArgs({ options: { copies: { type: "string" }, rounds: { type: "string" } } });
const COPIES = Number(values.copies ?? 10_000);
const ROUNDS = Number(values.rounds ?? 2);
const OBJECTS = 2_000;
const IN_FLIGHT = 256;

async function benchAgainst(endpoint: string, label: string): Promise<void> {
  const clients = createClients(resolveTarget({ endpoint, maxSockets: IN_FLIGHT }));
  await ensureBucket(clients.s3, "bench-src");
  await ensureBucket(clients.s3, "bench-dst");
  const limit = pLimit(64);
  const etags = await Promise.all(
    Array.from({ length: OBJECTS }, (_, i) =>
      limit(async () => {
        const out = await clients.s3.send(
          new PutObjectCommand({ Bucket: "bench-src", Key: key(i), Body: Buffer.alloc(1024, i % 251) }),
        );
        return out.ETag ?? "";
      }),
    ),
  );
  const lean = new LeanObjectClient({
    endpoint,
    region: clients.target.region ?? "us-east-1",
    credentials: clients.s3.config.credentials,
    maxSockets: IN_FLIGHT,
  });
  const candidates: Array<[string, ObjectClient]> = [
    ["SdkObjectClient", new SdkObjectClient(clients.s3)],
    ["LeanObjectClient", lean],
  ];
  for (const [, client] of candidates) await copyMany(client, etags, 1_000); // warm up JIT and sockets
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [name, client] of candidates) {
      const start = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      await copyMany(client, etags, COPIES);
      const used = process.cpuUsage(cpu);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const cpuMs = (used.user + used.system) / 1000 / COPIES;
      console.log(
        `${label.padEnd(20)} round ${round}  ${name.padEnd(17)} ${cpuMs.toFixed(3)} ms CPU/copy  ` +
          `${Math.round(COPIES / seconds)} copies/s`,
      );
    }
  }
  lean.destroy();
  destroyClients(clients);
}

/** `count` copies, cycling over the source keys, IN_FLIGHT at a time. */
async function copyMany(client: ObjectClient, etags: string[], count: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const index = i % OBJECTS;
      await client.copyObject({
        fromBucket: "bench-src",
        toBucket: "bench-dst",
        key: key(index),
        ifMatch: etags[index] ?? "",
      });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

function key(i: number): string {
  return `photos/2024/img-${String(i).padStart(6, "0")}.jpg`;
}

/** The signer alone: is signing a bottleneck? */
function benchSigning(): void {
  const n = 50_000;
  const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "token" };
  const cpu = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    signRequest(
      {
        method: "PUT",
        host: "bench-dst.s3.us-east-1.amazonaws.com",
        path: `/${key(i)}`,
        headers: { "x-amz-copy-source": `bench-src/${key(i)}`, "x-amz-copy-source-if-match": '"abc"' },
      },
      credentials,
      "us-east-1",
      new Date(),
    );
  }
  const used = process.cpuUsage(cpu);
  console.log(`signRequest alone: ${((used.user + used.system) / n).toFixed(1)} µs CPU per request`);
}

console.log(`${COPIES} copies per client and round, ${IN_FLIGHT} in flight, ${OBJECTS} objects of 1 KiB`);
benchSigning();
const inProcess = await startEmulator({ port: 0 });
await benchAgainst(inProcess.endpoint, "in-process emulator");
await inProcess.stop();
const spawned = await spawnEmulator({ port: 0 });
await benchAgainst(spawned.endpoint, "spawned emulator");
await spawned.stop();
