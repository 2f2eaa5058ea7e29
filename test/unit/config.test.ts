import { describe, expect, it } from "vitest";
import { MAX_COPY_CONCURRENCY, moverSettingsFromEnv } from "../../src/config.ts";
import { ConfigError } from "../../src/errors.ts";

describe("moverSettingsFromEnv", () => {
  it("takes COPY_CONCURRENCY up to its bound, and names the variable and the bound past it", () => {
    expect(moverSettingsFromEnv({}).copyConcurrency).toBe(256);
    expect(moverSettingsFromEnv({ COPY_CONCURRENCY: String(MAX_COPY_CONCURRENCY) }).copyConcurrency).toBe(1024);
    expect(() => moverSettingsFromEnv({ COPY_CONCURRENCY: "1025" })).toThrow(
      new ConfigError('Environment variable COPY_CONCURRENCY must be at most 1024, got "1025"'),
    );
    expect(() => moverSettingsFromEnv({ COPY_CONCURRENCY: "0" })).toThrow(/must be a positive integer, got "0"/);
  });
});
