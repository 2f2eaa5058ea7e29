// The emulator's CPU per request, by kind: what one CopyObject costs it against one of ours' bookkeeping calls.
//   node bench/emulatorCpu.ts [--reps 200] [--rounds 2]
// Every call goes one at a time (no latency proxy) to a spawned emulator, whose CPU is read from /proc before and
// after each kind. The kernel counts CPU in ticks (10 ms on Linux): the reps are what make the per-request figure usable.

import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from "@aws-sdk/client-sqs";
import { GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { createClients, destroyClients, resolveTarget } from "../src/aws/clients.ts";
import { LOCAL_RESOURCES } from "../src/config.ts";
import { buildMoveMessage } from "../src/core/messages.ts";
import { spawnEmulator } from "../src/emulator/process.ts";
import { ensureBucket, seedBucket } from "../src/images/seed.ts";
import { startLocalSetup } from "../src/local/resources.ts";
import { LeanObjectClient } from "../src/s3/leanObjectClient.ts";
import { expectedObjects } from "./buckets.ts";
import { CPU_ACCOUNTING, processCpuSeconds } from "./cpuUsage.ts";
import { median } from "./stats.ts";

const { values } = parseArgs({ options: { reps: { type: "string" }, rounds: { type: "string" } } });
const REPS = Number(values.reps ?? 200);
const ROUNDS = Number(values.rounds ?? 2);
const WARM_UP = 5; // calls per kind and round before the counted ones

if (!CPU_ACCOUNTING) {
  console.error(
    "bench/emulatorCpu.ts reads the emulator's CPU from /proc, which this system does not have (Linux only).",
  );
  process.exit(1);
}
const emulator = await spawnEmulator({ port: 0 });
const emulatorCpuMs = (): number => processCpuSeconds(emulator.pid) * 1000;
const clients = createClients(resolveTarget({ endpoint: emulator.endpoint }));
const lean = new LeanObjectClient({
  endpoint: emulator.endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  maxSockets: 8,
});

// A batch the size ours sends: 1,000 keys, as a move message body (the page record and the ledger are alike in size).
const objects = Array.from({ length: 1000 }, (_, i) => ({
  i,
  object: {
    k: `images/${String(i).padStart(8, "0")}.jpg`,
    e: `"${createHash("md5").update(String(i)).digest("hex")}"`,
    s: 20480,
  },
}));
const job = { id: "job", from: "bench-src", to: "bench-dst", overwrite: true };
const batchBody = JSON.stringify(buildMoveMessage(job, 0, 0, objects));
const smallBody = JSON.stringify(buildMoveMessage(job, 0, 0, objects.slice(0, 10)));

// The job table itself, as a local move creates it (only its items below are the bench's own).
const setup = startLocalSetup(clients);
await Promise.all([setup.table, setup.resources, setup.stack]);
const table = LOCAL_RESOURCES.table;
const { QueueUrl: queueUrl } = await clients.sqs.send(new CreateQueueCommand({ QueueName: "bench-emulator-cpu" }));
// Every copy needs a source of its own: the bench's own 20 KB JPEGs, seeded and known as the bench seeds them.
const sources = expectedObjects(ROUNDS * (WARM_UP + REPS), 20480);
await seedBucket(clients.s3, { bucket: "bench-src", objects: sources.length, bytes: 20480 });
await ensureBucket(clients.s3, "bench-dst");

let copied = 0;
const nextSource = (): { key: string; etag: string } => sources[copied++] ?? { key: "", etag: "" };
const kinds: Array<{ name: string; requests: number; call: (rep: number) => Promise<unknown> }> = [
  {
    name: "CopyObject, 20 KB",
    requests: 1,
    call: () => {
      const { key, etag } = nextSource();
      return lean.copyObject({ fromBucket: "bench-src", toBucket: "bench-dst", key, ifMatch: etag });
    },
  },
  {
    name: "DynamoDB GetItem",
    requests: 1,
    call: (rep) =>
      clients.dynamo.send(new GetCommand({ TableName: table, Key: { pk: "bench#small", sk: `s${rep % 20}` } })),
  },
  {
    name: "DynamoDB UpdateItem (ADD)",
    requests: 1,
    call: (rep) =>
      clients.dynamo.send(
        new UpdateCommand({
          TableName: table,
          Key: { pk: "bench#totals", sk: `t${rep % 20}` },
          UpdateExpression: "ADD moved :one",
          ExpressionAttributeValues: { ":one": 1 },
        }),
      ),
  },
  {
    name: `DynamoDB PutItem, ${smallBody.length} B string`,
    requests: 1,
    call: (rep) =>
      clients.dynamo.send(
        new PutCommand({ TableName: table, Item: { pk: "bench#small", sk: `s${rep}`, v: smallBody } }),
      ),
  },
  {
    name: `DynamoDB PutItem, ${batchBody.length} B string (1,000 keys)`,
    requests: 1,
    call: (rep) =>
      clients.dynamo.send(
        new PutCommand({ TableName: table, Item: { pk: "bench#batch", sk: `b${rep}`, v: batchBody } }),
      ),
  },
  ...[
    ["10 keys", smallBody],
    ["1,000 keys", batchBody],
  ].map(([label, messageBody]) => ({
    name: `SQS send + receive + delete, ${label}`,
    requests: 3,
    call: async () => {
      await clients.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: [{ Id: "m", MessageBody: messageBody }] }),
      );
      const got = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
      const entries = (got.Messages ?? []).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? "" }));
      if (entries.length > 0)
        await clients.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
    },
  })),
];

const perRequest = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const kind of kinds) {
    for (let rep = 0; rep < WARM_UP; rep++) await kind.call(REPS + rep); // warm the emulator's code for this kind
    const before = emulatorCpuMs();
    for (let rep = 0; rep < REPS; rep++) await kind.call(rep);
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the last response's work be counted
    const ms = (emulatorCpuMs() - before) / (REPS * kind.requests);
    perRequest.set(kind.name, [...(perRequest.get(kind.name) ?? []), ms]);
  }
}

const copy = median(perRequest.get(kinds[0]?.name ?? "") ?? [0]);
console.log(`Emulator CPU per request, one request at a time, ${REPS} reps × ${ROUNDS} rounds (median of rounds):\n`);
console.log("| request | emulator CPU ms | in CopyObjects |");
console.log("| --- | --- | --- |");
for (const [name, values] of perRequest) {
  const ms = median(values);
  console.log(`| ${name} | ${ms.toFixed(2)} | ${(ms / copy).toFixed(1)} |`);
}

lean.destroy();
destroyClients(clients);
await emulator.stop();
