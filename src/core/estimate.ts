import { DEFAULT_INPUTS, estimateMove } from "./costModel.ts";

/** What a dry run reports: how much would move, how long it would take and what it would cost on AWS. */
export interface DryRunEstimate {
  objects: number;
  bytes: number;
  /** Wall time on Lambda as deployed (serverless.yml's concurrency), from the cost model. */
  seconds: number;
  /** What limits that time: listing, Lambda scaling, S3's per-prefix rate, client CPU, latency. */
  binding: string;
  /** US dollars, us-east-1 prices from the cost model's table. */
  costs: { s3Copy: number; s3List: number; sqs: number; lambda: number; dynamodb: number; total: number };
}

/**
 * Estimates a move of `objects` totalling `bytes` with the cost model (src/core/costModel.ts, docs/SCALING.md):
 * cost = objects × (1 COPY + 0.01 DeleteObjects) × $0.005/1,000 + ⌈objects/1,000⌉ LIST × $0.005/1,000
 *        + SQS (~7 requests per 1,000 keys) × $0.40/M + Lambda GB-s + DynamoDB (~129 WRU, ~22 RRU per 1,000 keys).
 */
export function estimateFromListing(objects: number, bytes: number): DryRunEstimate {
  if (objects === 0) {
    return {
      objects,
      bytes,
      seconds: 0,
      binding: "nothing to move",
      costs: { s3Copy: 0, s3List: 0, sqs: 0, lambda: 0, dynamodb: 0, total: 0 },
    };
  }
  const estimate = estimateMove({ ...DEFAULT_INPUTS, objects, avgKb: Math.max(bytes / objects / 1024, 0.001) });
  return { objects, bytes, seconds: estimate.seconds, binding: estimate.binding, costs: estimate.costs };
}

export function formatEstimate(estimate: DryRunEstimate): string {
  const c = estimate.costs;
  return [
    `Would move ${estimate.objects} objects (${(estimate.bytes / 1e6).toFixed(1)} MB).`,
    `Estimated time on Lambda as deployed: ${formatSeconds(estimate.seconds)} (bound by ${estimate.binding}).`,
    `Estimated AWS cost: $${c.total.toFixed(4)} = S3 COPY $${c.s3Copy.toFixed(4)} + LIST $${c.s3List.toFixed(4)} + ` +
      `SQS $${c.sqs.toFixed(4)} + Lambda $${c.lambda.toFixed(4)} + DynamoDB $${c.dynamodb.toFixed(4)}.`,
  ].join("\n");
}

function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
