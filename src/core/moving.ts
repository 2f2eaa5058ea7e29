import type { S3Client } from "@aws-sdk/client-s3";
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { LimitFunction } from "p-limit";
import { sendMessages } from "../aws/queues.ts";
import type { MoverSettings } from "../config.ts";
import { ConflictError, describeError, isThrottling, S3CallError } from "../errors.ts";
import { isPageResolved, type JobStore, type Ledger, type PageTotals } from "../jobs/jobStore.ts";
import { multipartCopy } from "../s3/multipartCopy.ts";
import { keptStorageClass, MAX_KEYS_PER_DELETE, type ObjectClient } from "../s3/objectClient.ts";
import type { BatchCounts, MoveMessage, Outcome } from "../types.ts";
import { DEFAULT_BATCH_LIMITS } from "./batching.ts";
import { deadLetterMessages, decodeKey, shortReason } from "./messages.ts";
import { batchReportPart, reportSinkFor } from "./report.ts";

export interface MovingDeps {
  objects: ObjectClient;
  /** For the rare multipart copy; the hot path goes through `objects`. */
  s3: S3Client;
  store: JobStore;
  settings: MoverSettings;
  /** Shared by every batch of the process: caps copies in flight. */
  copyLimit: LimitFunction;
  /** Where a batch's poison keys go, with their reasons, as one message a redrive retries. */
  sqs: SQSClient;
  moveDeadLetterQueueUrl: string;
}

export interface MoveBatchResult {
  counts: BatchCounts;
  /** What this attempt added to the job's totals: exact, so metrics built from it never double-count. */
  added: BatchCounts;
  /**
   * Items still unresolved after this attempt, with their last error: the batch is retried for them. `throttled`:
   * S3 only asked to slow down, so the key is never marked failed for it, however many attempts it takes.
   */
  retry: Array<{ i: number; reason: string; throttled?: true }>;
  /**
   * Items the ledger holds as failed that this attempt put on the DLQ with their reasons: those it failed (poison),
   * and those an earlier attempt of this message failed, since that attempt may have died before their letter.
   */
  failed: Array<{ i: number; reason: string }>;
  /** The job's state when this batch resolved the last key of its page after listing finished, else undefined. */
  jobState?: string;
}

/** Storage classes whose objects need a restore before they can be copied. */
const ARCHIVED = new Set(["GLACIER", "DEEP_ARCHIVE"]);
/** A plain MD5 ETag: single-part, not SSE-KMS/SSE-C. Only then does an equal ETag prove equal bytes. */
const MD5_ETAG = /^"[0-9a-f]{32}"$/;

/**
 * Moves one batch: for every key not yet resolved in the batch's ledger, copy it (conditional on the listed ETag),
 * verify the copy, then delete the verified sources with one conditional DeleteObjects. Outcomes are written to the
 * ledger with compare-and-set and rolled into the page totals idempotently, so a repeat, a duplicate delivery or a
 * crash at any line neither loses nor double-counts a key.
 *
 * `attempt` is the message's receive count: at `settings.poisonAfterAttempts` keys that still fail are marked failed,
 * except those S3 throttled (503 SlowDown): they stay to retry.
 *
 * `stopCopiesAt` and `giveUpCopiesAt` (ms since the epoch) leave the invocation time to record the batch: from the
 * first no key's copy starts (the key is retried, never failed for it) and a multipart copy still running is cut
 * short; from the second a copy S3 has not answered is given up (retried, and failed with a reason at the poison
 * attempt). Otherwise a batch slowed
 * down past the function's timeout (S3 throttling, one huge object, a copy S3 leaves silent) would die with the
 * invocation with nothing recorded, over and over, and reach the DLQ with no reason.
 */
