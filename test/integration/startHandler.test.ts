// The start function's answer, as `serverless invoke -f start` prints it. Its own emulator: the jobs it opens stay
// unfinished, with their list tokens queued, which other files' moves would otherwise pick up.
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStartHandler } from "../../src/handlers/start.ts";
import type { LocalApp } from "../../src/local/localApp.ts";
import { freshBuckets, type Harness, startHarness } from "../support/harness.ts";

describe("the start function's answer", () => {
  let harness: Harness;
  let app: LocalApp;
  beforeAll(async () => {
    harness = await startHarness();
    app = await harness.app();
  });
  afterAll(async () => {
    await harness.stop();
  });

  it("names the unfinished jobs whose keys overlap the new one's, with a warning; none for a job apart", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "start-overlap");
    const archive = `${to}-b`.slice(0, 63);
    await app.clients.s3.send(new CreateBucketCommand({ Bucket: archive }));
    const start = createStartHandler(app);

    const first = await start({ from, to, prefix: "2024/" });
    expect(first).not.toHaveProperty("warning");
    const nested = await start({ from, to: archive, prefix: "2024/05/" });
    expect(nested).toMatchObject({
      attached: false,
      overlapping: [{ id: first.jobId, state: "listing", from, to, prefix: "2024/" }],
      warning: expect.stringMatching(
        new RegExp(`^Another unfinished job works on keys that overlap this job's: ${first.jobId} \\(listing: `),
      ),
    });
    const apart = await start({ from, to, prefix: "2025/" });
    expect(apart).not.toHaveProperty("overlapping");
    expect(apart).not.toHaveProperty("warning");
  });
});
