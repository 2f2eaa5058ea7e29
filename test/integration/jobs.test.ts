import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalApp } from "../../src/local/localApp.ts";
import type { MoveRequest } from "../../src/types.ts";
import { type Harness, startHarness } from "../support/harness.ts";

describe("opening a job (the job table on the emulator)", () => {
  let harness: Harness;
  let app: LocalApp;
  beforeAll(async () => {
    harness = await startHarness();
    app = await harness.app();
  });
  afterAll(() => harness.stop());

  const request = (prefix: string): MoveRequest => ({
    from: "jobs-src",
    to: "jobs-dst",
    prefix,
    overwrite: true,
    dryRun: false,
  });

  it("opens one job for starts racing on the same from/to/prefix: the others attach to it, and no other record is left", async () => {
    const before = new Set((await app.store.listJobs(100)).map((job) => job.id));
    const opened = await Promise.all(Array.from({ length: 8 }, () => app.store.openJob(request("race/"))));

    const ids = new Set(opened.map((o) => o.job.id));
    expect(ids.size).toBe(1);
    expect(opened.filter((o) => !o.attached)).toHaveLength(1);
    const listed = (await app.store.listJobs(100)).filter((job) => !before.has(job.id));
    expect(listed.map((job) => job.id)).toEqual([...ids]);
    expect(listed[0]?.state).toBe("listing");
  });

  it("attaches a second start to the unfinished job without adding a record", async () => {
    const first = await app.store.openJob(request("again/"));
    const count = (await app.store.listJobs(100)).length;
    const second = await app.store.openJob(request("again/"));

    expect(second).toMatchObject({ attached: true, job: { id: first.job.id } });
    expect(await app.store.listJobs(100)).toHaveLength(count);
  });
});
