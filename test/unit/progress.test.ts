// The CLI's progress display: on a stand-in terminal a bar, drawn from the first update on (cli-progress loads
// then), and plain lines elsewhere.
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createProgressReporter, formatProgressLine, openedLine, RunRate } from "../../src/cli/progress.ts";
import type { MoveProgress } from "../../src/local/localMove.ts";
import type { Job } from "../../src/types.ts";

function progress(moved: number, listed: number, state: Job["state"] = "moving"): MoveProgress {
  const job = { id: "job-1", state, listed, listingDone: true } as Job;
  const counts = { listed, moved, movedBytes: moved * 20_000, skipped: 0, failed: 0 };
  return { job, counts, queued: 0, inFlight: 1, deadLetters: 0 } as MoveProgress;
}

function terminal(isTTY: boolean): { stream: NodeJS.WriteStream; output: () => string } {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk.toString()));
  Object.assign(stream, { isTTY, columns: 200, rows: 40 });
  return { stream: stream as unknown as NodeJS.WriteStream, output: () => chunks.join("") };
}

describe("the progress display", () => {
  it("draws a bar on a terminal from the first update, and moves it on later ones", async () => {
    const { stream, output } = terminal(true);
    const reporter = createProgressReporter({ quiet: false, stream });
    expect(reporter.everyMs).toBe(500);
    expect(output()).toBe(""); // nothing drawn before there is progress to show
    reporter.update(progress(250, 1000));
    reporter.update(progress(1000, 1000, "done"));
    reporter.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(output()).toContain("250/1000 objects");
    expect(output()).toContain("1000/1000 objects");
    expect(output()).toContain("| done");
  });

  it("stops cleanly when no update came", () => {
    const { stream } = terminal(true);
    expect(() => createProgressReporter({ quiet: false, stream }).stop()).not.toThrow();
  });

  it("writes plain lines when not on a terminal, and nothing when quiet", async () => {
    const plain = terminal(false);
    const reporter = createProgressReporter({ quiet: false, stream: plain.stream });
    reporter.update(progress(1000, 1000, "done"));
    const quiet = terminal(false);
    createProgressReporter({ quiet: true, stream: quiet.stream }).update(progress(1000, 1000, "done"));
    await new Promise((resolve) => setImmediate(resolve));
    expect(plain.output()).toMatch(
      /^\[done\] listed 1000, moved 1000, skipped 0, failed 0, \d+ obj\/s, dead letters \(all jobs\) 0\n$/,
    );
    expect(quiet.output()).toBe("");
  });

  it("counts as listed what the page totals hold when they are ahead of the job record, with no + once finished", () => {
    const p = progress(3000, 3000, "cancelled");
    const ahead = { ...p, job: { ...p.job, listed: 2000, listingDone: false } };
    expect(formatProgressLine(ahead, new RunRate())).toMatch(/^\[cancelled\] listed 3000, moved 3000, /);
  });

  it("shows the queues while the job runs, and only its dead letters once it is finished", () => {
    const running = formatProgressLine(progress(250, 1000), new RunRate());
    expect(running).toMatch(/, queues \(all jobs\): queued 0, in flight 1, dead letters 0$/);
    // A finished move reads the queues while it stops, so they may still count its last message in flight.
    const finished = formatProgressLine(progress(1000, 1000, "done-with-failures"), new RunRate());
    expect(finished).toMatch(/^\[done-with-failures\] .*, dead letters \(all jobs\) 0$/);
    expect(finished).not.toContain("in flight");
  });
});

describe("the rate a move shows", () => {
  afterEach(() => vi.useRealTimers());

  it("counts what this run moved since it started", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const rate = new RunRate();
    vi.setSystemTime(1_004_000);
    expect(rate.perSecond(2000)).toBe(500);
  });

  it("for a resumed job, leaves out what earlier runs moved and the time the job stood still", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const rate = new RunRate();
    rate.resumed();
    expect(rate.perSecond(5000)).toBeUndefined(); // before this run's first progress
    expect(formatProgressLine(progress(5000, 9000), rate)).toContain(", – obj/s,");
    vi.setSystemTime(1_001_000);
    rate.note(5000); // the job had 5,000 moved when this run attached to it
    vi.setSystemTime(1_003_000);
    rate.note(5400); // later progress does not move where the run started
    expect(rate.perSecond(6000)).toBe(500);
    expect(formatProgressLine(progress(6000, 9000), rate)).toContain(", 500 obj/s,");
  });

  it("for a resumed job whose moved keys were read as it attached, has a rate before any progress", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const rate = new RunRate();
    vi.setSystemTime(1_002_000); // the job stood still, and the start took its time: neither counts
    rate.resumed(5000);
    vi.setSystemTime(1_004_000);
    expect(formatProgressLine(progress(6000, 9000), rate)).toContain(", 500 obj/s,");
    rate.note(5800); // a first progress does not move where the run started
    expect(rate.perSecond(6000)).toBe(500);
  });
});

describe("the progress display while the endpoint does not answer", () => {
  afterEach(() => vi.useRealTimers());

  it("says so in a line once no progress has come for 10 s, then every 10 s, and stops saying it with progress", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const { stream, output } = terminal(false);
    const reporter = createProgressReporter({ quiet: false, stream });
    reporter.update(progress(100, 1000));
    vi.advanceTimersByTime(9_000);
    expect(output()).not.toContain("no progress read");
    vi.advanceTimersByTime(2_000);
    expect(output()).toContain("(no progress read for 10 s: the endpoint is not answering;");
    vi.advanceTimersByTime(10_000);
    expect(output()).toContain("(no progress read for 20 s:");
    reporter.update(progress(200, 1000));
    const before = output();
    vi.advanceTimersByTime(5_000);
    expect(output()).toBe(before);
    reporter.stop();
  });

  it("on a terminal, shows it in the bar's state", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const { stream, output } = terminal(true);
    const reporter = createProgressReporter({ quiet: false, stream });
    reporter.update(progress(100, 1000));
    vi.advanceTimersByTime(12_000);
    reporter.stop();
    expect(output()).toMatch(/waiting: the endpoint has not answered for 1\d s/);
  });
});

describe("the line a move prints once its job is open", () => {
  const job = {
    id: "job-7",
    from: "old",
    to: "new",
    prefix: "photos/",
    overwrite: false,
    dryRun: false,
    createdAt: "2026-12-07T10:00:00.000Z",
  } as Job;

  it("names a new job, its route, and how to resume it", () => {
    expect(openedLine({ overwrite: false }, { job, attached: false })).toBe(
      "Job job-7: moving s3://old/photos/ → s3://new/photos/ (if stopped, the same command resumes it)",
    );
  });

  it("says an attached job keeps the options it was started with when this command's differ, and how to change them", () => {
    expect(openedLine({ overwrite: false }, { job, attached: true })).toBe(
      "Continuing job job-7, started 2026-12-07T10:00:00.000Z: s3://old/photos/ → s3://new/photos/",
    );
    expect(openedLine({ overwrite: true, report: "file:///r/" }, { job, attached: true })).toBe(
      "Continuing job job-7, started 2026-12-07T10:00:00.000Z: s3://old/photos/ → s3://new/photos/. It keeps the options it " +
        "was started with (--no-overwrite, report to nowhere), not this command's; to change them, cancel it " +
        "(`s3-image-mover cancel --job job-7`) and move again",
    );
  });
});
