import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { ConfigError } from "./errors.ts";

// Only the local runtime reads serverless.yml; Lambda bundles never import this module (nor the YAML parser).

/** How an SQS event source feeds one function: the same numbers on Lambda and in the local runtime. */
export interface ConsumerSettings {
  functionName: "lister" | "mover";
  batchSize: number;
  batchingWindowSeconds: number;
  timeoutSeconds: number;
  maximumConcurrency: number | undefined;
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
  environment: Record<string, string>;
}

export interface StackSettings {
  lister: ConsumerSettings;
  mover: ConsumerSettings;
}

const SERVERLESS_YML = new URL("../serverless.yml", import.meta.url);

/** Reads the event-source settings the local runtime needs from serverless.yml. */
export function loadStackSettings(path: URL | string = SERVERLESS_YML): StackSettings {
  const doc = parse(readFileSync(path, "utf8")) as ServerlessDoc;
  return {
    lister: consumerSettings(doc, "lister", "ListQueue"),
    mover: consumerSettings(doc, "mover", "MoveQueue"),
  };
}

interface ServerlessDoc {
  functions: Record<
    string,
    {
      timeout?: number;
      environment?: Record<string, string>;
      events?: Array<{
        sqs?: { batchSize?: number; maximumBatchingWindow?: number; maximumConcurrency?: number };
      }>;
    }
  >;
  resources: {
    Resources: Record<
      string,
      { Properties: { VisibilityTimeout?: number; RedrivePolicy?: { maxReceiveCount?: number } } }
    >;
  };
}

function consumerSettings(
  doc: ServerlessDoc,
  functionName: ConsumerSettings["functionName"],
  queueResource: string,
): ConsumerSettings {
  const fn = doc.functions[functionName];
  const sqs = fn?.events?.find((event) => event.sqs)?.sqs;
  const queue = doc.resources.Resources[queueResource]?.Properties;
  if (!fn || !sqs || !queue) {
    throw new ConfigError(
      `serverless.yml must declare function "${functionName}" with an sqs event on ${queueResource}`,
    );
  }
  return {
    functionName,
    batchSize: sqs.batchSize ?? 10,
    batchingWindowSeconds: sqs.maximumBatchingWindow ?? 0,
    timeoutSeconds: fn.timeout ?? 6,
    maximumConcurrency: sqs.maximumConcurrency,
    visibilityTimeoutSeconds: queue.VisibilityTimeout ?? 30,
    maxReceiveCount: queue.RedrivePolicy?.maxReceiveCount ?? 10,
    environment: fn.environment ?? {},
  };
}
