import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AwsClients, createClients, destroyClients, resolveTarget } from "../../src/aws/clients.ts";
import {
  assembleReport,
  assembleReportFile,
  type ReportSink,
  removeStalePartials,
  reportSinkFor,
} from "../../src/core/report.ts";
import { type Emulator, startEmulator } from "../../src/emulator/emulator.ts";
import { freshBuckets } from "../support/harness.ts";

let emulator: Emulator;
let clients: AwsClients;
let dir: string;
beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  clients = createClients(resolveTarget({ endpoint: emulator.endpoint }));
  dir = await mkdtemp(join(tmpdir(), "report-"));
});
afterAll(async () => {
  destroyClients(clients);
  await emulator.stop();
  await rm(dir, { recursive: true, force: true });
});

const JOB = "job-1";
const part = (page: number, batch: number, ver: number, job = JOB) =>
  `${job}/part-${String(page).padStart(9, "0")}-${String(batch).padStart(4, "0")}-v${String(ver).padStart(6, "0")}.jsonl`;
/** Lines long enough that a part spans several 64 KB reads: keys label/from … label/(from+lines-1), in listing order. */
const body = (label: string, lines: number, outcome = "moved", from = 0) =>
  Array.from(
    { length: lines },
    (_, i) =>
      `{"key":"${label}/${String(from + i).padStart(4, "0")}","outcome":"${outcome}","pad":"${"x".repeat(150)}"}\n`,
  ).join("");

async function assembled(sink: ReportSink, job = JOB): Promise<string> {
  const chunks: Buffer[] = [];
  await assembleReport(sink, job, async (chunk) => {
    chunks.push(Buffer.from(chunk)); // a copy: the file sink reuses its buffer
  });
  return Buffer.concat(chunks).toString("utf8");
}

describe.each([
  ["a local directory", async () => `${pathToFileURL(dir).href}/`],
  ["an S3 prefix", async () => `s3://${(await freshBuckets(clients.s3, "report")).to}/reports/`],
])("a move report in %s", (_where, location) => {
  it("holds the newest version of every batch's part, in listing order, byte for byte", async () => {
    const sink = reportSinkFor(await location(), clients.s3);
    // Written out of order, with an older version of page 0's batch 1 whose lines must not appear.
    await sink.writePart(part(1, 0, 1), body("p1b0", 900));
    await sink.writePart(part(0, 1, 1), body("p0b1", 10, "failed"));
    await sink.writePart(part(0, 0, 3), body("p0b0", 1000));
    await sink.writePart(part(0, 1, 2), body("p0b1", 700));

    const report = await assembled(sink);

    expect(report).toBe(body("p0b0", 1000) + body("p0b1", 700) + body("p1b0", 900));
    expect(report).not.toContain('"failed"');
  });

  it("keeps a batch's other keys when its newest part holds only some (a redriven or requeued message)", async () => {
    const sink = reportSinkFor(await location(), clients.s3);
    // The batch: 20 moved, 5 failed, 75 moved; redriven, the 5 move. Its second part holds only those 5.
    const job = "job-redriven";
    await sink.writePart(part(0, 0, 1, job), body("b", 20) + body("b", 5, "failed", 20) + body("b", 75, "moved", 25));
    await sink.writePart(part(0, 0, 2, job), body("b", 5, "moved", 20));
    await sink.writePart(part(0, 1, 1, job), body("c", 3));

    const report = await assembled(sink, job);

    expect(report).toBe(body("b", 100) + body("c", 3));
  });

  it("puts a key that only a later part holds in its listing place", async () => {
    const sink = reportSinkFor(await location(), clients.s3);
    const job = "job-requeued";
    // Key b/1 was throttled in the first attempt (no line), then moved by its requeued message.
    await sink.writePart(part(0, 0, 1, job), body("b", 1) + body("b", 2, "moved", 2));
    await sink.writePart(part(0, 0, 2, job), body("b", 1, "moved", 1));

    expect(await assembled(sink, job)).toBe(body("b", 4));
  });

  it("lists every part of a job with more parts than one S3 listing page holds (1,000)", async () => {
    const sink = reportSinkFor(await location(), clients.s3);
    const names = Array.from(
      { length: 1001 },
      (_, i) => `job-many/part-${String(i).padStart(9, "0")}-0000-v000001.jsonl`,
    );
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((name) => sink.writePart(name, `{"n":${name.length}}\n`)));
    }
    expect((await sink.listParts("job-many")).sort()).toEqual(names);
  });
});

describe("a move report assembled into one local file", () => {
  it("appears under its name only once whole: an assembly that fails midway leaves no report file", async () => {
    const sink = reportSinkFor(`${pathToFileURL(dir).href}/assembly/`, clients.s3);
    await sink.writePart(part(0, 0, 1), body("p0b0", 500));
    await sink.writePart(part(0, 1, 1), body("p0b1", 500));
    const file = join(dir, "assembled.jsonl");

    await assembleReportFile(sink, JOB, file);
    expect(await readFile(file, "utf8")).toBe(body("p0b0", 500) + body("p0b1", 500));

    // The second part cannot be read (as when the process stops while copying it).
    const failing: ReportSink = {
      ...sink,
      copyPart: async (name, write) => {
        if (name.includes("-0001-")) throw new Error("part unreadable");
        await sink.copyPart(name, write);
      },
    };
    const again = join(dir, "failed.jsonl");
    await expect(assembleReportFile(failing, JOB, again)).rejects.toThrow("part unreadable");
    await expect(stat(again)).rejects.toMatchObject({ code: "ENOENT" });
    expect((await readdir(dir)).filter((name) => name.endsWith(".partial"))).toEqual([]); // nothing left behind
  });

  it("lets two processes assemble the same report at once", async () => {
    const location = `${pathToFileURL(dir).href}/assembly/`;
    const file = join(dir, "twice.jsonl");
    await Promise.all(
      [reportSinkFor(location, clients.s3), reportSinkFor(location, clients.s3)].map((sink) =>
        assembleReportFile(sink, JOB, file),
      ),
    );
    expect(await readFile(file, "utf8")).toBe(body("p0b0", 500) + body("p0b1", 500));
  });
});

describe("removeStalePartials", () => {
  it("removes the .partial files a killed writer left, once a minute old, and nothing else", async () => {
    const jobDir = await mkdtemp(join(tmpdir(), "partials-"));
    try {
      const old = new Date(Date.now() - 5 * 60_000);
      for (const name of ["part-000000000-0000-v000001.jsonl.ab12cd34.partial", "part-000000000-0000-v000001.jsonl"]) {
        await writeFile(join(jobDir, name), "{}\n");
        await utimes(join(jobDir, name), old, old);
      }
      await writeFile(join(jobDir, "part-000000001-0000-v000001.jsonl.ef56ab78.partial"), "{}\n"); // a writer at work

      expect(await removeStalePartials(jobDir)).toEqual(["part-000000000-0000-v000001.jsonl.ab12cd34.partial"]);
      expect((await readdir(jobDir)).sort()).toEqual([
        "part-000000000-0000-v000001.jsonl",
        "part-000000001-0000-v000001.jsonl.ef56ab78.partial",
      ]);
      expect(await removeStalePartials(join(jobDir, "no-such-dir"))).toEqual([]);
    } finally {
      await rm(jobDir, { recursive: true, force: true });
    }
  });
});