export async function moveBatch(
  deps: MovingDeps,
  message: MoveMessage,
  attempt: number,
  options: {
    /** From then on (ms since the epoch) no copy starts, and a multipart copy still running is cut short. */
    stopCopiesAt?: number;
    /** From then on copies still awaiting S3's answer are given up: the key is retried (failed at the poison attempt). */
    giveUpCopiesAt?: number;
  } = {},
): Promise<MoveBatchResult> {
  // A first delivery has no ledger yet: skip the read. If a duplicate wrote one meanwhile, the compare-and-set
  // write below fails, re-reads and merges, so this saves a round trip without risking a count. A requeued or
  // redriven batch starts its receive count again but has a ledger.
  const firstDelivery =
    attempt <= 1 && message.retryFailed !== true && message.requeued === undefined && message.redrive === undefined;
  // A cancelled job's batch is dropped unmoved. Delivered again, an earlier attempt may have moved some of its keys
  // before it died: those are counted (settled), and nothing more is copied or deleted.
  const cancelled = await deps.store.isCancelled(message.job);
  if (cancelled && firstDelivery) {
    const none = { moved: 0, movedBytes: 0, skipped: 0, failed: 0 };
    return { counts: none, added: none, retry: [], failed: [], jobState: "cancelled" };
  }
  const ledger = firstDelivery
    ? { outcomes: {}, ver: 0 }
    : await deps.store.getLedger(message.job, message.page, message.batch);
  const todo = message.items.filter((item) => needsWork(ledger.outcomes[item.i], message.retryFailed === true));

  const results = new Map<number, KeyResult>();
  const verified: Array<{ i: number; key: string; etag: string; size: number }> = [];
  // Keys whose copy is under way, and whether the batch stopped waiting for them (what they report then is dropped).
  const running = new Set<number>();
  let gaveUp = false;
  const copied = Promise.all(
    todo.map((item) =>
      deps.copyLimit(async () => {
        if (gaveUp) return;
        if (options.stopCopiesAt !== undefined && Date.now() >= options.stopCopiesAt) {
          results.set(item.i, NOT_STARTED);
          return;
        }
        const key = decodeKey(item.k);
        const pending = ledger.outcomes[item.i];
        // A newer version found by an earlier attempt is moved in its own class (none said: STANDARD), not the listed one.
        const source =
          pending?.o === "p"
            ? { etag: pending.e, size: pending.s, storageClass: pending.c }
            : { etag: item.e, size: item.s, storageClass: item.c };
        running.add(item.i);
        // A HEAD that fails while a copy's answer is looked into is this key's error, not the whole batch's.
        const result = await (cancelled
          ? settleWithoutMoving(deps, message, key, source)
          : copyAndVerify(deps, message, key, source, options.stopCopiesAt)
        ).catch(keyError);
        running.delete(item.i);
        if (gaveUp || result === undefined) return;
        if (result.kind === "verified") verified.push({ i: item.i, key, etag: result.etag, size: result.size });
        else results.set(item.i, result);
      }),
    ),
  );
  if ((await untilGivenUp(copied, options.giveUpCopiesAt)) === GAVE_UP) {
    gaveUp = true;
    // The copies still under way go on unheeded (S3 may still make one; the key's retry then copies it again).
    const settled = new Set([...results.keys(), ...verified.map((v) => v.i)]);
    for (const item of todo) {
      if (!settled.has(item.i)) results.set(item.i, running.has(item.i) ? UNANSWERED : NOT_STARTED);
    }
  }
  for (const [i, result] of await deleteVerifiedSources(deps, message, verified)) results.set(i, result);

  const poison = attempt >= deps.settings.poisonAfterAttempts;
  const now = Date.now();
  const ours: Record<string, Outcome> = {};
  const retry: MoveBatchResult["retry"] = [];
  const failed: MoveBatchResult["failed"] = [];
  for (const [i, result] of results) {
    if (result.kind === "resolved" && result.outcome.o === "p") {
      // The source changed after listing or after its copy: the newer version is recorded, then moved on retry.
      ours[i] = result.outcome;
      retry.push({ i, reason: `source changed since listing; moving its newer version ${result.outcome.e}` });
    } else if (result.kind === "resolved") ours[i] = { ...result.outcome, t: now };
    else if (result.kind === "verified")
      continue; // never stored: deleteVerifiedSources resolves every verified key
    else if (poison && !result.throttled) {
      const reason = shortReason(result.reason);
      ours[i] = { o: "f", r: reason, t: now };
      failed.push({ i, reason });
    } else retry.push({ i, reason: result.reason, ...(result.throttled ? { throttled: true as const } : {}) });
  }

  const written = await writeOutcomes(
    deps.store,
    message,
    ledger,
    ours,
    retry.map((r) => r.reason),
  );
  // Their letter goes out before anything below can finish the job, so a job done with failures has every failed
  // key on the DLQ. A repeat may send a key's letter twice; a redrive of the second finds it resolved.
  const deadLetters = deadLettersOf(message, ledger, written, failed);
  if (deadLetters.length > 0) {
    const letters = deadLetterMessages(message, deadLetters, DEFAULT_BATCH_LIMITS.maxMessageBytes);
    await sendMessages(
      deps.sqs,
      deps.moveDeadLetterQueueUrl,
      letters.map((letter, n) => ({ id: `dead-${n}`, body: JSON.stringify(letter) })),
    );
  }
  const errors = [...failed, ...retry].map(({ i, reason }) => ({ key: keyOf(message, i), reason }));
  if (errors.length > 0) await deps.store.recordErrors(message.job, errors);
  if (message.report) {
    // Rewritten on every attempt (same name for the same ledger version), so a crash cannot leave it missing.
    const part = batchReportPart(message, written.outcomes, written.ver);
    await reportSinkFor(message.report, deps.s3).writePart(part.name, part.body);
  }
  const counts = countOutcomes(written.outcomes);
  const { totals, added } = await deps.store.rollUpBatch(
    message.job,
    message.page,
    message.batch,
    counts,
    written.ver,
    written === ledger ? undefined : countOutcomes(ledger.outcomes),
  );
  // A redriven letter whose keys are all settled no longer holds its job open: once its counts are in, and before
  // the check below, which may then finish the job (a crash in between: the replay comes back to that check).
  if (message.redrive !== undefined && retry.length === 0)
    await deps.store.settleRedriven(message.job, message.redrive);
  const resolved = isPageResolved(totals);
  // This call may be the one that resolved the page: its roll-up did, or it added nothing (a replay: its first try
  // may have died before the page was counted).
  const newly = resolved && (!isPageResolved(minusCounts(totals, added)) || isZeroCounts(added));
  const jobState = resolved ? await deps.store.completeIfPagesResolved(message.job, newly) : undefined;
  return { counts, added, retry, failed: deadLetters, ...(jobState ? { jobState } : {}) };
}

