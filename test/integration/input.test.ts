import { execFile } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queueDepth } from "../../src/aws/queues.ts";
import { startMove } from "../../src/core/start.ts";
import { BucketError, ValidationError } from "../../src/errors.ts";
import { createStartHandler } from "../../src/handlers/start.ts";
import { seedBucket } from "../../src/images/seed.ts";
import type { LocalApp } from "../../src/local/localApp.ts";
import { freshBuckets, type Harness, listAll, startHarness } from "../support/harness.ts";

const CLI = fileURLToPath(new URL("../../bin/s3-image-mover.js", import.meta.url));
const run = promisify(execFile);

describe("bad input is refused clearly and changes nothing", () => {
  let harness: Harness;
  let app: LocalApp;
  let from: string;
  let to: string;
  beforeAll(async () => {
    harness = await startHarness();
    app = await harness.app();
    ({ from, to } = await freshBuckets(app.clients.s3, "input"));
    await seedBucket(app.clients.s3, { bucket: from, objects: 5, bytes: 256 });
  });
  afterAll(() => harness.stop());

  async function expectNothingChanged() {
    expect(await app.store.listJobs()).toEqual([]);
    expect(await queueDepth(app.clients.sqs, app.resources.listQueueUrl)).toEqual({ visible: 0, inFlight: 0 });
    expect((await listAll(app.clients.s3, from)).size).toBe(5);
    expect((await listAll(app.clients.s3, to)).size).toBe(0);
  }

  it.each([
    ["a missing field", { from: "only-from" }, ValidationError, /"to" is required/],
    ["from equal to to", { from: "same-bucket", to: "same-bucket" }, ValidationError, /same bucket/],
    ["malformed JSON", '{"from": "a", "to": ', ValidationError, /Malformed JSON/],
    ["an unknown option", { from: "aaa", to: "bbb", dryrun: true }, ValidationError, /Unknown field/],
  ])("start rejects %s", async (_name, input, type, message) => {
    await expect(startMove(app, input)).rejects.toThrow(type);
    await expect(createStartHandler(app)(input)).rejects.toThrow(message);
    await expectNothingChanged();
  });

  it("start rejects a source or destination bucket that does not exist", async () => {
    await expect(startMove(app, { from: "no-such-bucket-here", to })).rejects.toThrow(BucketError);
    await expect(startMove(app, { from, to: "no-such-destination" })).rejects.toThrow(
      /The destination bucket "no-such-destination" does not exist/,
    );
    await expectNothingChanged();
  });

  it("start names the source when neither bucket exists, whichever answer comes first", async () => {
    const slowSource = await harness.app();
    // The source's HeadBucket is answered last.
    slowSource.clients.s3.middlewareStack.add(
      (next, context) => async (args) => {
        const input = (args as { input?: { Bucket?: string } }).input;
        if (context.commandName === "HeadBucketCommand" && input?.Bucket === "no-such-source-y") await sleep(200);
        return next(args);
      },
      { step: "initialize", name: "slowSourceCheck" },
    );
    await expect(startMove(slowSource, { from: "no-such-source-y", to: "no-such-destination-y" })).rejects.toThrow(
      /The source bucket "no-such-source-y" does not exist/,
    );
    await expectNothingChanged();
  });

  it.each([
    ["a missing --to", ["move", "--from", "a-bucket"], /required option '--to <bucket>' not specified/],
    ["--from equal to --to", ["move", "--from", "same-b", "--to", "same-b"], /same bucket/],
    [
      "a bad --concurrency",
      ["move", "--from", "aaa", "--to", "bbb", "--concurrency", "lots"],
      /--concurrency must be a positive integer/,
    ],
    [
      "an unknown bucket",
      ["move", "--from", "no-such-bucket-x", "--to", "bbb-x"],
      /The source bucket "no-such-bucket-x" does not exist/,
    ],
    [
      "an invalid bucket name to seed",
      ["seed", "--bucket", "a1", "--objects", "1"],
      /"--bucket" is not a valid S3 bucket name/,
    ],
    ["an unknown command", ["teleport"], /unknown command 'teleport'/],
  ])("the CLI rejects %s with a message and a non-zero exit", async (_name, args, message) => {
    const result = await run(process.execPath, [
      CLI,
      ...args,
      ...(args[0] === "move" || args[0] === "seed" ? ["--endpoint", harness.emulator.endpoint] : []),
    ]).then(
      () => ({ code: 0, stderr: "" }),
      (error: { code: number; stderr: string }) => error,
    );
    // Refused on purpose: exit code 2 and the message alone, not an uncaught error's exit 1 and stack trace.
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    await expectNothingChanged();
  });
});
