import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { DeleteBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReportLine } from "../../src/core/report.ts";
import { startMove } from "../../src/core/start.ts";
import { ensureBucket, seedBucket, seedKey } from "../../src/images/seed.ts";
import type { LocalApp } from "../../src/local/localApp.ts";
import { runLocalMove } from "../../src/local/localMove.ts";
import { freshBuckets, type Harness, listAll, startHarness, useProxiedHarness } from "../support/harness.ts";

const CLI = fileURLToPath(new URL("../../bin/s3-image-mover.js", import.meta.url));
const run = promisify(execFile);

describe("what the CLI says about a job", () => {
  let harness: Harness;
  let app: LocalApp;
  let cwd: string; // where a move's default report directory goes
  beforeAll(async () => {
    harness = await startHarness();
    app = await harness.app();
    cwd = await mkdtemp(join(tmpdir(), "cli-"));
  });
  afterAll(async () => {
    await harness.stop();
    await rm(cwd, { recursive: true, force: true });
  });

  /** The CLI against the harness's emulator; a command still running after 30 s is killed (and the test fails). */
  function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return run(process.execPath, [CLI, ...args, "--endpoint", harness.emulator.endpoint], {
      cwd,
      timeout: 30_000,
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number | null; stdout: string; stderr: string }) => error,
    );
  }

  it("after a move that skipped keys as asked, says they stay in the source, not to redrive them", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "skips");
    await seedBucket(app.clients.s3, { bucket: from, objects: 4, bytes: 256 });
    for (const i of [1, 2]) {
      await app.clients.s3.send(new PutObjectCommand({ Bucket: to, Key: seedKey(i), Body: "other content" }));
    }

    const result = await cli(["move", "--from", from, "--to", to, "--no-overwrite", "--quiet"]);

    expect(result.code).toBe(1); // not every key moved, as documented
    expect(result.stderr).toMatch(
      /moved every key but 2 it skipped, which it did not delete from the source; the report gives/,
    );
    expect(result.stderr).not.toMatch(/redrive/);
    expect([...(await listAll(app.clients.s3, from)).keys()].sort()).toEqual([seedKey(1), seedKey(2)]);
  });

  it("warns of another unfinished job whose keys overlap, then moves its own; says nothing of one apart", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "overlap");
    await seedBucket(app.clients.s3, { bucket: from, objects: 3, bytes: 128 });
    // Unfinished, and nothing lists it (no list token was sent): only its record is there to be found.
    const other = await app.store.openJob({ from, to, prefix: "img", overwrite: true, dryRun: false });
    const apart = await freshBuckets(app.clients.s3, "overlap-apart");
    try {
      const overlapping = await cli(["move", "--from", from, "--to", to, "--quiet"]);
      expect(overlapping.code).toBe(0);
      expect(overlapping.stderr).toContain(
        `Warning: Another unfinished job works on keys that overlap this job's: ${other.job.id} (listing: s3://${from}/img → s3://${to}/img).`,
      );
      expect((await listAll(app.clients.s3, to)).size).toBe(3);

      const separate = await cli(["move", "--from", apart.from, "--to", apart.to, "--quiet"]);
      expect(separate.code).toBe(0);
      expect(separate.stderr).not.toMatch(/Warning/);
    } finally {
      await app.store.cancel(other.job.id);
    }
  });

  /** Starts `move` with `extra` arguments, sends Ctrl-C once it names its job, and returns what it said. */
  async function interruptedMove(from: string, to: string, extra: string[] = []) {
    const args = [CLI, "move", "--from", from, "--to", to, ...extra, "--endpoint", harness.emulator.endpoint];
    const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
    try {
      let stderr = "";
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      const jobId = await new Promise<string>((resolve, reject) => {
        child.stderr.on("data", (chunk: Buffer) => {
          stderr += chunk.toString();
          const id = /^(?:Job|Dry run) (\S+): (?:moving|listing) /m.exec(stderr)?.[1];
          if (id) resolve(id);
        });
        void exited.then((code) => reject(new Error(`move exited (${code}) before naming its job:\n${stderr}`)));
      });
      child.kill("SIGINT");
      const code = await exited;
      return { jobId, code, stderr };
    } finally {
      child.kill("SIGKILL"); // a no-op once it has exited
    }
  }

  it("names the job it opens, says on Ctrl-C how to resume it, and continues it when run again", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "sigint");
    await seedBucket(app.clients.s3, { bucket: from, objects: 5000, bytes: 256 });

    const { jobId, code, stderr } = await interruptedMove(from, to);

    expect(code).toBe(130);
    expect(stderr).toContain(`Interrupted: job ${jobId} stops here; run the same command to resume it.`);
    const again = await cli(["move", "--from", from, "--to", to]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`Continuing job ${jobId}, started `);
    expect((await listAll(app.clients.s3, to)).size).toBe(5000);
  });

  it("on Ctrl-C during a dry run, says nothing moved and that the same command starts it again", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "sigint-dry");
    await seedBucket(app.clients.s3, { bucket: from, objects: 3000, bytes: 16 });

    const { jobId, code, stderr } = await interruptedMove(from, to, ["--dry-run"]);

    expect(code).toBe(130);
    expect(stderr).toContain(
      `Interrupted: dry run ${jobId} stops here; nothing was moved. Run the same command to start it again.`,
    );
    expect(stderr).not.toMatch(/resume/);
    expect((await listAll(app.clients.s3, from)).size).toBe(3000);
  });

  it("says, even with --quiet, that a resumed job keeps the options it was started with", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "kept-quiet");
    await seedBucket(app.clients.s3, { bucket: from, objects: 5, bytes: 64 });
    const { jobId } = await startMove(app, { from, to }); // overwrite on; not moved yet

    const result = await cli(["move", "--from", from, "--to", to, "--no-overwrite", "--quiet"]);

    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`Continuing job ${jobId}, started `);
    expect(result.stderr).toContain("It keeps the options it was started with (overwrite on");
    // Its rate is this run's, from the keys the job had moved as it attached: there even before a first progress.
    expect(result.stdout).toMatch(/^\[done\] listed 5, moved 5, .*, \d+ obj\/s, /m);
    const plain = await cli(["move", "--from", from, "--to", to, "--prefix", "none/", "--quiet"]);
    expect(plain.stderr).not.toMatch(/^Job /m); // a new job with nothing to keep: quiet
  });

  it("cancels a job, watches it until it shows the cancel, then exits; a second cancel has nothing to do", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "watch");
    const { jobId } = await startMove(app, { from, to });

    expect(await cli(["cancel", "--job", jobId])).toMatchObject({
      code: 0,
      stdout: `Job ${jobId}: cancelled; its unmoved keys stay in the source\n`,
    });
    const watched = await cli(["status", "--job", jobId, "--watch"]);
    expect(watched).toMatchObject({ code: 0, stdout: expect.stringContaining(`Job ${jobId}: cancelled`) });
    expect((await cli(["cancel", "--job", jobId])).stdout).toBe(
      `Job ${jobId} is already cancelled: nothing to cancel\n`,
    );
  });

  it("refuses to redrive, cancel or report a job it does not know", async () => {
    await startMove(app, { ...(await freshBuckets(app.clients.s3, "known")) }); // the job table exists
    for (const command of ["redrive", "cancel", "report"]) {
      expect(await cli([command, "--job", "job-unknown"])).toMatchObject({
        code: 2,
        stderr: expect.stringMatching(/^Error: No job with id "job-unknown"/),
      });
    }
  });

  it("says when there was nothing to move", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "empty");
    const result = await cli(["move", "--from", from, "--to", to, "--prefix", "none/", "--quiet"]);
    expect(result).toMatchObject({ code: 0, stderr: `Nothing to move: no keys under s3://${from}/none/\n` });
  });

  it("shows a job whose report bucket is gone, saying the report cannot be read", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "gone-report");
    const reports = `${to}-reports`.slice(0, 63);
    await ensureBucket(app.clients.s3, reports);
    const { jobId } = await startMove(app, { from, to, report: `s3://${reports}/r/` });
    await app.clients.s3.send(new DeleteBucketCommand({ Bucket: reports }));

    const result = await cli(["status", "--job", jobId]);

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`report: cannot read s3://${reports}/r/${jobId}/: .*does not exist`));
  });

  it("assembles the report of a job another process finished, and refuses one not finished yet", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "report-cmd");
    await seedBucket(app.clients.s3, { bucket: from, objects: 30, bytes: 64 });
    const reports = join(cwd, "report-cmd");
    const { jobId } = await startMove(app, { from, to, report: `${pathToFileURL(reports).href}/` });
    expect(await cli(["report", "--job", jobId])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(
        new RegExp(`Job ${jobId} is still listing: its report is assembled once it finishes`),
      ),
    });
    // The job is moved by handlers in another process: its report parts are written, the assembled file is not.
    await runLocalMove(app, app.stack, { from, to }, { opened: Promise.resolve(jobId) });
    const file = join(reports, `${jobId}.jsonl`);
    await rm(file, { force: true });

    expect(await cli(["report", "--job", jobId])).toMatchObject({ code: 0, stdout: `Report: ${file}\n` });
    const lines = (await readFile(file, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as ReportLine);
    expect(lines.map((l) => l.key).sort()).toEqual(Array.from({ length: 30 }, (_, i) => seedKey(i)).sort());
    expect(lines.every((l) => l.outcome === "moved")).toBe(true);
  });

  it("after a move with an S3 report, says where its parts are and how to assemble them", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "move-s3-report");
    await seedBucket(app.clients.s3, { bucket: from, objects: 5, bytes: 64 });

    const moved = await cli(["move", "--from", from, "--to", to, "--report", `s3://${to}/reports`, "--quiet"]);

    expect(moved.code).toBe(0);
    const said =
      /^Report parts: s3:\/\/(\S+?)\/reports\/(\S+)\/ \(one file: s3-image-mover report --job (\S+) > \S+\.jsonl\)$/m.exec(
        moved.stdout,
      );
    expect(said, moved.stdout).not.toBeNull();
    const [, bucket, jobInPath, jobInCommand] = said as unknown as string[];
    expect([bucket, jobInCommand]).toEqual([to, jobInPath]);
    const parts = [...(await listAll(app.clients.s3, to)).keys()].filter((k) => k.startsWith(`reports/${jobInPath}/`));
    expect(parts.length).toBeGreaterThan(0);
    const assembled = await cli(["report", "--job", jobInCommand as string]);
    expect(assembled.stdout.trim().split("\n")).toHaveLength(5);
  });

  it("runs to its end, cleanup and exit code included, when its reader goes after the first line", async () => {
    const { stdout } = await run(
      "bash",
      ["-o", "pipefail", "-c", `"$0" "$1" demo --objects 20 | head -1`, process.execPath, CLI],
      {
        cwd,
        timeout: 60_000,
      },
    );
    const state = /state in (\S+) \(removed at the end\)/.exec(stdout)?.[1];
    expect(state).toBeDefined();
    await expect(stat(state as string)).rejects.toMatchObject({ code: "ENOENT" }); // it got as far as its cleanup
  }, 90_000);

  it("takes a file:/// URL for --report as the directory it names", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "report-url");
    await seedBucket(app.clients.s3, { bucket: from, objects: 2, bytes: 64 });
    const dir = join(cwd, "as-url");

    const result = await cli(["move", "--from", from, "--to", to, "--report", pathToFileURL(dir).href, "--quiet"]);

    expect(result.code).toBe(0);
    const file = /^Report: (.+)$/m.exec(result.stdout)?.[1] ?? "";
    expect(file.startsWith(`${dir}/`)).toBe(true);
    expect((await readFile(file, "utf8")).trim().split("\n")).toHaveLength(2);
  });

  it("writes an S3 report onto stdout", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "report-s3");
    await seedBucket(app.clients.s3, { bucket: from, objects: 12, bytes: 64 });
    const { jobId } = await startMove(app, { from, to, report: `s3://${to}/reports/` });
    await runLocalMove(app, app.stack, { from, to }, { opened: Promise.resolve(jobId) });

    const result = await cli(["report", "--job", jobId]);

    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as ReportLine);
    expect(lines).toHaveLength(12);
    expect(lines.every((l) => l.outcome === "moved")).toBe(true);
  });

  it("writes the whole of a report larger than a pipe holds to a slow reader, and ends quietly when the reader goes", async () => {
    const { from, to } = await freshBuckets(app.clients.s3, "report-pipe");
    await seedBucket(app.clients.s3, { bucket: from, objects: 1500, bytes: 64 }); // ~200 KB of lines
    const { jobId } = await startMove(app, { from, to, report: `s3://${to}/reports/` });
    await runLocalMove(app, app.stack, { from, to }, { opened: Promise.resolve(jobId) });

    // Through a shell pipe (a child's own stdio would be a socket pair, which holds it all), into a reader that takes
    // a chunk every 100 ms: the command must wait for it. (At ea5ee84, which wrote a part in chunks and exited at once,
    // 2,968 of 3,000 arrived. Since each part is written whole and drained, this passes without bin/'s flush too.)
    const reader = join(cwd, "slow-reader.mjs");
    await writeFile(
      reader,
      `let lines = 0;
      for await (const chunk of process.stdin) {
        lines += String(chunk).split("\\n").length - 1;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      console.log(lines);`,
    );
    const { stdout } = await run(
      "bash",
      [
        "-o",
        "pipefail",
        "-c",
        `"$0" "$1" report --job "$2" --endpoint "$3" | "$0" "$4"`,
        process.execPath,
        CLI,
        jobId,
        harness.emulator.endpoint,
        reader,
      ],
      { cwd, timeout: 60_000 },
    );
    expect(Number(stdout.trim())).toBe(1500);
    // A reader that goes after one line: the command ends as it would have, with no EPIPE crash.
    const first = await run(
      "bash",
      [
        "-o",
        "pipefail",
        "-c",
        `"$0" "$1" report --job "$2" --endpoint "$3" | head -1`,
        process.execPath,
        CLI,
        jobId,
        harness.emulator.endpoint,
      ],
      { cwd, timeout: 60_000 },
    );
    expect((JSON.parse(first.stdout) as ReportLine).outcome).toBe("moved");
    expect(first.stderr).toBe("");
  }, 90_000);
});

