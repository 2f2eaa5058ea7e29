import { describe, expect, it } from "vitest";
import { median, ratiosByRound } from "../../bench/stats.ts";

describe("ratiosByRound", () => {
  it("divides each run by ours in the same round, and only where both ran", () => {
    // Round 2 is ours' slow one and round 3 has no run of ours: paired, the peer is 2× in every round it has a pair.
    const ours = [
      { round: 1, seconds: 4 },
      { round: 2, seconds: 6 },
      { round: 4, seconds: 5 },
    ];
    const peer = [
      { round: 1, seconds: 8 },
      { round: 2, seconds: 12 },
      { round: 3, seconds: 7 },
      { round: 4, seconds: 10 },
    ];
    const byRound = ratiosByRound(peer, ours);
    expect(byRound).toEqual([
      { round: 1, ratio: 2 },
      { round: 2, ratio: 2 },
      { round: 4, ratio: 2 },
    ]);
    // The ratio of the medians says otherwise (9 s over 5 s): what the pairs are for.
    expect(median(peer.map((r) => r.seconds)) / median(ours.map((r) => r.seconds))).toBeCloseTo(1.8);
  });

  it("gives nothing without runs of ours to pair with", () => {
    expect(ratiosByRound([{ round: 1, seconds: 3 }], [])).toEqual([]);
  });
});