/**
 * The message's keys to put on the DLQ: those this attempt failed, and, unless the message is itself a redrive
 * (which retries its failed keys), those the ledger already held as failed: the attempt that failed them may have
 * died before their letter went out. Only keys whose written outcome is still "failed" (a duplicate may have moved
 * one meanwhile).
 */
function deadLettersOf(
  message: MoveMessage,
  read: Ledger,
  written: Ledger,
  failedNow: ReadonlyArray<{ i: number; reason: string }>,
): Array<{ i: number; reason: string }> {
  const reasons = new Map(failedNow.map((f) => [f.i, f.reason]));
  // ver 0: no ledger before this attempt, so nothing it could hold as failed (a first delivery skips the scan).
  if (message.retryFailed !== true && read.ver > 0) {
    for (const item of message.items) {
      const before = read.outcomes[item.i];
      if (before?.o === "f" && !reasons.has(item.i)) reasons.set(item.i, before.r);
    }
  }
  return [...reasons].flatMap(([i, reason]) => (written.outcomes[i]?.o === "f" ? [{ i, reason }] : []));
}

function minusCounts(totals: PageTotals, added: BatchCounts): PageTotals {
  return {
    ...totals,
    moved: totals.moved - added.moved,
    movedBytes: totals.movedBytes - added.movedBytes,
    skipped: totals.skipped - added.skipped,
    failed: totals.failed - added.failed,
  };
}

function isZeroCounts(counts: BatchCounts): boolean {
  return counts.moved === 0 && counts.movedBytes === 0 && counts.skipped === 0 && counts.failed === 0;
}

/** A key whose copy was still queued when the invocation neared its timeout: like a throttled one, it only waits. */
export const NOT_STARTED_REASON = "not started: the mover's invocation neared its timeout; retried by the next one";
const NOT_STARTED: KeyResult = { kind: "error", reason: NOT_STARTED_REASON, throttled: true };

