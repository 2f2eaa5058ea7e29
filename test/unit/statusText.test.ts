// What `status` prints: without --job one line per recent job, with it the job's own lines.
import { describe, expect, it } from "vitest";
import { etaSecondsOf, formatJobList, formatStatus, type JobStatus } from "../../src/core/status.ts";
import type { Job } from "../../src/types.ts";

describe("the job list", () => {
  it("marks dry runs, and shows the prefix on both sides (keys keep their names)", () => {
    const job = (id: string, dryRun: boolean) =>
      ({ id, state: "done", listed: 1200, from: "old", to: "new", prefix: "img-", dryRun }) as Job;
    expect(formatJobList([job("job-1", false), job("job-2", true)]).split("\n")).toEqual([
      "job-1  done                    1200 listed  s3://old/img- → s3://new/img-",
      "job-2  done (dry run)          1200 listed  s3://old/img- → s3://new/img-",
    ]);
    expect(formatJobList([])).toBe("No jobs yet.");
  });
});

describe("a job's status", () => {
  const status = (dryRun: boolean): JobStatus => ({
    job: {
      id: "job-3",
      from: "old",
      to: "new",
      prefix: "",
      state: "done",
      listingDone: true,
      createdAt: "2026-12-07T10:00:00.000Z",
      updatedAt: "2026-12-07T10:00:05.000Z",
      overwrite: true,
      dryRun,
    },
    counts: { listed: 3, listedBytes: 3e6, moved: 0, movedBytes: 0, skipped: 0, failed: 0, unresolved: 3 },
    rate: { objectsPerSecond: 0, bytesPerSecond: 0, overSeconds: 5 },
    etaSeconds: undefined,
    queues: { listQueued: 0, moveQueued: 2, inFlight: 1, deadLetters: 4 },
    lastErrors: [],
  });

  it("says how many redriven letters hold the job open", () => {
    expect(formatStatus({ ...status(false), redrivenPending: 2 })).toContain(
      "  redriven letters not yet retried: 2; they hold the job open (with none queued, run redrive again)",
    );
    expect(formatStatus(status(false))).not.toContain("redriven");
  });

  it("says the queue depths are every job's, not this one's", () => {
    expect(formatStatus(status(false))).toContain(
      "  queues (all jobs): 0 list + 2 move messages queued, 1 in flight, 4 in dead-letter queues",
    );
  });

  it("shows only what a dry run listed: it resolves no key, so none is 'unresolved'", () => {
    const lines = formatStatus(status(true)).split("\n");
    expect(lines).toContain("  listed 3 (3.0 MB)");
    expect(lines.join("\n")).not.toMatch(/unresolved|moved \d|rate /);
    expect(formatStatus(status(false)).split("\n")).toContain(
      "  listed 3 (3.0 MB), moved 0 (0.0 MB), skipped 0, failed 0, unresolved 3",
    );
  });
});

describe("a job's ETA", () => {
  const moving = { state: "moving", listingDone: true } as const;
  it("is the unresolved keys at the recent rate, rounded up", () => {
    expect(etaSecondsOf(moving, 250, 100)).toBe(3);
  });
  it("is not given with nothing unresolved (a job held open by a redriven letter is not 0 s from its end)", () => {
    expect(etaSecondsOf(moving, 0, 100)).toBeUndefined();
  });
  it("is not given while the job lists, after it finished, or with no recent rate", () => {
    expect(etaSecondsOf({ state: "moving", listingDone: false }, 250, 100)).toBeUndefined();
    expect(etaSecondsOf({ state: "done", listingDone: true }, 250, 100)).toBeUndefined();
    expect(etaSecondsOf(moving, 250, 0)).toBeUndefined();
  });
});
