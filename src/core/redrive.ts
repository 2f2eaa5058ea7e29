import { type Message, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { App } from "../app.ts";
import { changeVisibility, deleteMessages, sendMessages } from "../aws/queues.ts";
import { withoutContinuationToken } from "./messages.ts";

export interface RedriveResult {
  /** Messages moved back to the move queue and to the list queue. */
  moved: { move: number; list: number };
  /** Jobs whose messages were moved back; finished ones are reopened. */
  jobs: string[];
  /**
   * Of those moved back, the dead letters SQS would not delete from their DLQ (five tries each): they reappear there
   * within 60 s of being received, and a later redrive sends them again. The movers skip what a duplicate asks for
   * that is done.
   */
  undeleted: number;
  /** The last error of a delete request that failed whole, when some stayed undeleted for it. */
  undeletedReason?: string;
}

/**
 * Moves dead letters back to their source queues (all jobs, or only `jobId`'s) and reopens their jobs, so the next
 * mover (deployed or a local `move`) retries them; keys that failed are retried, keys since resolved are skipped.
 *
 * Messages are received, re-sent and then deleted, so each one is counted and its job known; SQS's own
 * StartMessageMoveTask does the same server-side but reports neither, and the embedded emulator lacks it.
 */
export async function redriveDeadLetters(
  app: App,
  options: { jobId?: string | undefined } = {},
): Promise<RedriveResult> {
  const jobs = new Set<string>();
  const deleteErrors: { last?: unknown } = {};
  const move = await moveBack(
    app.clients.sqs,
    app.resources.moveDeadLetterQueueUrl,
    app.resources.moveQueueUrl,
    false,
    options.jobId,
    jobs,
    deleteErrors,
  );
  const list = await moveBack(
    app.clients.sqs,
    app.resources.listDeadLetterQueueUrl,
    app.resources.listQueueUrl,
    true,
    options.jobId,
    jobs,
    deleteErrors,
  );
  for (const job of jobs) await app.store.reopen(job).catch(() => undefined); // a message of a deleted job still moves
  const undeleted = move.undeleted + list.undeleted;
  const lastError = deleteErrors.last;
  return {
    moved: { move: move.moved, list: list.moved },
    jobs: [...jobs],
    undeleted,
    ...(undeleted > 0 && lastError !== undefined ? { undeletedReason: errorText(lastError) } : {}),
  };
}

async function moveBack(
  sqs: SQSClient,
  from: string,
  to: string,
  fifo: boolean,
  jobId: string | undefined,
  jobs: Set<string>,
  deleteErrors: { last?: unknown },
): Promise<{ moved: number; undeleted: number }> {
  let moved = 0;
  let undeleted = 0;
  const skipped: Message[] = [];
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: from, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) break;
    const mine = messages.filter((m) => {
      const job = jobOf(m.Body ?? "");
      if (jobId !== undefined && job !== jobId) return false;
      if (job) jobs.add(job);
      return true;
    });
    skipped.push(...messages.filter((m) => !mine.includes(m)));
    if (mine.length > 0) {
      await sendMessages(
        sqs,
        to,
        mine.map((m, i) => ({
          id: String(i),
          // A list token goes back without its shortcut past empty pages, in case the shortcut is what failed.
          body: fifo ? withoutContinuationToken(m.Body ?? "") : (m.Body ?? ""),
          ...(fifo ? { groupId: jobOf(m.Body ?? "") ?? "redrive", deduplicationId: `redrive-${m.MessageId}` } : {}),
        })),
      );
      // Delete only after the copy is sent: a crash in between leaves a duplicate, never a loss. What SQS will not
      // delete, refused or failing whole, is tried again and counted if it stays; the redrive goes on, so the other
      // jobs' letters are still handed back and the jobs reopened.
      const left = await deleteMessages(
        sqs,
        from,
        mine.map((m) => m.ReceiptHandle ?? ""),
        (error) => {
          deleteErrors.last = error;
        },
      );
      undeleted += left.size;
      moved += mine.length;
    }
  }
  // Other jobs' dead letters go back to the DLQ untouched. A request that fails fails the redrive; a letter SQS
  // refuses alone reappears after the receive's 60 s.
  await changeVisibility(
    sqs,
    from,
    skipped.map((m) => ({ receiptHandle: m.ReceiptHandle ?? "", seconds: 0 })),
    (error) => {
      throw error;
    },
  );
  return { moved, undeleted };
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function jobOf(body: string): string | undefined {
  try {
    const value = JSON.parse(body) as { job?: unknown };
    return typeof value.job === "string" ? value.job : undefined;
  } catch {
    return undefined;
  }
}
