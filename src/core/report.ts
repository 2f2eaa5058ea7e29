import { createHash, randomBytes } from "node:crypto";
import { lstat, mkdir, open, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { ValidationError } from "../errors.ts";
import type { MoveMessage, Outcome } from "../types.ts";
import { compareUtf8 } from "./keyOrder.ts";
import { decodeKey } from "./messages.ts";

/** One key in the move report (JSON Lines). */
export interface ReportLine {
  key: string;
  size: number;
  etag: string;
  outcome: "moved" | "skipped" | "failed";
  reason?: string;
  time: string;
}

/** Where report parts go: an S3 prefix (Lambda) or a local directory (local runtime). */
export interface ReportSink {
  readonly location: string;
  writePart(name: string, body: string): Promise<void>;
  listParts(jobId: string): Promise<string[]>;
  /**
   * Hands a part's bytes to `write` a chunk at a time. The next chunk is read once `write` is done, and may reuse the
   * same memory: `write` must not keep a chunk beyond its promise.
   */
  copyPart(name: string, write: (chunk: Uint8Array) => Promise<void>): Promise<void>;
}

/** Checks a report location given by a user: s3://bucket/prefix/ always, file:///dir/ only where files are local. */
export function validateReportLocation(location: unknown, allowFiles: boolean): string | undefined {
  if (location === undefined) return undefined;
  if (typeof location !== "string") throw new ValidationError(`"report" must be a string like "s3://bucket/reports/"`);
  if (/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(location))
    return location.endsWith("/") ? location : `${location}/`;
  if (allowFiles && location.startsWith("file:///")) {
    try {
      fileURLToPath(location); // refuses what names no path, such as an encoded "/" (%2F)
    } catch (error) {
      throw new ValidationError(`"report" is not a usable file URL: ${(error as Error).message}`, { cause: error });
    }
    return location.endsWith("/") ? location : `${location}/`;
  }
  throw new ValidationError(
    `"report" must be an S3 location like "s3://bucket/reports/"${allowFiles ? ' or a "file:///dir/" URL' : ""}, got "${location}"`,
  );
}

/** The bucket and key prefix of an s3:// report location; undefined for a local one. */
export function s3ReportLocation(location: string | undefined): { bucket: string; prefix: string } | undefined {
  const match = location === undefined ? null : /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  return match ? { bucket: match[1] as string, prefix: match[2] as string } : undefined;
}

/** The bucket of an s3:// report location; undefined for a local one. */
export function reportBucketOf(location: string | undefined): string | undefined {
  return s3ReportLocation(location)?.bucket;
}

const PROBE_BYTES = 64 * 1024; // about half a 1,000-key report part

/**
 * Checks that a file:// report location can take the report, with a probe file it then removes: it is a writable
 * directory, or the directory it names can be made in the nearest one that exists. (An s3:// location's bucket is
 * checked with the move's buckets.) Found out only at the first batch, the move would copy and delete that batch's
 * keys, then fail on its report part, over and over.
 */
export async function checkReportDirectory(location: string): Promise<void> {
  const wanted = fileURLToPath(location);
  for (let dir = wanted; ; dir = dirname(dir)) {
    const found = await stat(dir).catch((error: NodeJS.ErrnoException) => {
      // Not there (or under a file, which the walk up then finds): look at the directory it would be made in.
      if ((error.code === "ENOENT" || error.code === "ENOTDIR") && dirname(dir) !== dir) return undefined;
      throw new ValidationError(`The report directory ${wanted} cannot be used: ${error.message}`, { cause: error });
    });
    // A symbolic link to nothing stats as missing, but mkdir cannot make a directory where it is.
    if (!found && (await lstat(dir).catch(() => undefined))?.isSymbolicLink()) {
      throw new ValidationError(`The report directory ${wanted} cannot be made: ${dir} is a link to nothing`);
    }
    if (!found) continue;
    if (!found.isDirectory()) {
      throw new ValidationError(`The report directory ${wanted} cannot be made: ${dir} is a file, not a directory`);
    }
    // A file made and removed again, rather than access(): root passes access() on any directory, even one such as
    // /proc where no file can be made (and where the sink's recursive mkdir then never returns).
    const probe = join(dir, `.s3-image-mover-probe-${randomBytes(6).toString("hex")}`);
    let made = false;
    try {
      const file = await open(probe, "wx");
      made = true;
      try {
        // Some bytes, not an empty file: a full disk still takes an empty one.
        await file.write(Buffer.alloc(PROBE_BYTES));
      } finally {
        await file.close();
      }
    } catch (error) {
      throw new ValidationError(
        `The report directory ${wanted} cannot be written: no file can be made in ${dir} (${(error as Error).message})`,
        { cause: error },
      );
    } finally {
      // Made, then not removable (a mount that takes new files but no deletes): the parts can still be written.
      if (made) await rm(probe, { force: true }).catch(() => undefined);
    }
    return;
  }
}

export function reportSinkFor(location: string, s3: S3Client): ReportSink {
  if (location.startsWith("file://")) return fileSink(location);
  const s3Location = s3ReportLocation(location);
  if (!s3Location) throw new ValidationError(`Not a report location: ${location}`);
  return s3Sink(location, s3Location.bucket, s3Location.prefix, s3);
}

/**
 * The report lines of one batch: every key its ledger has resolved. A part per batch and ledger version, so a late
 * writer can never replace a newer state with an older one: readers keep each batch's highest version.
 */
export function batchReportPart(
  message: MoveMessage,
  outcomes: Record<string, Outcome>,
  ver: number,
): { name: string; body: string } {
  const lines: ReportLine[] = [];
  for (const item of message.items) {
    const outcome = outcomes[item.i];
    if (!outcome || outcome.o === "p") continue;
    const time = new Date(outcome.t ?? Date.now()).toISOString();
    const key = decodeKey(item.k);
    if (outcome.o === "m") lines.push({ key, size: outcome.b, etag: outcome.e ?? item.e, outcome: "moved", time });
    else
      lines.push({
        key,
        size: item.s,
        etag: item.e,
        outcome: outcome.o === "s" ? "skipped" : "failed",
        reason: outcome.r,
        time,
      });
  }
  // A message with only some of its batch's keys (a redriven letter, requeued keys) names its part apart: an attempt
  // that changes nothing rewrites the part of the ledger's version, and must not replace the whole batch's with it.
  const subset =
    message.retryFailed === true || message.requeued !== undefined
      ? `-${createHash("sha256")
          .update(message.items.map((item) => item.i).join(","))
          .digest("hex")
          .slice(0, 12)}`
      : "";
  return {
    name: `${message.job}/part-${String(message.page).padStart(9, "0")}-${String(message.batch).padStart(4, "0")}-v${String(ver).padStart(6, "0")}${subset}.jsonl`,
    body: lines.map((line) => JSON.stringify(line)).join("\n") + (lines.length > 0 ? "\n" : ""),
  };
}

/**
 * The job's report: every batch's keys with their newest outcome, in key-listing order, handed to `write` a chunk at
 * a time. A batch with one part is streamed as it is. A batch with several versions is merged by key, the newest
 * line of each key winning: a redriven or requeued message carries only its batch's unfinished keys, so its part
 * holds only those, and the batch's other keys keep their lines from the part before. Other parts are never read
 * whole: read into strings, a 100,000-object report raised the move's peak RSS by 12 MB in its last 0.1 s, faster
 * than V8 collected them (bench/README.md). A merged batch holds at most its 1,000 keys' lines.
 */
export async function assembleReport(
  sink: ReportSink,
  jobId: string,
  write: (chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  const versions = new Map<string, string[]>(); // batch → its part names, oldest first
  for (const name of (await sink.listParts(jobId)).sort()) {
    const batch = name.replace(/-v\d+(-[0-9a-f]+)?\.jsonl$/, "");
    const names = versions.get(batch);
    if (names) names.push(name);
    else versions.set(batch, [name]);
  }
  for (const names of versions.values()) {
    if (names.length === 1) await sink.copyPart(names[0] as string, write);
    else await write(Buffer.from(await mergedBatch(sink, names)));
  }
}

/** One batch's parts merged by key (parts oldest first, so newer lines replace older ones), in listing order. */
async function mergedBatch(sink: ReportSink, names: string[]): Promise<string> {
  const lines = new Map<string, string>();
  for (const name of names) {
    const chunks: Buffer[] = [];
    await sink.copyPart(name, async (chunk) => {
      chunks.push(Buffer.from(chunk)); // a copy: the file sink reuses its buffer
    });
    for (const line of Buffer.concat(chunks).toString("utf8").split("\n")) {
      if (line !== "") lines.set((JSON.parse(line) as ReportLine).key, line);
    }
  }
  return [...lines]
    .sort(([a], [b]) => compareUtf8(a, b))
    .map(([, line]) => `${line}\n`)
    .join("");
}

/**
 * Assembles a job's report into one local file. It is written under a temporary name and renamed once whole, so an
 * interrupted or failed assembly never leaves a partial report under the report's own name.
 */
export async function assembleReportFile(sink: ReportSink, jobId: string, file: string): Promise<void> {
  // A name of its own: two processes may assemble the same job's report at once (two moves, or `report`).
  const partial = `${file}.${process.pid}-${randomBytes(4).toString("hex")}.partial`;
  try {
    const out = await open(partial, "w");
    try {
      await assembleReport(sink, jobId, async (chunk) => {
        await out.write(chunk);
      });
    } finally {
      await out.close();
    }
    await rename(partial, file);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

/** Bytes a local part is read in: one buffer per sink, reused for every chunk of every part. */
const FILE_CHUNK_BYTES = 64 * 1024;

/**
 * Removes the temporary files a killed writer left in a local report directory (`*.partial`: a part's, see fileSink,
 * or an assembly's), once older than `olderThanMs`: a late writer of the same file may still be at work on a younger one.
 */
export async function removeStalePartials(
  dir: string,
  {
    startingWith = "",
    olderThanMs = 60_000,
    now = Date.now(),
  }: { startingWith?: string; olderThanMs?: number; now?: number } = {},
): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names.filter((n) => n.startsWith(startingWith) && n.endsWith(".partial"))) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info && now - info.mtimeMs >= olderThanMs) {
      await rm(path, { force: true });
      removed.push(name);
    }
  }
  return removed;
}

