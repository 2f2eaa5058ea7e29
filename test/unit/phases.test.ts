import { describe, expect, it } from "vitest";
import { copyRate, formatPhaseTable, medianPhases, type PhaseInput } from "../../bench/phases.ts";
import { median } from "../../bench/stats.ts";

// Three runs of 10,000 copies each; every expected value below follows from these numbers by hand.
const RUNS: PhaseInput[] = [
  { seconds: 4.0, copies: { count: 10_000, firstMs: 900, lastMs: 3_400 }, cpu: { tool: 4, proxy: 2, emulator: 2 } },
  { seconds: 5.0, copies: { count: 10_000, firstMs: 1_000, lastMs: 4_000 }, cpu: { tool: 5, proxy: 2, emulator: 1 } },
  { seconds: 4.4, copies: { count: 10_000, firstMs: 1_400, lastMs: 4_300 }, cpu: { tool: 3, proxy: 3, emulator: 3 } },
];

describe("medianPhases", () => {
  it("takes each phase's median over the runs on its own", () => {
    const phases = medianPhases(RUNS);
    // Chosen so that no median equals the mean: a mean would fail every line.
    expect(phases?.firstCopySeconds).toBeCloseTo(1.0); // 0.9, 1.0, 1.4
    expect(phases?.copiesPerSecond).toBeCloseTo(9_999 / 2.9); // 9,999 gaps: 4,000, 3,333, 3,448 per second
    expect(phases?.tailSeconds).toBeCloseTo(0.6); // 0.6, 1.0, 0.1
    expect(phases?.rigCores).toBeCloseTo(2); // 8/4 = 2, 8/5 = 1.6, 9/4.4 = 2.05
  });

  it("leaves out runs that copied nothing, and says undefined when none did", () => {
    const none: PhaseInput = { seconds: 9, cpu: { tool: 1, proxy: 1, emulator: 1 } };
    expect(medianPhases([none, RUNS[0] as PhaseInput])?.firstCopySeconds).toBeCloseTo(0.9);
    expect(medianPhases([none])).toBeUndefined();
    expect(medianPhases([])).toBeUndefined();
  });
});

describe("formatPhaseTable", () => {
  const ceiling = { firstCopySeconds: 0.4, copiesPerSecond: 4_000, tailSeconds: 0.05, rigCores: 1.7 };
  const ours = { firstCopySeconds: 0.9, copiesPerSecond: 3_000, tailSeconds: 0.25, rigCores: 1.6 };

  it("gives each tool's copy rate as a share of the ceiling's, and skips tools without phases", () => {
    const table = formatPhaseTable(
      [
        { tool: "ours", phases: ours },
        { tool: "ceiling", phases: ceiling },
        { tool: "aws-defaults", phases: undefined },
      ],
      { cpu: true },
    ).split("\n");
    expect(table).toHaveLength(4);
    expect(table[2]).toBe("| ours | 0.90 | 3,000 | 75% | 0.25 | 1.60 |");
    expect(table[3]).toBe("| ceiling | 0.40 | 4,000 | 100% | 0.05 | 1.70 |");
  });

  it("says n/a for cores without CPU accounting, – for the share without a ceiling, and nothing without rows", () => {
    expect(formatPhaseTable([{ tool: "ours", phases: ours }], { cpu: false }).split("\n")[2]).toBe(
      "| ours | 0.90 | 3,000 | – | 0.25 | n/a |",
    );
    expect(formatPhaseTable([{ tool: "ours", phases: undefined }], { cpu: true })).toBe("");
  });
});

describe("copyRate", () => {
  it("counts the gaps between copies, and has no rate for fewer than two or no time between", () => {
    expect(copyRate({ count: 11, firstMs: 1_000, lastMs: 2_000 })).toBe(10);
    expect(copyRate({ count: 1, firstMs: 1_000, lastMs: 1_000 })).toBeUndefined();
    expect(copyRate({ count: 5, firstMs: 1_000, lastMs: 1_000 })).toBeUndefined();
  });
});

describe("median", () => {
  it("is the middle value, the mean of the two middle ones, or NaN for none", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
