// `status` without --job: one line per recent job.
import { describe, expect, it } from "vitest";
import { formatJobList } from "../../src/core/status.ts";
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
