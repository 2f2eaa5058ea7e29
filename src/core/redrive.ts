import { type Message, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { App } from "../app.ts";
import { changeVisibility, deleteMessages, sendMessages } from "../aws/queues.ts";
import { JobNotFoundError } from "../errors.ts";
import { withoutContinuationToken } from "./messages.ts";

export interface RedriveResult {
  /** Messages moved back to the move queue and to the list queue. */
  moved: { move: number; list: number };
  /** Jobs whose messages were moved back; finished ones were reopened as their letters were noted. */
  jobs: string[];
  /**
   * Of those moved back, the dead letters SQS would not delete from their DLQ (five tries each): they reappear there
   * within 60 s of being received, and a later redrive sends them again. The movers skip what a duplicate asks for
   * that is done.
   */
  undeleted: number;
  /** Why the last of those stayed: the error of its delete request, or SQS's code for refusing it. */
  undeletedReason?: string;
  /**
   * A DLQ was left part-drained because SQS failed every delete of a batch (a missing permission, say): sending on
   * would only make more duplicates. Other jobs' letters were still handed back and the jobs reopened.
   */
  stoppedEarly?: boolean;
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
  options: {
    jobId?: string | undefined;
    /** How long a received letter stays hidden on its DLQ, while it is sent and deleted (60 s). */
    visibilitySeconds?: number;
  } = {},
): Promise<RedriveResult> {
  const visibility = options.visibilitySeconds ?? 60;
  const jobs = new Set<string>();
  const move = await moveBack(
    app.clients.sqs,
    app.resources.moveDeadLetterQueueUrl,
    app.resources.moveQueueUrl,
    false,
    options.jobId,
    jobs,
    visibility,
    // Each move letter is noted on its job before it is sent, and carries its id: the job is not over until the
    // movers have settled it. A crash in between leaves the letter on the DLQ with the same id, so the next redrive
    // sends it under the note it left; until then the job stays unfinished, and a local move says to redrive.
    (job, letters, replaced) => app.store.noteRedriven(job, letters, replaced).catch(ignoreMissingJob),
  );
  const list = await moveBack(
    app.clients.sqs,
    app.resources.listDeadLetterQueueUrl,
    app.resources.listQueueUrl,
    true,
    options.jobId,
    jobs,
    visibility,
  );
  const reason = list.reason ?? move.reason;
  return {
    moved: { move: move.moved, list: list.moved },
    jobs: [...jobs],
    undeleted: move.undeleted + list.undeleted,
    ...(reason !== undefined ? { undeletedReason: reason } : {}),
    ...(move.stoppedEarly || list.stoppedEarly ? { stoppedEarly: true } : {}),
  };
}

interface MovedBack {
  moved: number;
  undeleted: number;
  reason?: string;
  stoppedEarly: boolean;
}

async function moveBack(
  sqs: SQSClient,
  from: string,
  to: string,
  fifo: boolean,
  jobId: string | undefined,
  jobs: Set<string>,
  visibilitySeconds: number,
  /** Called before move letters are sent again, per job: their ids on the DLQ, and those an earlier redrive gave them. */
  noteLetters?: (job: string, letters: string[], replaced: string[]) => Promise<void>,
): Promise<MovedBack> {
  const result: MovedBack = { moved: 0, undeleted: 0, stoppedEarly: false };
  // A letter received again in the same redrive (its visibility passed: its delete failed, or the redrive is long) is not
  // sent twice; another job's keeps its newest receipt handle, the only one SQS still takes.
  const sent = new Set<string>();
  const skipped = new Map<string, string>();
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: from,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: visibilitySeconds,
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) break;
    const mine: Array<{ m: Message; job: string | undefined }> = [];
    for (const m of messages) {
      const id = m.MessageId ?? "";
      if (sent.has(id)) continue;
      const job = jobOf(m.Body ?? "");
      if (jobId !== undefined && job !== jobId) skipped.set(id, m.ReceiptHandle ?? "");
      else {
        if (job) jobs.add(job);
        mine.push({ m, job });
      }
    }
    if (mine.length === 0) continue;
    if (noteLetters) {
      const byJob = new Map<string, { letters: string[]; replaced: string[] }>();
      for (const { m, job } of mine) {
        if (!job) continue;
        const noted = byJob.get(job) ?? { letters: [], replaced: [] };
        noted.letters.push(m.MessageId ?? "");
        const earlier = redriveIdOf(m.Body ?? "");
        if (earlier) noted.replaced.push(earlier);
        byJob.set(job, noted);
      }
      for (const [job, { letters, replaced }] of byJob) await noteLetters(job, letters, replaced);
    }
    await sendMessages(
      sqs,
      to,
      mine.map(({ m, job }, i) => ({
        id: String(i),
        // A list token goes back without its shortcut past empty pages, in case the shortcut is what failed.
        body: fifo ? withoutContinuationToken(m.Body ?? "") : withRedriveId(m.Body ?? "", m.MessageId ?? ""),
        ...(fifo ? { groupId: job ?? "redrive", deduplicationId: `redrive-${m.MessageId}` } : {}),
      })),
    );
    for (const { m } of mine) sent.add(m.MessageId ?? "");
    result.moved += mine.length;
    // Delete only after the copy is sent: a crash in between leaves a duplicate, never a loss. What SQS will not
    // delete is tried again, and counted if it stays.
    let requestFailed = false;
    const left = await deleteMessages(
      sqs,
      from,
      mine.map(({ m }) => m.ReceiptHandle ?? ""),
      () => {
        requestFailed = true;
      },
    );
    result.undeleted += left.undeleted.size;
    if (left.reason !== undefined) result.reason = left.reason;
    if (requestFailed && left.undeleted.size === mine.length) {
      result.stoppedEarly = true;
      break;
    }
  }
  // Other jobs' dead letters go back to the DLQ untouched. A request that fails fails the redrive; a letter SQS
  // refuses alone reappears after the receive's 60 s.
  await changeVisibility(
    sqs,
    from,
    [...skipped.values()].map((receiptHandle) => ({ receiptHandle, seconds: 0 })),
    (error) => {
      throw error;
    },
  );
  return result;
}

/** A move letter's body with the id it had on the DLQ, which its mover settles on the job; others as they are. */
function withRedriveId(body: string, letter: string): string {
  try {
    const value = JSON.parse(body) as Record<string, unknown>;
    return typeof value.job === "string" ? JSON.stringify({ ...value, redrive: letter }) : body;
  } catch {
    return body;
  }
}

function ignoreMissingJob(error: unknown): void {
  if (!(error instanceof JobNotFoundError)) throw error; // a message of a deleted job still moves
}

function jobOf(body: string): string | undefined {
  return stringField(body, "job");
}

/** The id an earlier redrive gave a letter that came back to the DLQ unsettled (SQS dead-lettered it again). */
function redriveIdOf(body: string): string | undefined {
  return stringField(body, "redrive");
}

function stringField(body: string, name: string): string | undefined {
  try {
    const value = (JSON.parse(body) as Record<string, unknown>)[name];
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}