/**
 * A key whose copy S3 had not answered when the invocation neared its timeout: retried, and at the poison attempt
 * failed with this reason (a copy too long for any invocation would otherwise be requeued forever).
 */
const UNANSWERED: KeyResult = {
  kind: "error",
  reason:
    "copy unanswered when the mover's invocation neared its timeout; if it recurs, raise the mover's timeout or lower MULTIPART_THRESHOLD_BYTES",
};

const GAVE_UP = Symbol("gave up");

/**
 * Waits for the batch's copies until `at` (ms since the epoch), then resolves to GAVE_UP. One wait per batch, with a
 * Set of the keys under way, rather than a wait per copy: racing each copy's answer against one shared promise
 * allocates five promises a copy (ours' CPU looked 2-3% higher with it in two A/Bs), and one AbortSignal handed to
 * every request cost the lean client 22% more CPU a copy (bench/README.md, "2026-12-07, night (5)").
 */
async function untilGivenUp(copied: Promise<unknown>, at: number | undefined): Promise<unknown> {
  if (at === undefined) return copied;
  let timer: NodeJS.Timeout | undefined;
  const giveUp = new Promise<typeof GAVE_UP>((resolve) => {
    timer = setTimeout(() => resolve(GAVE_UP), Math.max(0, at - Date.now()));
  });
  try {
    const first = await Promise.race([copied, giveUp]);
    if (first === GAVE_UP) copied.catch(() => undefined); // a later failure is nobody's
    return first;
  } finally {
    clearTimeout(timer);
  }
}

/** An S3 call that failed for one key: retried with the batch (never failed for good while S3 only throttles). */
function keyError(error: unknown): KeyResult {
  return { kind: "error", reason: describeError(error), throttled: error instanceof S3CallError && error.throttled };
}

type KeyResult =
  | { kind: "verified"; etag: string; size: number }
  | { kind: "resolved"; outcome: Outcome }
  | { kind: "error"; reason: string; throttled?: boolean };

function keyOf(message: MoveMessage, i: number): string {
  const item = message.items.find((candidate) => candidate.i === i);
  return item ? decodeKey(item.k) : `#${i}`;
}

function needsWork(outcome: Outcome | undefined, retryFailed: boolean): boolean {
  if (outcome === undefined || outcome.o === "p") return true;
  return outcome.o === "f" && retryFailed;
}

/**
 * What an earlier attempt did to one key of a cancelled job's batch, found without moving anything: a source gone
 * whose copy is in place was moved; a source still there stays, unresolved (undefined), as cancelled keys do.
 */
async function settleWithoutMoving(
  deps: MovingDeps,
  message: MoveMessage,
  key: string,
  listed: { etag: string; size: number },
): Promise<KeyResult | undefined> {
  if (await deps.objects.headObject(message.from, key)) return undefined;
  return resolveVanishedSource(deps, message, key, listed);
}

/**
 * Copies one key and checks the copy. Handles the source changing or vanishing since it was listed:
 * a newer version is recorded as pending and moved instead; a vanished source whose copy is already in place
 * (an earlier attempt got that far) counts as moved.
 */
