// Small statistics the bench reports with.

/** The median; NaN for no values. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * A tool's time over ours, round by round: each counted run divided by ours in the same round, for the rounds where
 * both have one. Runs next to each other share the machine's state of the moment, so these ratios drift less than
 * the ratio of the two medians on a machine whose speed wanders.
 */
export function ratiosByRound(
  tool: ReadonlyArray<{ round: number; seconds: number }>,
  ours: ReadonlyArray<{ round: number; seconds: number }>,
): Array<{ round: number; ratio: number }> {
  const oursByRound = new Map(ours.map((run) => [run.round, run.seconds]));
  return tool.flatMap((run) => {
    const base = oursByRound.get(run.round);
    return base === undefined || base <= 0 ? [] : [{ round: run.round, ratio: run.seconds / base }];
  });
}
