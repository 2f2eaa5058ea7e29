// The rig's ceiling: what a bare client achieves through the proxy with one request per object and nothing else.
//   node bench/ceiling.ts --endpoint URL --from SRC --to DST --manifest FILE [--concurrency 256]
// FILE holds one "key<TAB>etag" line per object (bench/run.ts writes it). Each object gets one CopyObject from the
// lean SigV4 client (src/s3/leanObjectClient.ts), `--concurrency` in flight: no listing, no verification, no delete.
// Prints one JSON line { copies, failed, seconds }; exits 1 when any copy failed.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { describeError } from "../src/errors.ts";
import { LeanObjectClient } from "../src/s3/leanObjectClient.ts";

const { values } = parseArgs({
  options: {
    endpoint: { type: "string" },
    from: { type: "string" },
    to: { type: "string" },
    manifest: { type: "string" },
    concurrency: { type: "string", default: "256" },
  },
});
const { endpoint, from, to, manifest } = values;
const concurrency = Number(values.concurrency);
if (!endpoint || !from || !to || !manifest || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write(
    "usage: node bench/ceiling.ts --endpoint URL --from SRC --to DST --manifest FILE [--concurrency N]\n",
  );
  process.exit(2);
}

const objects = readFileSync(manifest, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((line) => {
    const [key = "", etag = ""] = line.split("\t");
    return { key, etag };
  });
const client = new LeanObjectClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  maxSockets: concurrency,
});

const started = performance.now();
let next = 0;
let failed = 0;
let firstError: string | undefined;
const worker = async () => {
  for (let i = next++; i < objects.length; i = next++) {
    const object = objects[i] as { key: string; etag: string };
    try {
      await client.copyObject({ fromBucket: from, toBucket: to, key: object.key, ifMatch: object.etag });
    } catch (error) {
      failed += 1;
      firstError ??= `${object.key}: ${describeError(error)}`;
    }
  }
};
await Promise.all(Array.from({ length: Math.min(concurrency, objects.length) }, worker));
const seconds = (performance.now() - started) / 1000;
client.destroy();

process.stdout.write(`${JSON.stringify({ copies: objects.length - failed, failed, seconds, firstError })}\n`);
process.exitCode = failed > 0 ? 1 : 0;
