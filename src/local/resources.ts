import { CreateTableCommand, DescribeTableCommand, ResourceNotFoundException } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { AwsClients } from "../aws/clients.ts";
import { LOCAL_RESOURCES, type Resources } from "../config.ts";
import { loadStackSettings, type StackSettings } from "../stackSettings.ts";

export interface LocalResources extends Resources {
  listQueueArn: string;
  moveQueueArn: string;
}

/** A local set-up under way: each part resolves as soon as it is done, so a caller can go on with what it needs. */
export interface LocalSetup {
  /** The job table exists (created and ACTIVE if it was missing). */
  table: Promise<void>;
  /** The table and all four queues exist. */
  resources: Promise<LocalResources>;
  /** The settings serverless.yml holds. */
  stack: Promise<StackSettings>;
}

/**
 * Starts creating the job table and the four queues where they are missing (the same shape serverless.yml deploys:
 * a FIFO list queue and a standard move queue, each with its dead-letter queue), and reading serverless.yml.
 * Independent calls go out together: on a 20-100 ms link, set-up time is round trips.
 *
 * `createAfter` (a move's checks of its buckets): nothing is created before it resolves, and nothing at all if it
 * rejects, so that a refused move leaves no table or queue behind. The table is looked up meanwhile.
 */
export function startLocalSetup(clients: AwsClients, createAfter?: Promise<unknown>): LocalSetup {
  // serverless.yml is read once set-up's first requests are on the wire, not before: the sends connect in the first
  // turn of the event loop and write in the second. (A first read parses it: 20-100 ms of cold YAML code.)
  const stack = new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve))).then(() =>
    loadStackSettings(),
  );
  const table = ensureTable(clients, createAfter);
  // The queues do not wait for the table, which takes three round trips when it is created.
  const queues = ensureQueues(clients, stack, createAfter);
  const resources = Promise.all([table, queues]).then(([, found]) => ({ table: LOCAL_RESOURCES.table, ...found }));
  return { table, resources, stack };
}

/** Whether the job table exists here: a move has run at this endpoint. Changes nothing. */
export async function jobTableExists(clients: AwsClients): Promise<boolean> {
  try {
    await clients.dynamo.send(new DescribeTableCommand({ TableName: LOCAL_RESOURCES.table }));
    return true;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return false;
    throw error;
  }
}

/** The whole set-up of a local command. */
export async function prepareLocalResources(
  clients: AwsClients,
): Promise<{ resources: LocalResources; stack: StackSettings }> {
  const setup = startLocalSetup(clients);
  const [resources, stack] = await Promise.all([setup.resources, setup.stack]);
  return { resources, stack };
}

/** Both dead-letter queues, then the two queues that redrive into them (their RedrivePolicy names the DLQ's ARN). */
async function ensureQueues(
  clients: AwsClients,
  settings: StackSettings | Promise<StackSettings>,
  createAfter: Promise<unknown> | undefined,
): Promise<Omit<LocalResources, "table">> {
  await createAfter;
  const fifo = { FifoQueue: "true", ContentBasedDeduplication: "false" };
  const retention = { MessageRetentionPeriod: "1209600" };
  const region = clients.target.region ?? "us-east-1";
  const [listDlq, moveDlq] = await Promise.all([
    ensureQueue(clients.sqs, region, LOCAL_RESOURCES.listDeadLetterQueue, { ...fifo, ...retention }),
    ensureQueue(clients.sqs, region, LOCAL_RESOURCES.moveDeadLetterQueue, retention),
  ]);
  const { lister, mover } = await settings;
  const [list, move] = await Promise.all([
    ensureQueue(clients.sqs, region, LOCAL_RESOURCES.listQueue, {
      ...fifo,
      VisibilityTimeout: String(lister.visibilityTimeoutSeconds),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: listDlq.arn, maxReceiveCount: lister.maxReceiveCount }),
    }),
    ensureQueue(clients.sqs, region, LOCAL_RESOURCES.moveQueue, {
      VisibilityTimeout: String(mover.visibilityTimeoutSeconds),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: moveDlq.arn, maxReceiveCount: mover.maxReceiveCount }),
    }),
  ]);
  return {
    listQueueUrl: list.url,
    listQueueArn: list.arn,
    listDeadLetterQueueUrl: listDlq.url,
    moveQueueUrl: move.url,
    moveQueueArn: move.arn,
    moveDeadLetterQueueUrl: moveDlq.url,
  };
}

async function ensureQueue(sqs: SQSClient, region: string, name: string, attributes: Record<string, string>) {
  const created = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  const url = created.QueueUrl as string;
  const derived = queueArnFromUrl(url, region);
  if (derived) return { url, arn: derived };
  // A URL of another shape (a proxy's, say): ask, at one more round trip.
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }));
  return { url, arn: out.Attributes?.QueueArn as string };
}

/**
 * A queue's ARN from its URL, which ends in /<12-digit account>/<name> on AWS, LocalStack and fauxqs alike, and the
 * client's region (the one the queue was created in): saves a GetQueueAttributes round trip per queue at set-up.
 */
export function queueArnFromUrl(url: string, region: string): string | undefined {
  const match = /^https?:\/\/[^/]+\/(\d{12})\/([\w-]{1,80}(?:\.fifo)?)$/.exec(url);
  if (!match) return undefined;
  const partition = region.startsWith("cn-") ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws";
  return `arn:${partition}:sqs:${region}:${match[1]}:${match[2]}`;
}

async function ensureTable(clients: AwsClients, createAfter: Promise<unknown> | undefined): Promise<void> {
  const TableName = LOCAL_RESOURCES.table;
  try {
    await clients.dynamo.send(new DescribeTableCommand({ TableName }));
    return;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  await createAfter;
  await clients.dynamo
    .send(
      new CreateTableCommand({
        TableName,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: "pk", AttributeType: "S" },
          { AttributeName: "sk", AttributeType: "S" },
        ],
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
      }),
    )
    .catch((error: unknown) => {
      if ((error as Error).name !== "ResourceInUseException") throw error; // another process created it first
    });
  for (let i = 0; i < 50; i++) {
    const out = await clients.dynamo.send(new DescribeTableCommand({ TableName }));
    if (out.Table?.TableStatus === "ACTIVE") return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