async function copyAndVerify(
  deps: MovingDeps,
  message: MoveMessage,
  key: string,
  listed: StoredVersion,
  stopCopiesAt: number | undefined,
): Promise<KeyResult> {
  if (listed.storageClass && ARCHIVED.has(listed.storageClass)) {
    return {
      kind: "resolved",
      outcome: { o: "s", r: `archived in ${listed.storageClass}: restore it first, then redrive` },
    };
  }
  // The class it is stored in goes with the copy (keptStorageClass): without it, S3 stores every copy as STANDARD.
  let source = listed;
  for (let round = 0; round < 3; round++) {
    try {
      if (!message.overwrite) {
        const existing = await deps.objects.headObject(message.to, key);
        if (existing && existing.etag !== source.etag) {
          // A multipart ETag differs from a single-part one for the same bytes (and from another part size's): the
          // destination may be an earlier attempt's copy, but it cannot be told from another object, so both stay.
          const comparable = MD5_ETAG.test(source.etag) && MD5_ETAG.test(existing.etag);
          return {
            kind: "resolved",
            outcome: {
              o: "s",
              r: comparable
                ? "destination exists with other content (overwrite off)"
                : "destination exists and its ETag cannot be compared with the source's (multipart); " +
                  "overwrite off, so both stay: move again with overwrite on to replace it",
            },
          };
        }
        if (existing) return { kind: "verified", etag: source.etag, size: source.size };
      }
      const copy =
        source.size > deps.settings.multipartThresholdBytes
          ? await multipartCopy(deps.s3, {
              fromBucket: message.from,
              toBucket: message.to,
              key,
              ifMatch: source.etag,
              size: source.size,
              partSizeBytes: deps.settings.partSizeBytes,
              ...(stopCopiesAt === undefined
                ? {}
                : { stopAt: AbortSignal.timeout(Math.max(0, stopCopiesAt - Date.now())) }),
            })
          : await deps.objects.copyObject({
              fromBucket: message.from,
              toBucket: message.to,
              key,
              ifMatch: source.etag,
              storageClass: keptStorageClass(source.storageClass, message.to),
            });
      return await verifyCopy(deps, message.to, key, source, copy.etag);
    } catch (error) {
      const e = error instanceof S3CallError ? error : new S3CallError("UnknownError", describeError(error), undefined);
      if (e.code === "PreconditionFailed" || e.status === 412) {
        const now = await deps.objects.headObject(message.from, key);
        if (!now) return resolveVanishedSource(deps, message, key, source);
        // The source changed after listing: move the newer version, in its own class.
        source = { etag: now.etag, size: now.size, storageClass: now.storageClass };
        continue;
      }
      if (e.code === "NoSuchKey") return resolveVanishedSource(deps, message, key, source);
      if (e.code === "InvalidObjectState") {
        return { kind: "resolved", outcome: { o: "s", r: "archived: restore it first, then redrive" } };
      }
      return { kind: "error", reason: e.message, throttled: e.throttled };
    }
  }
  return { kind: "resolved", outcome: pendingOutcome(source) };
}

/** A version of a source key: its ETag, size and storage class (undefined: STANDARD). */
interface StoredVersion {
  etag: string;
  size: number;
  storageClass?: string | undefined;
}

/** The newer version to move on retry, with its class, so that the retry copies it into that class. */
function pendingOutcome(version: StoredVersion): Outcome {
  return { o: "p", e: version.etag, s: version.size, ...(version.storageClass ? { c: version.storageClass } : {}) };
}

/**
 * What a copy is checked against: for a plain MD5 ETag, the destination's ETag must equal the source's (same bytes);
 * otherwise (multipart source, SSE-KMS) the destination's size must equal the source's, read with HeadObject.
 */
async function verifyCopy(
  deps: MovingDeps,
  bucket: string,
  key: string,
  source: { etag: string; size: number },
  copiedEtag: string,
): Promise<KeyResult> {
  if (MD5_ETAG.test(source.etag) && copiedEtag === source.etag) {
    return { kind: "verified", etag: source.etag, size: source.size };
  }
  const head = await deps.objects.headObject(bucket, key);
  if (head && head.size === source.size && (!MD5_ETAG.test(source.etag) || !MD5_ETAG.test(head.etag))) {
    return { kind: "verified", etag: source.etag, size: source.size };
  }
  return {
    kind: "error",
    reason: `VerificationFailed: copy of ${key} has ETag ${head?.etag ?? copiedEtag} and ${head?.size ?? "?"} bytes, source ${source.etag} and ${source.size} bytes`,
  };
}

/** The source is gone: moved if the destination holds what we were moving, else someone else deleted it. */
async function resolveVanishedSource(
  deps: MovingDeps,
  message: MoveMessage,
  key: string,
  source: { etag: string; size: number },
): Promise<KeyResult> {
  const destination = await deps.objects.headObject(message.to, key);
  const same =
    destination !== undefined &&
    (MD5_ETAG.test(source.etag) ? destination.etag === source.etag : destination.size === source.size);
  if (same) return { kind: "resolved", outcome: { o: "m", b: source.size, e: source.etag } };
  return { kind: "resolved", outcome: { o: "s", r: "source deleted by someone else before it was moved" } };
}

/**
 * Deletes verified sources, each conditional on the ETag that was copied, 1,000 keys a call. A key already gone
 * counts as moved (its copy is verified); a key changed since the copy becomes pending with its new ETag.
 */
