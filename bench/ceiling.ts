// The rig's ceiling: what a bare client achieves through the proxy with one request per object and nothing else.
//   node bench/ceiling.ts --endpoint URL --from SRC --to DST --manifest FILE [--concurrency 256]
// FILE holds one "key<TAB>etag" line per object (bench/run.ts writes it). Each object gets one CopyObject from the
// lean SigV4 client (src/s3/leanObjectClient.ts), `--concurrency` in flight: no listing, no verification, no delete.
//   node bench/ceiling.ts --move --endpoint URL --from SRC --to DST [--concurrency 256]
// The bare move: the least any move does. It lists the source (1,000 keys a page, the next page fetched while the
// last one copies), copies each key conditional on its listed ETag, and deletes each page's copied keys with one
// DeleteObjects. No queue, no ledger, no verification: it cannot resume, and nothing counts what it did.
// Prints one JSON line { copies, deleted, failed, seconds }; exits 1 when any copy or delete failed.
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
    move: { type: "boolean", default: false },
    concurrency: { type: "string", default: "256" },
  },
});
const { endpoint, from, to, manifest, move } = values;
const concurrency = Number(values.concurrency);
if (!endpoint || !from || !to || (!manifest && !move) || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write(
    "usage: node bench/ceiling.ts --endpoint URL --from SRC --to DST (--manifest FILE | --move) [--concurrency N]\n",
  );
  process.exit(2);
}

interface Listed {
  key: string;
  etag: string;
  /** Which listed page it came from (the bare move deletes by page). */
  page: number;
}

const client = new LeanObjectClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  maxSockets: concurrency,
});

const started = performance.now();
let copies = 0;
let deleted = 0;
let failed = 0;
let firstError: string | undefined;
const fail = (what: string, error: unknown) => {
  failed += 1;
  firstError ??= `${what}: ${describeError(error)}`;
};

/** `concurrency` loops copying objects[next++]; when they run out, `more()` adds some or says there are no more. */
async function copyAll(objects: Listed[], more: () => Promise<boolean>, done: (object: Listed) => void) {
  let next = 0;
  const worker = async () => {
    for (;;) {
      while (next >= objects.length) if (!(await more())) return;
      const object = objects[next++] as Listed;
      try {
        await client.copyObject({
          fromBucket: from as string,
          toBucket: to as string,
          key: object.key,
          ifMatch: object.etag,
        });
        copies += 1;
        done(object);
      } catch (error) {
        fail(object.key, error);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

if (move) {
  const objects: Listed[] = [];
  const uncopied: number[] = []; // per page: keys whose copy has not succeeded yet
  const copied: Listed[][] = []; // per page: keys to delete once the page is copied
  const deletes: Array<Promise<void>> = [];
  let startAfter = "";
  let truncated = true;
  let listing: Promise<void> | undefined;
  // One page at a time: the waiting copy loops share the call, and the next is asked for as soon as one arrives.
  const listNext = async () => {
    const page = await client.listPage(from, { prefix: "", startAfter, maxKeys: 1000 });
    const index = copied.length;
    for (const object of page.objects) objects.push({ key: object.k, etag: object.e, page: index });
    uncopied.push(page.objects.length);
    copied.push([]);
    startAfter = page.objects.at(-1)?.k ?? startAfter;
    truncated = page.truncated && page.objects.length > 0;
  };
  const more = async () => {
    if (!truncated) return false;
    listing ??= listNext().finally(() => {
      listing = undefined;
    });
    await listing;
    return true;
  };
  await copyAll(objects, more, (object) => {
    const keys = copied[object.page] as Listed[];
    keys.push(object);
    uncopied[object.page] = (uncopied[object.page] as number) - 1;
    // A page with a failed copy keeps all its sources; the run fails anyway.
    if (uncopied[object.page] !== 0) return;
    deletes.push(
      client.deleteObjects(from, keys).then(
        (result) => {
          deleted += result.deleted.length;
          for (const error of result.errors) fail(error.key, new Error(`${error.code}: ${error.message}`));
        },
        (error) => fail(`DeleteObjects of page ${object.page}`, error),
      ),
    );
  });
  await Promise.all(deletes);
} else {
  const objects = readFileSync(manifest as string, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line): Listed => {
      const [key = "", etag = ""] = line.split("\t");
      return { key, etag, page: 0 };
    });
  await copyAll(
    objects,
    async () => false,
    () => undefined,
  );
}
const seconds = (performance.now() - started) / 1000;
client.destroy();

process.stdout.write(`${JSON.stringify({ copies, deleted, failed, seconds, firstError })}\n`);
process.exitCode = failed > 0 ? 1 : 0;
