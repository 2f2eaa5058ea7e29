import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listingDeps } from "../../src/app.ts";
import { queueDepth } from "../../src/aws/queues.ts";
import { continueListing } from "../../src/core/listing.ts";
import { jobStatus } from "../../src/core/status.ts";
import { createStartHandler } from "../../src/handlers/start.ts";
import { seedBucket } from "../../src/images/seed.ts";
import type { LocalApp } from "../../src/local/localApp.ts";
import { freshBuckets, type Harness, listAll, startHarness } from "../support/harness.ts";

const CLI = fileURLToPath(new URL("../../bin/s3-image-mover.js", import.meta.url));
const run = promisify(execFile);

describe("dry run", () => {
  let harness: Harness;
  let app: LocalApp;
  beforeAll(async () => {
    harness = await startHarness();
    app = await harness.app();
  });
  afterAll(() => harness.stop());

  it("lists 10,000 objects and prints counts, bytes, time and cost, leaving buckets and move queues untouched", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "dry");
    const seeded = await seedBucket(app.clients.s3, { bucket: from, objects: 10_000, bytes: 1024 });
    const before = await listAll(app.clients.s3, from);

    const { stdout } = await run(process.execPath, [
      CLI,
      "move",
      "--from",
      from,
      "--to",
      to,
      "--dry-run",
      "--quiet",
      "--endpoint",
      harness.emulator.endpoint,
    ]);

    expect(stdout).toContain(`Would move 10000 objects (${(seeded.bytes / 1e6).toFixed(1)} MB)`);
    expect(stdout).toMatch(/Estimated time on Lambda as deployed: [\d.]+ (s|min|h)/);
    expect(stdout).toMatch(/Estimated AWS cost: \$0\.05\d\d = S3 COPY \$0\.0500 \+ LIST \$0\.0001/);
    expect(stdout).toContain("Nothing was copied, deleted or queued for moving");
    expect(await listAll(app.clients.s3, from)).toEqual(before);
    expect((await listAll(app.clients.s3, to)).size).toBe(0);
    for (const queue of [
      app.resources.moveQueueUrl,
      app.resources.moveDeadLetterQueueUrl,
      app.resources.listQueueUrl,
    ]) {
      expect(await queueDepth(app.clients.sqs, queue)).toEqual({ visible: 0, inFlight: 0 });
    }
  });

  it('"dryRun": true in start opens a dry-run job whose status carries the estimate', async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "drystart");
    await seedBucket(app.clients.s3, { bucket: from, objects: 30, bytes: 1024 });
    const started = await createStartHandler(app)({ from, to, dryRun: true });
    expect(started.next).toMatch(/nothing will be copied, deleted or queued for moving/);
    const listing = await continueListing(listingDeps(app), started.jobId, () => false);
    expect(listing).toMatchObject({ finished: true, keys: 30 });
    const status = await jobStatus(app, started.jobId);
    expect(status.job).toMatchObject({ state: "done", dryRun: true });
    expect(status.estimate).toMatchObject({ objects: 30, bytes: 30 * 1024 });
    expect(status.estimate?.costs.s3Copy).toBeCloseTo((30 / 1000) * 0.005, 8);
    expect((await listAll(app.clients.s3, from)).size).toBe(30);
  });
});
