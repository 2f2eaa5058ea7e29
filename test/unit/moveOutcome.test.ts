// What `move` says last and how it exits, for each way a job can end up.
import { describe, expect, it } from "vitest";
import { moveOutcome } from "../../src/cli/moveOutcome.ts";
import type { Job, JobCounts } from "../../src/types.ts";

const job = (fields: Partial<Job>): Job =>
  ({ id: "job-1", from: "old", to: "new", prefix: "", state: "done", listed: 10, listingDone: true, ...fields }) as Job;
const counts = (fields: Partial<JobCounts>): JobCounts => ({
  listed: 10,
  listedBytes: 0,
  moved: 0,
  movedBytes: 0,
  skipped: 0,
  failed: 0,
  ...fields,
});

describe("the end of a move command", () => {
  it("exits 0 and says nothing more when every key moved", () => {
    expect(moveOutcome({ job: job({}), counts: counts({ moved: 10 }) })).toEqual({ exitCode: 0 });
  });

  it("exits 0 and says so when there was nothing to move", () => {
    expect(moveOutcome({ job: job({ listed: 0, prefix: "none/" }), counts: counts({ listed: 0 }) })).toEqual({
      exitCode: 0,
      message: "Nothing to move: no keys under s3://old/none/",
    });
  });

  it("says a job a redriven letter holds open is not waiting on skipped keys, and how to end it", () => {
    const outcome = moveOutcome({
      job: job({ state: "moving", redriven: ["letter-1"] }),
      counts: counts({ moved: 10 }),
    });
    expect(outcome.exitCode).toBe(1);
    expect(outcome.message).toContain("has resolved every key it listed, but 1 redriven letter of it has not been");
    expect(outcome.message).toContain("s3-image-mover cancel --job job-1");
    expect(outcome.message).not.toMatch(/skipped/);
  });

  it("names the skipped keys, and no redrive, when they are all that is left", () => {
    const outcome = moveOutcome({ job: job({}), counts: counts({ moved: 8, skipped: 2 }) });
    expect(outcome).toMatchObject({ exitCode: 1 });
    expect(outcome.message).toMatch(
      /^Job job-1 moved every key but 2 it skipped, which it did not delete from the source/,
    );
    expect(outcome.message).not.toMatch(/redrive/);
  });

  it("points failed keys to status and redrive, with a redriven letter pending or not", () => {
    for (const redriven of [undefined, ["letter-1"]]) {
      const outcome = moveOutcome({
        job: job({ state: redriven ? "moving" : "done-with-failures", ...(redriven ? { redriven } : {}) }),
        counts: counts({ moved: 7, failed: 3 }),
      });
      expect(outcome.exitCode).toBe(1);
      expect(outcome.message).toBe(
        "Job job-1 did not move every key: 3 failed, 0 skipped, 0 unresolved. See `s3-image-mover status --job job-1`; " +
          "after fixing the cause run `s3-image-mover redrive` and move again.",
      );
    }
  });

  it("exits 0 for a job cancelled after its last key had moved, and says so", () => {
    expect(moveOutcome({ job: job({ state: "cancelled" }), counts: counts({ moved: 10 }) })).toEqual({
      exitCode: 0,
      message: "Job job-1 was cancelled, but every key it listed had already moved.",
    });
    // Still listing when cancelled: keys it never listed stay behind.
    expect(
      moveOutcome({ job: job({ state: "cancelled", listingDone: false }), counts: counts({ moved: 10 }) }).exitCode,
    ).toBe(1);
  });

  it("says a cancelled job's unmoved keys stay, and a stopped listing's token is on the list DLQ", () => {
    expect(moveOutcome({ job: job({ state: "cancelled" }), counts: counts({ moved: 4 }) }).message).toMatch(
      /^Job job-1 was cancelled: the keys it had not moved stay in the source/,
    );
    const stopped = moveOutcome({
      job: job({
        state: "moving",
        listingDone: false,
        listed: 5,
        listingError: { reason: "Access denied.", attempt: 5, at: "" },
      }),
      counts: counts({ listed: 5, moved: 5 }),
    });
    expect(stopped.message).toBe(
      "Job job-1 stopped listing after 5 keys: Access denied. Its list token is on the list DLQ. After fixing the cause " +
        "run `s3-image-mover redrive` and move again.",
    );
  });
});
