/** Base of every error this project raises on purpose; `name` says which, `cause` keeps the original. */
export class MoverError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input from a user: nothing was changed. */
export class ValidationError extends MoverError {}

/** A setting the process needs is missing or malformed. */
export class ConfigError extends MoverError {}

/** A bucket that does not exist or cannot be reached with these credentials. */
export class BucketError extends MoverError {
  readonly bucket: string;
  constructor(bucket: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.bucket = bucket;
  }
}

/** A job id that the job table does not hold. */
export class JobNotFoundError extends MoverError {
  readonly jobId: string;
  constructor(jobId: string) {
    super(`No job with id "${jobId}". Run \`s3-image-mover status\` to list recent jobs.`);
    this.jobId = jobId;
  }
}

/** S3 answered a listing that cannot go on: the lister fails, and its list token is retried, then dead-lettered. */
export class ListingStalledError extends MoverError {
  readonly bucket: string;
  constructor(bucket: string, startAfter: string, detail: string) {
    super(
      `ListObjectsV2 of bucket "${bucket}" after ${startAfter ? `"${startAfter}"` : "the start"} answered an empty truncated page ${detail}: the listing cannot go on from there.`,
    );
    this.bucket = bucket;
  }
}

/** A compare-and-set write lost against another writer; the caller re-reads and tries again. */
export class ConflictError extends MoverError {}

/**
 * One failed S3 call, classified: `transient` errors are retried later, the others are final for this key
 * unless the cause is fixed (then redrive).
 */
export class S3CallError extends MoverError {
  readonly code: string;
  readonly status: number | undefined;
  readonly transient: boolean;
  /** S3 asked us to slow down (503 SlowDown and kin): normal at its per-prefix limits, never a reason to give up. */
  readonly throttled: boolean;
  constructor(code: string, message: string, status: number | undefined, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
    this.status = status;
    this.transient = isTransient(code, status);
    this.throttled = isThrottling(code, status);
  }
}

// https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html (503 Slow Down)
const THROTTLING_CODES = new Set([
  "SlowDown",
  "ServiceUnavailable",
  "Throttling",
  "ThrottlingException",
  "TooManyRequests",
]);

export function isThrottling(code: string, status: number | undefined): boolean {
  return THROTTLING_CODES.has(code) || status === 503 || status === 429;
}

const TRANSIENT_CODES = new Set([
  "InternalError",
  "ServiceUnavailable",
  "SlowDown",
  "RequestTimeout",
  "RequestTimeTooSkewed",
  "OperationAborted",
  "ConditionalRequestConflict",
  "TimeoutError",
  "NetworkingError",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "socket hang up",
]);

function isTransient(code: string, status: number | undefined): boolean {
  if (TRANSIENT_CODES.has(code)) return true;
  if (status === undefined) return true; // no answer at all: the connection failed
  return status >= 500 || status === 409 || status === 429;
}

/** A short, single-line reason for reports and DLQ messages. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split("\n")[0] ?? error.name;
  return String(error);
}
