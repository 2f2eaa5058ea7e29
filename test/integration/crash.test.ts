import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { type AwsClients, createClients, destroyClients, resolveTarget } from "../../src/aws/clients.ts";
import { LOCAL_RESOURCES } from "../../src/config.ts";
import { type SpawnedEmulator, spawnEmulator } from "../../src/emulator/process.ts";
import { makeJpeg } from "../../src/images/jpeg.ts";
import { ensureBucket, seedBucket, seedKey } from "../../src/images/seed.ts";
import { JobStore } from "../../src/jobs/jobStore.ts";
import type { Job } from "../../src/types.ts";
import { listAll } from "../support/harness.ts";
import { type LoopbackProxy, startProxy } from "../support/proxy.ts";

const CLI = fileURLToPath(new URL("../../bin/s3-image-mover.js", import.meta.url));
const OBJECTS = 2000;
const md5 = (bytes: Uint8Array) => `"${createHash("md5").update(bytes).digest("hex")}"`;

/** mulberry32: the kill moments are random but repeatable. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("crash recovery", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it("finishes a 2,000-object move exactly once after 12 SIGKILLs of the runtime, mid-listing and with the emulator", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "crash-test-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    let emulator: SpawnedEmulator = await spawnEmulator({ port: 0, dataDir });
    const port = emulator.port;
    cleanups.push(() => emulator.stop());
    // The runtime talks through a 10 ms proxy so that listing 20 pages takes long enough to be interrupted.
    const proxy: LoopbackProxy = await startProxy({ target: emulator.endpoint, latencyMs: 10 });
    cleanups.push(() => proxy.stop());
    const direct: AwsClients = createClients(resolveTarget({ endpoint: emulator.endpoint }));
    cleanups.push(async () => destroyClients(direct));
    const store = new JobStore(direct.dynamo, LOCAL_RESOURCES.table);

    const from = "crash-source";
    const to = "crash-destination";
    await seedBucket(direct.s3, { bucket: from, objects: OBJECTS, bytes: 1024 });
    await ensureBucket(direct.s3, to);

    const random = prng(20261125);
    const kills: Array<{ moment: string; listingDone: boolean | undefined; moved: number; copies: number }> = [];
    const copiesSoFar = () => proxy.counts().byOperation.CopyObject ?? 0;
    let exitCode: number | null = null;
    for (let run = 0; exitCode !== 0; run++) {
      expect(run).toBeLessThan(40);
      const copiesBefore = copiesSoFar();
      const child = runMove(proxy.endpoint, from, to);
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      if (kills.length >= 12) {
        exitCode = await exited;
        continue;
      }
      // The first kill lands mid-listing (after page 3 is recorded). Every other one after it lands mid-copy, once
      // this run has made 50 copies, however fast the machine starts a run; the rest at random moments.
      const trigger =
        kills.length === 0
          ? waitFor(async () => {
              const job = await latestJob(store);
              return job !== undefined && job.seq >= 3 && !job.listingDone;
            })
          : kills.length % 2 === 1
            ? waitFor(async () => copiesSoFar() - copiesBefore >= 50)
            : sleep(600 + random() * 1400);
      const outcome = await Promise.race([trigger.then(() => "kill" as const), exited.then(() => "exited" as const)]);
      if (outcome === "exited") {
        exitCode = await exited;
        continue;
      }
      child.kill("SIGKILL");
      await exited;
      const wholeMachine = kills.length % 4 === 3; // every 4th kill takes the emulator down with it
      if (wholeMachine) {
        emulator.kill("SIGKILL");
        await emulator.stop();
        emulator = await spawnEmulator({ port, dataDir });
      }
      const job = await latestJob(store);
      const counts = job ? await store.sumTotals(job.id) : undefined;
      kills.push({
        moment: wholeMachine ? "runtime + emulator" : "runtime",
        listingDone: job?.listingDone,
        moved: counts?.moved ?? 0,
        copies: copiesSoFar() - copiesBefore,
      });
    }

    expect(kills).toHaveLength(12);
    expect(kills[0]?.listingDone).toBe(false);
    expect(kills.filter((k) => k.moment === "runtime + emulator")).toHaveLength(3);
    // Kills landed mid-copy (six of them by design), not all before their run's first copy.
    expect(kills.filter((k) => k.copies >= 50).length).toBeGreaterThanOrEqual(6);
    const job = (await latestJob(store)) as Job;
    expect(job.state).toBe("done");
    expect(await store.sumTotals(job.id)).toMatchObject({ listed: OBJECTS, moved: OBJECTS, skipped: 0, failed: 0 });
    const destination = await listAll(direct.s3, to);
    expect(destination.size).toBe(OBJECTS);
    for (let i = 0; i < OBJECTS; i++) expect(destination.get(seedKey(i))?.etag).toBe(md5(makeJpeg(i, 1024)));
    expect((await listAll(direct.s3, from)).size).toBe(0);
    console.log("kills:", JSON.stringify(kills));
  }, 600_000);
});

function runMove(endpoint: string, from: string, to: string): ChildProcess {
  return spawn(process.execPath, [CLI, "move", "--from", from, "--to", to, "--endpoint", endpoint, "--quiet"], {
    env: { ...process.env, LIST_PAGE_KEYS: "100" },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

async function latestJob(store: JobStore): Promise<Job | undefined> {
  return (await store.listJobs(1).catch(() => []))[0];
}

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (await check().catch(() => false)) return;
    await sleep(15);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
