import { describe, expect, it } from "vitest";
import { overlappingJobs } from "../../src/core/start.ts";
import type { Job } from "../../src/types.ts";

function job(id: string, fields: Partial<Job>): Job {
  return {
    id,
    from: "photos",
    to: "archive",
    prefix: "",
    overwrite: true,
    dryRun: false,
    state: "moving",
    seq: 0,
    startAfter: "",
    listed: 0,
    listedBytes: 0,
    listingDone: false,
    createdAt: "2026-12-08T00:00:00.000Z",
    updatedAt: "2026-12-08T00:00:00.000Z",
    ...fields,
  };
}

describe("overlappingJobs", () => {
  const ours = job("ours", { from: "photos", to: "archive", prefix: "2024/" });

  it.each([
    ["the same source, a prefix holding ours", { from: "photos", to: "elsewhere", prefix: "" }],
    ["the same source, a prefix inside ours", { from: "photos", to: "elsewhere", prefix: "2024/05/" }],
    ["the same destination from another source", { from: "camera", to: "archive", prefix: "2024/" }],
    ["one writing into our source", { from: "camera", to: "photos", prefix: "2024/" }],
    ["one reading our destination", { from: "archive", to: "cold", prefix: "2024/" }],
  ])("finds %s", async (_name, fields) => {
    const other = job("other", fields);
    expect(await overlappingJobs({ listJobs: async () => [ours, other] }, ours)).toEqual([other]);
  });

  it.each([
    ["prefixes apart", { prefix: "2025/" }],
    ["other buckets", { from: "camera", to: "cold" }],
    ["a finished job", { state: "done" as const }],
    ["a cancelled job", { state: "cancelled" as const }],
    ["a dry run", { dryRun: true }],
  ])("leaves out %s", async (_name, fields) => {
    const other = job("other", { from: "photos", to: "archive", prefix: "2024/", ...fields });
    expect(await overlappingJobs({ listJobs: async () => [ours, other] }, ours)).toEqual([]);
  });

  it("finds a job whose S3 report goes where this one lists, and one listing where this one's report goes", async () => {
    const writesIntoOurs = job("writer", { from: "camera", to: "cold", prefix: "", report: "s3://photos/2024/r/" });
    const listsOurReport = job("lister", { from: "logs", to: "cold", prefix: "" });
    const reporting = { ...ours, report: "s3://logs/moves/" };
    const apart = job("apart", { from: "camera", to: "cold", prefix: "", report: "s3://photos-reports/r/" });
    expect(await overlappingJobs({ listJobs: async () => [writesIntoOurs, apart] }, ours)).toEqual([writesIntoOurs]);
    expect(await overlappingJobs({ listJobs: async () => [listsOurReport] }, reporting)).toEqual([listsOurReport]);
    // Beside the prefix this job lists, a report is no concern of it.
    const besideOurs = job("beside", { from: "camera", to: "cold", prefix: "", report: "s3://photos/2025-reports/" });
    expect(await overlappingJobs({ listJobs: async () => [besideOurs] }, ours)).toEqual([]);
  });

  it("finds none, rather than fail the start, when the job list cannot be read", async () => {
    const unreadable = { listJobs: () => Promise.reject(new Error("ProvisionedThroughputExceededException")) };
    expect(await overlappingJobs(unreadable, ours)).toEqual([]);
  });

  it("looks for none when the job is a dry run, which moves nothing", async () => {
    const other = job("other", { prefix: "2024/" });
    expect(await overlappingJobs({ listJobs: async () => [other] }, { ...ours, dryRun: true })).toEqual([]);
  });
});
