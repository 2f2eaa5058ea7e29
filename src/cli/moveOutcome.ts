import type { MoveProgress } from "../local/localMove.ts";

/**
 * What a finished `move` command says last, and its exit code: 0 only when every key it listed was moved. The
 * message, when there is one, says what is left and the command that goes on from there.
 */
export function moveOutcome(result: Pick<MoveProgress, "job" | "counts">): { exitCode: 0 | 1; message?: string } {
  const { job, counts } = result;
  const allMoved = job.state === "done" && counts.moved === job.listed;
  if (job.state === "done" && job.listed === 0) {
    return { exitCode: 0, message: `Nothing to move: no keys under s3://${job.from}/${job.prefix}` };
  }
  if (allMoved) return { exitCode: 0 };
  const { failed, skipped } = counts;
  const unresolved = job.listed - counts.moved - failed - skipped;
  const redriven = job.redriven?.length ?? 0;
  let message: string;
  if (job.state === "cancelled" && job.listingDone && counts.moved === job.listed) {
    // The cancel came after the last key had moved: nothing was stopped.
    return { exitCode: 0, message: `Job ${job.id} was cancelled, but every key it listed had already moved.` };
  }
  if (job.state === "cancelled") {
    message =
      `Job ${job.id} was cancelled: the keys it had not moved stay in the source. ` +
      "A new `move` starts a new job for them.";
  } else if (job.listingError && !job.listingDone) {
    message =
      `Job ${job.id} stopped listing after ${job.listed} keys: ${job.listingError.reason} ` +
      "Its list token is on the list DLQ. After fixing the cause run `s3-image-mover redrive` and move again.";
  } else if (failed === 0 && unresolved === 0 && redriven > 0) {
    // Every key is resolved, yet the job waits for letters a redrive noted and no mover has retried: none was queued
    // for this move, so they are on a dead-letter queue again, or lost (a purged queue).
    message =
      `Job ${job.id} has resolved every key it listed, but ${redriven} redriven ${redriven === 1 ? "letter" : "letters"} ` +
      "of it has not been retried, which holds it open. Run `s3-image-mover redrive` and move again; or, if its " +
      `dead-letter queues are empty, end it with \`s3-image-mover cancel --job ${job.id}\` (nothing is left to move).`;
  } else if (failed === 0 && unresolved === 0) {
    // Skipped keys are not retried: a redrive has nothing to send, and a new job would skip them again.
    message =
      `Job ${job.id} moved every key but ${skipped} it skipped, which it did not delete from the source; the report ` +
      "gives each one's reason (such as a destination key with other content under --no-overwrite, or a source " +
      "deleted by someone else meanwhile).";
  } else {
    message =
      `Job ${job.id} did not move every key: ${failed} failed, ${skipped} skipped, ${unresolved} unresolved. ` +
      `See \`s3-image-mover status --job ${job.id}\`; after fixing the cause run \`s3-image-mover redrive\` and move again.`;
  }
  return { exitCode: 1, message };
}
