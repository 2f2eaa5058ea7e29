import { ConfigError } from "./errors.ts";

/** Names of the stack's resources when the local runtime creates them itself. */
export const LOCAL_RESOURCES = {
  table: "s3-image-mover-jobs",
  listQueue: "s3-image-mover-list.fifo",
  listDeadLetterQueue: "s3-image-mover-list-dlq.fifo",
  moveQueue: "s3-image-mover-move",
  moveDeadLetterQueue: "s3-image-mover-move-dlq",
} as const;

/** Where a running process finds its table and queues. */
export interface Resources {
  table: string;
  listQueueUrl: string;
  listDeadLetterQueueUrl: string;
  moveQueueUrl: string;
  moveDeadLetterQueueUrl: string;
}

/** Reads a required environment variable, or says which one is missing. */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value === "") {
    throw new ConfigError(`Environment variable ${name} is required`);
  }
  return value;
}

/** The stack's resources as Lambda sees them (serverless.yml sets these variables). */
export function resourcesFromEnv(env: NodeJS.ProcessEnv = process.env): Resources {
  return {
    table: requireEnv("TABLE_NAME", env),
    listQueueUrl: requireEnv("LIST_QUEUE_URL", env),
    listDeadLetterQueueUrl: requireEnv("LIST_DLQ_URL", env),
    moveQueueUrl: requireEnv("MOVE_QUEUE_URL", env),
    moveDeadLetterQueueUrl: requireEnv("MOVE_DLQ_URL", env),
  };
}

/** Tuning of the move path. */
export interface MoverSettings {
  /** Copies in flight per process. */
  copyConcurrency: number;
  /**
   * At this receive count a key that keeps failing is marked failed and sent to the DLQ with its reason; one that
   * S3 only throttled goes back to the queue instead.
   */
  poisonAfterAttempts: number;
  /** Tries per S3 call on the hot path, backing off between them while the failure is transient. */
  s3MaxAttempts: number;
  /** Objects larger than this are copied with parallel UploadPartCopy; always above 5 GiB. */
  multipartThresholdBytes: number;
  partSizeBytes: number;
  /** Keys per ListObjectsV2 page (S3's maximum is 1,000); smaller pages only make sense in tests. */
  listPageKeys: number;
  /**
   * Keys per move message, at most 1,000 (one DeleteObjects). Every message costs a ledger write, a totals update,
   * a DeleteObjects and a report part, so fewer, larger messages cost less per key (docs/SCALING.md).
   */
  batchKeys: number;
}

export const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3; // CopyObject limit: 5 GB

/**
 * Copies in flight in one process, at most. 1,024 at S3's ~20-50 ms per copy is 20,000-50,000 copies a second, far
 * past what one process's CPU signs and S3's 3,500 writes/s per prefix take: more only holds sockets and memory.
 */
export const MAX_COPY_CONCURRENCY = 1024;

export function moverSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): MoverSettings {
  return {
    copyConcurrency: positiveInt(env, "COPY_CONCURRENCY", 256, MAX_COPY_CONCURRENCY),
    poisonAfterAttempts: positiveInt(env, "POISON_AFTER_ATTEMPTS", 5),
    s3MaxAttempts: positiveInt(env, "S3_MAX_ATTEMPTS", 6),
    multipartThresholdBytes: Math.min(positiveInt(env, "MULTIPART_THRESHOLD_BYTES", 1024 ** 3), MAX_SINGLE_COPY_BYTES),
    partSizeBytes: positiveInt(env, "PART_SIZE_BYTES", 256 * 1024 ** 2),
    listPageKeys: Math.min(positiveInt(env, "LIST_PAGE_KEYS", 1000), 1000),
    batchKeys: Math.min(positiveInt(env, "BATCH_KEYS", 1000), 1000),
  };
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new ConfigError(`Environment variable ${name} must be a positive integer, got "${raw}"`);
  }
  if (value > max) throw new ConfigError(`Environment variable ${name} must be at most ${max}, got "${raw}"`);
  return value;
}
