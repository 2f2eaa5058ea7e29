import { execFile } from "node:child_process";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { ListQueuesCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClients, destroyClients, resolveTarget } from "../../src/aws/clients.ts";
import { queueDepth } from "../../src/aws/queues.ts";
import { startMove } from "../../src/core/start.ts";
import { startEmulator } from "../../src/emulator/emulator.ts";
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

  it("start rejects a report location that cannot take the report, before anything moves", async () => {
    await expect(startMove(app, { from, to, report: "s3://no-such-report-bucket/r/" })).rejects.toThrow(
      /The report bucket "no-such-report-bucket" does not exist/,
    );
    const dir = await mkdtemp(join(tmpdir(), "input-"));
    const file = join(dir, "a-file");
    try {
      await writeFile(file, "");
      await expect(startMove(app, { from, to, report: `${pathToFileURL(file).href}/reports/` })).rejects.toThrow(
        new ValidationError(`The report directory ${file}/reports/ cannot be made: ${file} is a file, not a directory`),
      );
      const link = join(dir, "a-link");
      await symlink(join(dir, "gone"), link);
      await expect(startMove(app, { from, to, report: `${pathToFileURL(link).href}/reports/` })).rejects.toThrow(
        new ValidationError(`The report directory ${link}/reports/ cannot be made: ${link} is a link to nothing`),
      );
      // Root passes access() on /proc too, but no file can be made there (and a recursive mkdir never returns). This
      // tests the fix when run as root; as another user access() refused it already.
      await expect(startMove(app, { from, to, report: "file:///proc/s3-image-mover-reports/" })).rejects.toThrow(
        /^The report directory \/proc\/s3-image-mover-reports\/ cannot be written: no file can be made in \/proc \(/,
      );
      await expect(startMove(app, { from, to, report: `${pathToFileURL(dir).href}/a%2Fb/` })).rejects.toThrow(
        /"report" is not a usable file URL: .*must not include encoded \/ characters/,
      );
    } finally {
      await rm(dir, { recursive: true });
    }
    await expectNothingChanged();
  });

  it("the CLI refuses a missing report bucket and a malformed endpoint with exit 2, and says why", async () => {
    const missingReport = await runCli(["move", "--from", from, "--to", to, "--report", "s3://no-such-report-b/r/"]);
    expect(missingReport).toMatchObject({ code: 2, stderr: expect.stringMatching(/report bucket "no-such-report-b"/) });
    const malformed = await runCli(["status", "--endpoint", "notaurl"], { endpoint: false });
    expect(malformed).toMatchObject({ code: 2, stderr: expect.stringMatching(/"notaurl" .* is not an http/) });
    for (const result of [missingReport, malformed]) expect(result.stderr).not.toMatch(/\n\s+at /);
    await expectNothingChanged();
  });

  it("the CLI says in one line when it cannot reach its endpoint, with exit 1", async () => {
    // Port 1 on the loopback: nothing listens, so the connection is refused at once.
    for (const command of ["status", "redrive", "move --from aaa-src --to aaa-dst"]) {
      const result = await runCli([...command.split(" "), "--endpoint", "http://127.0.0.1:1"], { endpoint: false });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^Error: could not reach S3, SQS or DynamoDB: .*ECONNREFUSED 127\.0\.0\.1:1/);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it("the CLI's refused move, status, cancel and redrive create no queue and no table where there were none", async () => {
    const fresh = await startEmulator({ port: 0 });
    const clients = createClients(resolveTarget({ endpoint: fresh.endpoint }));
    try {
      const result = await runCli(
        ["move", "--from", "no-such-bucket-z", "--to", "bbb-z", "--endpoint", fresh.endpoint],
        {
          endpoint: false,
        },
      );
      expect(result).toMatchObject({ code: 2, stderr: expect.stringMatching(/source bucket "no-such-bucket-z"/) });
      // Nor do the commands that only read or change jobs, where no move ever ran.
      const here = ["--endpoint", fresh.endpoint];
      expect(await runCli(["status", ...here], { endpoint: false })).toMatchObject({ code: 0 });
      expect(await runCli(["status", "--job", "job-x", ...here], { endpoint: false })).toMatchObject({
        code: 2,
        stderr: expect.stringMatching(/No job with id "job-x"/),
      });
      expect(await runCli(["cancel", "--job", "job-x", ...here], { endpoint: false })).toMatchObject({ code: 2 });
      expect(await runCli(["redrive", ...here], { endpoint: false })).toMatchObject({ code: 0 });
      expect(await runCli(["redrive", "--job", "job-x", ...here], { endpoint: false })).toMatchObject({ code: 2 });
      expect((await clients.sqs.send(new ListQueuesCommand({}))).QueueUrls ?? []).toEqual([]);
      expect((await clients.dynamo.send(new ListTablesCommand({}))).TableNames ?? []).toEqual([]);
    } finally {
      destroyClients(clients);
      await fresh.stop();
    }
  });

  /** Runs the CLI (against the harness's emulator unless told not to); resolves to its exit code and stderr. */
  function runCli(args: string[], options: { endpoint?: boolean } = {}): Promise<{ code: number; stderr: string }> {
    const endpoint = options.endpoint === false ? [] : ["--endpoint", harness.emulator.endpoint];
    return run(process.execPath, [CLI, ...args, ...endpoint]).then(
      ({ stderr }) => ({ code: 0, stderr }),
      (error: { code: number; stderr: string }) => error,
    );
  }

  it.each([
    ["a missing --to", ["move", "--from", "a-bucket"], /required option '--to <bucket>' not specified/],
    ["--from equal to --to", ["move", "--from", "same-b", "--to", "same-b"], /same bucket/],
    [
      "a bad --concurrency",
      ["move", "--from", "aaa", "--to", "bbb", "--concurrency", "lots"],
      /--concurrency must be a positive integer/,
    ],
    [
      "a --concurrency past its bound",
      ["move", "--from", "aaa", "--to", "bbb", "--concurrency", "99999999"],
      /--concurrency must be at most 1024, got "99999999"/,
    ],
    [
      "an unknown bucket",
      ["move", "--from", "no-such-bucket-x", "--to", "bbb-x"],
      /The source bucket "no-such-bucket-x" does not exist/,
    ],
    [
      "a report location inside the source it would move",
      ["move", "--from", "aaa-src", "--to", "bbb-dst", "--report", "s3://aaa-src/reports/"],
      /"report" s3:\/\/aaa-src\/reports\/ is where this job's listing of s3:\/\/aaa-src\/ would reach its own report parts/,
    ],
    [
      "a missing bucket of a name S3 no longer creates, saying so",
      ["move", "--from", "xn--photos", "--to", "bbb-x"],
      /The source bucket "xn--photos" does not exist \(S3 reserves bucket names starting with "xn--"\)/,
    ],
    [
      "an invalid bucket name to seed",
      ["seed", "--bucket", "a1", "--objects", "1"],
      /"--bucket" is not a valid S3 bucket name/,
    ],
    ["an unknown command", ["teleport"], /unknown command 'teleport'/],
  ])("the CLI rejects %s with a message and a non-zero exit", async (_name, args, message) => {
    const result = await runCli(args, { endpoint: args[0] === "move" || args[0] === "seed" });
    // Refused on purpose: exit code 2 and the message alone, not an uncaught error's exit 1 and stack trace.
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    await expectNothingChanged();
  });
});