async function deleteVerifiedSources(
  deps: MovingDeps,
  message: MoveMessage,
  verified: ReadonlyArray<{ i: number; key: string; etag: string; size: number }>,
): Promise<Map<number, KeyResult>> {
  const results = new Map<number, KeyResult>();
  for (let start = 0; start < verified.length; start += MAX_KEYS_PER_DELETE) {
    const chunk = verified.slice(start, start + MAX_KEYS_PER_DELETE);
    const byKey = new Map(chunk.map((v) => [v.key, v]));
    try {
      const out = await deps.objects.deleteObjects(
        message.from,
        chunk.map((v) => ({ key: v.key, etag: v.etag })),
      );
      for (const key of out.deleted) {
        const v = byKey.get(key);
        if (v) results.set(v.i, { kind: "resolved", outcome: { o: "m", b: v.size, e: v.etag } });
      }
      for (const error of out.errors) {
        const v = byKey.get(error.key);
        if (!v) continue;
        results.set(v.i, await resolveDeleteError(deps, message, v, error).catch(keyError));
      }
      // Anything the answer did not mention is retried rather than assumed.
      for (const v of chunk) {
        if (!results.has(v.i)) results.set(v.i, { kind: "error", reason: "DeleteObjects did not report this key" });
      }
    } catch (error) {
      const failed = keyError(error);
      for (const v of chunk) results.set(v.i, failed);
    }
  }
  return results;
}

async function resolveDeleteError(
  deps: MovingDeps,
  message: MoveMessage,
  v: { key: string; etag: string; size: number },
  error: { code: string; message: string },
): Promise<KeyResult> {
  if (error.code === "NoSuchKey") return { kind: "resolved", outcome: { o: "m", b: v.size, e: v.etag } };
  if (error.code === "PreconditionFailed") {
    // The source changed after its copy. Only S3 saying it is gone (404: undefined) makes our copy the moved one; a
    // HEAD that fails says nothing, so it throws and the key is retried.
    const now = await deps.objects.headObject(message.from, v.key);
    if (!now) return { kind: "resolved", outcome: { o: "m", b: v.size, e: v.etag } };
    return { kind: "resolved", outcome: pendingOutcome(now) };
  }
  return { kind: "error", reason: `${error.code}: ${error.message}`, throttled: isThrottling(error.code, undefined) };
}

/** Merges our outcomes into the ledger with compare-and-set; "moved" wins over everything and is never overridden. */
async function writeOutcomes(
  store: JobStore,
  message: MoveMessage,
  read: Ledger,
  ours: Record<string, Outcome>,
  lastErrors: string[],
): Promise<Ledger> {
  let ledger = read;
  for (;;) {
    const merged: Record<string, Outcome> = { ...ledger.outcomes };
    for (const [i, outcome] of Object.entries(ours)) merged[i] = mergeOutcome(merged[i], outcome);
    const changed = Object.entries(merged).some(([i, o]) => JSON.stringify(ledger.outcomes[i]) !== JSON.stringify(o));
    if (!changed && (ledger.ver > 0 || lastErrors.length === 0)) return ledger;
    try {
      return await store.writeLedger(
        message.job,
        message.page,
        message.batch,
        { outcomes: merged, ver: ledger.ver },
        lastErrors,
      );
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      ledger = await store.getLedger(message.job, message.page, message.batch);
    }
  }
}

export function mergeOutcome(stored: Outcome | undefined, ours: Outcome): Outcome {
  if (stored?.o === "m") return stored;
  if (ours.o === "m") return ours;
  if (stored?.o === "s") return stored;
  return ours;
}

/** A batch's counts, derived from its ledger: the only source of truth for counting. */
export function countOutcomes(outcomes: Record<string, Outcome>): BatchCounts {
  const counts: BatchCounts = { moved: 0, movedBytes: 0, skipped: 0, failed: 0 };
  for (const outcome of Object.values(outcomes)) {
    if (outcome.o === "m") {
      counts.moved += 1;
      counts.movedBytes += outcome.b;
    } else if (outcome.o === "s") counts.skipped += 1;
    else if (outcome.o === "f") counts.failed += 1;
  }
  return counts;
}
