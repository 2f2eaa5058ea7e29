import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { listingDeps } from "../../src/app.ts";
import { continueListing } from "../../src/core/listing.ts";
import { startMove } from "../../src/core/start.ts";
import type { LocalApp } from "../../src/local/localApp.ts";
import { lambdaContext, toSqsRecord } from "../../src/local/runtime.ts";

/** Opens a job and runs its whole listing in this process, leaving its move messages queued. */
export async function listJob(app: LocalApp, input: Record<string, unknown>): Promise<string> {
  const { jobId } = await startMove(app, input);
  const progress = await continueListing(listingDeps(app), jobId, () => false);
  if (!progress.finished) throw new Error(`listing of ${jobId} did not finish`);
  return jobId;
}

/** Receives up to `max` move messages as Lambda would hand them to the mover. */
export async function receiveMoveRecords(app: LocalApp, max = 10): Promise<SQSRecord[]> {
  const records: SQSRecord[] = [];
  // Patient: a runtime stopped by an earlier test may hold them for a moment before it hands them back.
  for (let empty = 0; records.length < max && empty < 30; ) {
    const out = await app.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: app.resources.moveQueueUrl,
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
    records.push(...messages.map((m) => toSqsRecord(m, app.resources.moveQueueArn)));
  }
  return records;
}

export const moverContext = () => lambdaContext({ functionName: "mover", timeoutSeconds: 120 });