function fileSink(location: string): ReportSink {
  const dir = fileURLToPath(location);
  let buffer: Buffer | undefined;
  let copying = false; // the buffer is shared: assembleReport copies one part at a time
  return {
    location,
    async writePart(name, body) {
      const path = join(dir, name);
      await mkdir(join(path, ".."), { recursive: true });
      // Whole or not at all: a write that fails (a full disk) or a crash mid-write leaves no cut-off part to be read
      // (a process killed mid-write may leave its .partial file, which nothing reads).
      const partial = `${path}.${randomBytes(4).toString("hex")}.partial`;
      try {
        await writeFile(partial, body);
        await rename(partial, path);
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
    },
    async listParts(jobId) {
      const names = await readdir(join(dir, jobId)).catch(() => [] as string[]);
      return names.filter((n) => n.endsWith(".jsonl")).map((n) => `${jobId}/${n}`);
    },
    async copyPart(name, write) {
      if (copying) throw new Error("fileSink.copyPart: one part at a time");
      copying = true;
      try {
        buffer ??= Buffer.allocUnsafe(FILE_CHUNK_BYTES);
        const file = await open(join(dir, name));
        try {
          for (;;) {
            const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
            if (bytesRead === 0) return;
            await write(buffer.subarray(0, bytesRead));
          }
        } finally {
          await file.close();
        }
      } finally {
        copying = false;
      }
    },
  };
}

function s3Sink(location: string, bucket: string, prefix: string, s3: S3Client): ReportSink {
  return {
    location,
    async writePart(name, body) {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${prefix}${name}`,
          Body: body,
          ContentType: "application/x-ndjson",
        }),
      );
    },
    async listParts(jobId) {
      const names: string[] = [];
      let token: string | undefined;
      do {
        const out = await s3.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}${jobId}/`, ContinuationToken: token }),
        );
        for (const item of out.Contents ?? []) if (item.Key) names.push(item.Key.slice(prefix.length));
        token = out.NextContinuationToken;
      } while (token);
      return names;
    },
    async copyPart(name, write) {
      const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}${name}` }));
      if (!out.Body) return;
      // Read whole (a part is one batch's lines: ~150 KB for 1,000 short keys, about 1.2 MB at the longest) before it
      // is written on: a reader that pauses, as a pager does, would otherwise hold the download silent past the
      // client's idle timeout and cut it off.
      await write(await out.Body.transformToByteArray());
    },
  };
}
