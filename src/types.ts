/** What a user asks for: move every object under `prefix` from one bucket to another. */
export interface MoveRequest {
  from: string;
  to: string;
  prefix: string;
  /** false: keys that already exist in the destination with other content are skipped, never overwritten. */
  overwrite: boolean;
  /** true: list and estimate only; nothing is queued, copied or deleted. */
  dryRun: boolean;
  /** Where the move report goes: s3://bucket/prefix/ (Lambda) or file:///dir/ (local runtime). */
  report?: string;
}

export type JobState = "listing" | "moving" | "done" | "done-with-failures" | "cancelled";

/** A finished job changes no more: nothing is left to list or move (cancelled: nothing more will be). */
export function isFinished(state: JobState): boolean {
  return state === "done" || state === "done-with-failures" || state === "cancelled";
}

/** The job record: what to move, where the listing stands, and when things happened. */
export interface Job extends MoveRequest {
  id: string;
  state: JobState;
  /** Next page to list; pages are numbered from 0. */
  seq: number;
  /** Last key recorded in a page; the next page starts after it. */
  startAfter: string;
  listed: number;
  listedBytes: number;
  listingDone: boolean;
  /**
   * Pages counted resolved (all their keys moved, skipped or failed). It may overcount, never undercount: the job's
   * totals are summed once it reaches `seq` after listing ends.
   */
  resolvedPages?: number;
  /**
   * Set on jobs opened since pages are counted. A job opened before (and resumed by this version) resolved pages
   * uncounted, so its checks sum the totals on every page resolved after listing, as they did then.
   */
  countsPages?: boolean;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  /** The lister's last failure, until it lists a page again: a listing stopped on its list DLQ says why here. */
  listingError?: { reason: string; attempt: number; at: string };
  /**
   * Dead letters of the job redriven and not yet settled by a mover (their message ids on the DLQ). Their keys
   * count as failed until they are retried, so the job may look finished while these are still to run.
   */
  redriven?: string[];
  /** The most recent key errors, newest batch first. */
  lastErrors?: Array<{ key: string; reason: string; at: string }>;
  /** Progress samples of the last two minutes, for rates. */
  samples?: Array<{ t: number; moved: number; bytes: number }>;
}

/** One object as the listing saw it; short names keep page records and messages small. */
export interface ListedObject {
  /** key */
  k: string;
  /** ETag, quoted as S3 gives it */
  e: string;
  /** size in bytes */
  s: number;
  /** storage class, when not STANDARD */
  c?: string;
}

/** A key batch as it travels on the move queue. Keys are base64url so any key survives SQS's XML rules. */
export interface MoveMessage {
  job: string;
  from: string;
  to: string;
  overwrite: boolean;
  page: number;
  batch: number;
  /** Position of each item within the batch, as the ledger knows it. */
  items: Array<{ i: number; k: string; e: string; s: number; c?: string }>;
  /** Set on messages the mover sent to the DLQ itself: a redrive retries their failed keys. */
  retryFailed?: boolean;
  /** Why each item failed, on DLQ messages only. */
  reasons?: Record<string, string>;
  /**
   * How often the mover has sent this batch's throttled keys back to the queue as a fresh message: SQS counts
   * receives per message, so a long spell of 503 SlowDown never reaches the queue's maxReceiveCount.
   */
  requeued?: number;
  /** Where movers write the job's report parts: s3://bucket/prefix/ or file:///dir/. */
  report?: string;
  /** The dead letter this message was redriven from (its id on the DLQ), settled on the job once its keys are. */
  redrive?: string;
}

/** A list token: "continue this job's listing from its cursor". */
export interface ListMessage {
  job: string;
  /** Where the cursor stood when the token was sent: a hint that lets the lister list while it reads the job. */
  cursor?: ListCursor;
}

export interface ListCursor {
  from: string;
  prefix: string;
  seq: number;
  startAfter: string;
  /**
   * Set by a lister whose time ran out inside a run of empty truncated pages after `startAfter`: S3's token for how
   * far it got, so the next lister goes on from there instead of walking the run again. A shortcut only: listing
   * from `startAfter` gives the same keys.
   */
  continuationToken?: string;
}

/**
 * The resolution of one key: moved (bytes, the ETag moved), skipped (with why), failed (with why), or pending (the
 * source changed after listing and this newer version is being moved); `t` is when it was resolved (epoch ms).
 */
export type Outcome =
  | { o: "m"; b: number; e?: string; t?: number }
  | { o: "s"; r: string; t?: number }
  | { o: "f"; r: string; t?: number }
  | { o: "p"; e: string; s: number; c?: string; t?: number }; // c: the newer version's storage class, if not STANDARD

/** Counts of one batch, as rolled into its page's totals. */
export interface BatchCounts {
  moved: number;
  movedBytes: number;
  skipped: number;
  failed: number;
}

/** Counts of a job, summed over its pages. */
export interface JobCounts extends BatchCounts {
  listed: number;
  listedBytes: number;
}
