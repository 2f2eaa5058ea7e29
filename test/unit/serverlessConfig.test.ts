// serverless.yml as the local runtime reads it (src/config.ts): the invariants the deployment relies on, checked in
// milliseconds. test/integration/packaging.test.ts checks the same on the CloudFormation template the framework builds.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadStackSettings, parseStackSettings } from "../../src/stackSettings.ts";

const settings = loadStackSettings();

describe("serverless.yml", () => {
  it.each([settings.lister, settings.mover])(
    "$functionName: visibility timeout ≥ 6 × timeout + batching window",
    (consumer) => {
      // https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
      expect(consumer.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(
        6 * consumer.timeoutSeconds + consumer.batchingWindowSeconds,
      );
    },
  );

  it.each([settings.lister, settings.mover])(
    "$functionName: concurrency capped within Lambda's 2–1,000",
    (consumer) => {
      expect(consumer.maximumConcurrency).toBeGreaterThanOrEqual(2);
      expect(consumer.maximumConcurrency).toBeLessThanOrEqual(1000);
    },
  );

  it("has no batching window on the FIFO list queue, which Lambda does not allow", () => {
    expect(settings.lister.batchingWindowSeconds).toBe(0);
  });

  it("keeps the literal values the local runtime parses (no variables where numbers are read)", () => {
    const doc = parse(readFileSync(new URL("../../serverless.yml", import.meta.url), "utf8")) as {
      functions: Record<string, { timeout: unknown; memorySize: unknown }>;
    };
    for (const [name, fn] of Object.entries(doc.functions)) {
      expect(Number.isInteger(fn.timeout), `${name}.timeout`).toBe(true);
      expect(Number.isInteger(fn.memorySize), `${name}.memorySize`).toBe(true);
    }
    for (const consumer of [settings.lister, settings.mover]) {
      expect(Number.isInteger(consumer.visibilityTimeoutSeconds)).toBe(true);
      expect(Number.isInteger(consumer.batchSize)).toBe(true);
    }
  });
});

describe("loadStackSettings keeps what it parsed", () => {
  const yml = readFileSync(new URL("../../serverless.yml", import.meta.url), "utf8");
  const work = mkdtempSync(join(tmpdir(), "stack-settings-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("returns the parsed settings, then the same from its kept copy", () => {
    const file = join(work, "serverless.yml");
    writeFileSync(file, yml);
    const cache = join(work, "cache");
    const first = loadStackSettings(file, cache);
    expect(first).toEqual(parseStackSettings(yml));
    expect(readdirSync(cache)).toHaveLength(1);
    expect(loadStackSettings(file, cache)).toEqual(first);
  });

  it("parses again when serverless.yml changes, never serving the old copy", () => {
    const file = join(work, "changed.yml");
    const cache = join(work, "cache-changed");
    writeFileSync(file, yml);
    const before = loadStackSettings(file, cache);
    const changed = yml.replace(/VisibilityTimeout: (\d+)/, (_, n: string) => `VisibilityTimeout: ${Number(n) + 7}`);
    expect(changed).not.toBe(yml);
    writeFileSync(file, changed);
    const after = loadStackSettings(file, cache);
    expect(after).toEqual(parseStackSettings(changed));
    expect(after).not.toEqual(before);
  });

  it("still reads serverless.yml when the cache directory cannot be written", () => {
    const file = join(work, "plain.yml");
    writeFileSync(file, yml);
    const notADirectory = join(work, "a-file");
    writeFileSync(notADirectory, "");
    expect(loadStackSettings(file, join(notADirectory, "cache"))).toEqual(parseStackSettings(yml));
  });
});
