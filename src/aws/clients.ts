import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { ConfigError } from "../errors.ts";
import { createRegionalS3Client } from "../s3/regionalS3Client.ts";

/** Where AWS is: a custom endpoint (emulator, LocalStack) or the real thing through the default chain. */
export interface AwsTarget {
  endpoint?: string | undefined;
  region?: string | undefined;
  /** Sockets per client; sized to the number of requests kept in flight. */
  maxSockets?: number | undefined;
  /** How long a call may wait in silence for its answer before it fails (and is retried); see IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: { s3: number; queuesAndTable: number } | undefined;
}

/**
 * Silence, not duration: S3 trickles whitespace while it copies a large part, so a long copy is never silent for a
 * minute, and SQS and DynamoDB answer within a second or two (the local runtime's long polls wait 1 s). Without it an
 * endpoint that takes connections and never answers held every call, and a move, forever.
 */
export const IDLE_TIMEOUT_MS = { s3: 60_000, queuesAndTable: 30_000 };
const MIN_IDLE_TIMEOUT_MS = 1500;

export interface AwsClients {
  s3: S3Client;
  sqs: SQSClient;
  dynamo: DynamoDBDocumentClient;
  target: AwsTarget;
}

/** Resolves the endpoint from an option or AWS_ENDPOINT_URL; undefined means real AWS. */
export function resolveTarget(
  options: { endpoint?: string | undefined; region?: string | undefined; maxSockets?: number | undefined },
  env: NodeJS.ProcessEnv = process.env,
): AwsTarget {
  const endpoint = options.endpoint ?? (env.AWS_ENDPOINT_URL || undefined);
  if (endpoint !== undefined && !/^https?:$/.test(URL.parse(endpoint)?.protocol ?? "")) {
    throw new ConfigError(
      `The endpoint "${endpoint}" (--endpoint or AWS_ENDPOINT_URL) is not an http:// or https:// URL, such as http://127.0.0.1:4566`,
    );
  }
  const idle = env.IDLE_TIMEOUT_MS ? Number(env.IDLE_TIMEOUT_MS) : undefined;
  // Past the local runtime's 1 s long polls, which are silent while they wait.
  if (idle !== undefined && !(Number.isInteger(idle) && idle >= MIN_IDLE_TIMEOUT_MS)) {
    throw new ConfigError(
      `Environment variable IDLE_TIMEOUT_MS must be a whole number of milliseconds, ${MIN_IDLE_TIMEOUT_MS} or more, got "${env.IDLE_TIMEOUT_MS}"`,
    );
  }
  return {
    endpoint,
    region: options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1",
    maxSockets: options.maxSockets,
    // One silence for every call, the lean S3 client's too: a slow link may need more, a test less.
    ...(idle ? { idleTimeoutMs: { s3: idle, queuesAndTable: idle } } : {}),
  };
}

export function createClients(target: AwsTarget, env: NodeJS.ProcessEnv = process.env): AwsClients {
  const common = commonConfig(target, env);
  const idle = target.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
  // Each call goes to its bucket's region, learnt from S3's redirect.
  const s3 = createRegionalS3Client({
    ...common,
    forcePathStyle: target.endpoint !== undefined,
    requestHandler: httpHandler(target.maxSockets ?? 256, idle.s3),
    // Standard mode backs each throttled request off exponentially with jitter. The SDK's adaptive mode adds a
    // client-wide rate limiter that, measured with 3% injected SlowDowns, cut throughput from ~300 to ~20 objects/s;
    // concurrency caps (copyConcurrency, maximumConcurrency) bound the load instead. S3_RETRY_MODE=adaptive opts in.
    retryMode: env.S3_RETRY_MODE === "adaptive" ? "adaptive" : "standard",
    maxAttempts: 6,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const sqs = new SQSClient({
    ...common,
    requestHandler: httpHandler(64, idle.queuesAndTable),
    retryMode: "standard",
    maxAttempts: 6,
  });
  const dynamo = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      ...common,
      requestHandler: httpHandler(64, idle.queuesAndTable),
      retryMode: "standard",
      maxAttempts: 8,
    }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  return { s3, sqs, dynamo, target };
}

export function destroyClients(clients: AwsClients): void {
  clients.s3.destroy();
  clients.sqs.destroy();
  clients.dynamo.destroy();
}

function commonConfig(target: AwsTarget, env: NodeJS.ProcessEnv) {
  const config: { region: string; endpoint?: string; credentials?: { accessKeyId: string; secretAccessKey: string } } =
    { region: target.region ?? "us-east-1" };
  if (target.endpoint !== undefined) {
    config.endpoint = target.endpoint;
    // Emulators accept any key; a user without AWS credentials set should still reach one.
    if (!env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE) {
      config.credentials = { accessKeyId: "test", secretAccessKey: "test" };
    }
  }
  return config;
}

function httpHandler(maxSockets: number, idleTimeoutMs: number): NodeHttpHandler {
  return new NodeHttpHandler({
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
    connectionTimeout: 5_000,
    // Not requestTimeout: in this handler it only logs a warning, unless told to throw, and it counts the whole call.
    socketTimeout: idleTimeoutMs,
  });
}