describe("what the CLI says when its endpoint stops answering mid-move", () => {
  const harness = useProxiedHarness();

  it("says in one line that it could not reach the endpoint, for a call the move's worker thread made", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint });
    const { from, to } = await freshBuckets(app.clients.s3, "silent-mid-move");
    await seedBucket(app.clients.s3, { bucket: from, objects: 20, bytes: 64 });
    const cwd = await mkdtemp(join(tmpdir(), "cli-silent-"));
    // Once the job is open (its list token sent), DynamoDB goes silent: every later read of the job waits forever.
    let silent = false;
    harness.proxy.setRespond((req) => {
      if (req.service === "sqs" && req.operation.startsWith("SendMessage")) silent = true;
      return silent && req.service === "dynamodb" ? new Promise(() => {}) : undefined;
    });
    try {
      const result = await run(
        process.execPath,
        [CLI, "move", "--from", from, "--to", to, "--quiet", "--endpoint", harness.proxy.endpoint],
        { cwd, timeout: 60_000, env: { ...process.env, IDLE_TIMEOUT_MS: "1500" } },
      ).then(
        ({ stderr }) => ({ code: 0, stderr }),
        (error: { code: number; stderr: string }) => error,
      );
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^Error: could not reach S3, SQS or DynamoDB: .*timed out after 1500 ms of inactivity[^.]*\. Is the endpoint running/m,
      );
      expect(result.stderr).not.toMatch(/\n\s+at /);
    } finally {
      harness.proxy.setRespond(undefined);
      await rm(cwd, { recursive: true, force: true });
    }
  }, 90_000);
});
