import { readFile } from "node:fs/promises";
import { type Message, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { listingDeps } from "../../src/app.ts";
import { continueListing } from "../../src/core/listing.ts";
import type { ReportLine } from "../../src/core/report.ts";
import { startMove } from "../../src/core/start.ts";
import type { LocalApp } from "../../src/local/localApp.ts";
import { lambdaContext, toSqsRecord } from "../../src/local/runtime.ts";
import type { MoveMessage } from "../../src/types.ts";

/** Opens a job and runs its whole listing in this process, leaving its move messages queued. */
export async function listJob(app: LocalApp, input: Record<string, unknown>): Promise<string> {
  const { jobId } = await startMove(app, input);
  const progress = await continueListing(listingDeps(app), jobId, () => false);
  if (!progress.finished) throw new Error(`listing of ${jobId} did not finish`);
  return jobId;
}

/** Receives up to `max` move messages as Lambda would hand them to the mover. */
export function receiveMoveRecords(app: LocalApp, max = 10): Promise<SQSRecord[]> {
  return receiveRecords(app, app.resources.moveQueueUrl, app.resources.moveQueueArn, max);
}

/** Receives up to `max` list tokens as Lambda would hand them to the lister. */
export function receiveListRecords(app: LocalApp, max = 1): Promise<SQSRecord[]> {
  return receiveRecords(app, app.resources.listQueueUrl, app.resources.listQueueArn, max);
}

async function receiveRecords(app: LocalApp, queueUrl: string, queueArn: string, max: number): Promise<SQSRecord[]> {
  const records: SQSRecord[] = [];
  // Patient: a runtime stopped by an earlier test may hold them for a moment before it hands them back.
  for (let empty = 0; records.length < max && empty < 30; ) {
    const out = await app.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.min(10, max - records.length),
        WaitTimeSeconds: 0,
        VisibilityTimeout: 30,
        MessageSystemAttributeNames: ["All"],
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) {
      empty += 1;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    records.push(...messages.map((m) => toSqsRecord(m, queueArn)));
  }
  return records;
}

/** Every message visible on a queue now, received in one sweep without waiting, and left in flight for 30 s. */
export async function receiveVisible(app: LocalApp, queueUrl: string): Promise<Message[]> {
  const messages: Message[] = [];
  for (;;) {
    const out = await app.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: 30,
      }),
    );
    if (!out.Messages?.length) return messages;
    messages.push(...out.Messages);
  }
}

export const moverContext = () => lambdaContext({ functionName: "mover", timeoutSeconds: 120 });

/** The dead letters of one job on the move DLQ, left visible for whoever reads next. */
export async function deadLettersOf(app: LocalApp, jobId: string): Promise<MoveMessage[]> {
  const out = await app.clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: app.resources.moveDeadLetterQueueUrl,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
    }),
  );
  return (out.Messages ?? []).map((m) => JSON.parse(m.Body ?? "{}") as MoveMessage).filter((m) => m.job === jobId);
}

/** A JSON Lines move report, parsed. */
export async function readReport(file: string | undefined): Promise<ReportLine[]> {
  if (!file) throw new Error("the move wrote no report file");
  return (await readFile(file, "utf8"))
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as ReportLine);
}
