import { randomUUID } from "node:crypto";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { sendMessages } from "../aws/queues.ts";
import { ListingStalledError, S3CallError } from "../errors.ts";
import type { JobStore, PageRecord } from "../jobs/jobStore.ts";
import type { ObjectClient } from "../s3/objectClient.ts";
import { isFinished, type Job, type ListCursor, type ListedObject, type ListMessage } from "../types.ts";
import { type BatchLimits, DEFAULT_BATCH_LIMITS, fitPageRecord, splitIntoBatches } from "./batching.ts";
import { buildMoveMessage } from "./messages.ts";

export interface ListingDeps {
  /** Lists the source: the lean client parses a page of 1,000 keys with a few regular expressions, not the SDK's XML parser. */
  objects: ObjectClient;
  sqs: SQSClient;
  store: JobStore;
  listQueueUrl: string;
  moveQueueUrl: string;
  /** Keys per ListObjectsV2 page: 1,000 (S3's maximum) unless a test wants many pages. */
  pageKeys?: number;
  /** How a page splits into move messages. */
  batchLimits?: BatchLimits;
}

export interface ListingProgress {
  pages: number;
  keys: number;
  /** The listing reached the end of the source. */
  finished: boolean;
  /** Another lister moved the cursor first: this one stopped. */
  superseded: boolean;
  /** Empty truncated pages followed (S3 gives them over runs of delete markers). */
  emptyPages: number;
  /** Continuation tokens S3 refused (400): their pages were listed from the cursor's start key. */
  refusedTokens: number;
}

/**
 * Continues a job's listing from its cursor until the source is exhausted or `shouldStop()` says the time budget
 * is spent, then hands the rest on with a new list token.
 *
 * Per page: record it (exact keys, ETags, sizes) with a conditional put, send its batches from the record (the same
 * messages on every repeat), then advance the cursor conditionally. A crash anywhere leaves the list token in flight,
 * and its retry resumes from the cursor: no key is skipped, and a page is never rebuilt from a later listing.
 * One message group per job on a FIFO queue keeps one lister per job at a time.
 */
export async function continueListing(
  deps: ListingDeps,
  jobId: string,
  shouldStop: () => boolean,
  /** The cursor the token was sent with: its page is read and listed while the job is, then used if still current. */
  hint?: ListCursor,
  /** The SQS message id of the token: a redelivery of it hands on as the same message, which SQS drops. */
  tokenId?: string,
): Promise<ListingProgress> {
  const progress = newProgress();
  const early = hint && {
    recorded: deps.store.getPage(jobId, hint.seq),
    listed: listSourcePage(deps.objects, hint, deps.pageKeys, shouldStop),
  };
  early?.recorded.catch(() => undefined); // awaited below if the hint holds
  early?.listed.catch(() => undefined);
  let job = await deps.store.getJob(jobId);
  if (job.listingDone) {
    // A repeat of the lister that ended the listing, maybe because its own done check failed. The movers' checks
    // all came before the listing's end if every page resolved first, so this check may be the job's only one.
    // A dry run's end is the listing's end: its lister may have died between the two.
    if (!isFinished(job.state))
      await (job.dryRun ? deps.store.finishDryRun(jobId) : deps.store.completeIfResolved(jobId));
    return { ...progress, finished: true };
  }
  if (job.state === "cancelled") return progress;
  const hintHolds =
    early !== undefined &&
    hint?.seq === job.seq &&
    hint.startAfter === job.startAfter &&
    hint.from === job.from &&
    hint.prefix === job.prefix;
  if (job.dryRun) return countListing(deps, job, shouldStop, hintHolds ? early.listed : undefined, tokenId);
  let prefetched: { startAfter: string; page: Promise<SourcePage> } | undefined = hintHolds
    ? { startAfter: job.startAfter, page: early.listed }
    : undefined;
  for (let round = 0; ; round++) {
    const seq = job.seq;
    // Only the first page of a run can be recorded already (by a lister that stopped or crashed). Later pages are
    // new, and putPageIfAbsent would still return a record that appeared meanwhile.
    const existing = round > 0 ? undefined : hintHolds ? await early.recorded : await deps.store.getPage(jobId, seq);
    if (existing) await deps.store.ensureTotals(jobId, existing);
    const listed = existing
      ? undefined
      : await (prefetched?.startAfter === job.startAfter
          ? prefetched.page
          : listSourcePage(deps.objects, job, deps.pageKeys, shouldStop));
    progress.emptyPages += listed?.emptyPages ?? 0;
    progress.refusedTokens += listed?.tokenRefused ? 1 : 0;
    if (listed?.resumeToken !== undefined) {
      // Out of time inside a run of empty pages: nothing to record yet; the next lister goes on from S3's token.
      await sendListToken(deps.sqs, deps.listQueueUrl, job, { continuationToken: listed.resumeToken, tokenId });
      return progress;
    }
    const page = existing ?? (await recordPage(deps, job, listed as SourcePage));
    const lastKey = page.objects.at(-1)?.k;
    // Pipelining: list the next page while this one's batches go out and the cursor moves. Not sooner: parsing a
    // page of 1,000 keys takes 10-20 ms, and arriving during the record's write it held up this page's batches.
    prefetched = undefined;
    if (!page.last && lastKey !== undefined) {
      const next = listSourcePage(deps.objects, { ...job, startAfter: lastKey }, deps.pageKeys, shouldStop);
      next.catch(() => undefined); // awaited (and its error raised) on the next round, if there is one
      prefetched = { startAfter: lastKey, page: next };
    }
    // Totals and batches go out together: a mover that finds no totals yet waits for them (rollUpBatch), and a
    // crash before both are written leaves the token to retry this recorded page, which writes them again.
    await Promise.all([existing ? undefined : deps.store.ensureTotals(jobId, page), sendPageBatches(deps, job, page)]);
    if (!(await deps.store.advanceCursor(jobId, seq, page, page.last))) {
      return { ...progress, superseded: true };
    }
    progress.pages += 1;
    progress.keys += page.objects.length;
    if (page.last) {
      await deps.store.completeIfResolved(jobId);
      return { ...progress, finished: true };
    }
    job = { ...job, seq: seq + 1, startAfter: lastKey ?? job.startAfter };
    if (shouldStop()) {
      // Hand-on before this token is deleted: the chain can repeat, never die.
      await sendListToken(deps.sqs, deps.listQueueUrl, job);
      return progress;
    }
  }
}

/**
 * A dry run's listing: pages are counted into the cursor (objects, bytes) and nothing is recorded or sent.
 * Nothing moves, so a crash simply lists again from the cursor.
 */
async function countListing(
  deps: ListingDeps,
  start: Job,
  shouldStop: () => boolean,
  /** The first page, listed from the token's cursor while the job was read (with its continuation token, if any). */
  first: Promise<SourcePage> | undefined,
  tokenId: string | undefined,
): Promise<ListingProgress> {
  const progress = newProgress();
  let job = start;
  for (let round = 0; ; round++) {
    const listed = round === 0 ? first : undefined;
    const source = await (listed ?? listSourcePage(deps.objects, job, deps.pageKeys, shouldStop));
    progress.emptyPages += source.emptyPages;
    progress.refusedTokens += source.tokenRefused ? 1 : 0;
    if (source.resumeToken !== undefined) {
      await sendListToken(deps.sqs, deps.listQueueUrl, job, { continuationToken: source.resumeToken, tokenId });
      return progress;
    }
    const page: PageRecord = { seq: job.seq, objects: source.objects, batches: [], last: source.last };
    if (!(await deps.store.advanceCursor(job.id, job.seq, page, page.last))) return { ...progress, superseded: true };
    progress.pages += 1;
    progress.keys += page.objects.length;
    if (page.last) {
      await deps.store.finishDryRun(job.id);
      return { ...progress, finished: true };
    }
    job = { ...job, seq: job.seq + 1, startAfter: page.objects.at(-1)?.k ?? job.startAfter };
    if (shouldStop()) {
      await sendListToken(deps.sqs, deps.listQueueUrl, job);
      return progress;
    }
  }
}

/**
 * A token asking a lister to continue a job from its cursor, with the cursor as it stands now as a hint.
 * One message group per job: one lister at a time.
 */
export async function sendListToken(
  sqs: SQSClient,
  listQueueUrl: string,
  job: Pick<Job, "id" | "from" | "prefix" | "seq" | "startAfter">,
  /** A hand-on inside a run of empty pages after the cursor. */
  past?: {
    /** S3's token as far as this lister got (see ListCursor.continuationToken). */
    continuationToken: string;
    /** The SQS message id of the token this lister was handed. */
    tokenId: string | undefined;
  },
): Promise<void> {
  const cursor: ListCursor = { from: job.from, prefix: job.prefix, seq: job.seq, startAfter: job.startAfter };
  if (past) cursor.continuationToken = past.continuationToken;
  const message: ListMessage = { job: job.id, cursor };
  // A hand-on inside a run of empty pages keeps the cursor's seq, and one that got no further than the last (its
  // shortcut refused) carries the same token: neither may be collapsed into the token before it, or listing ends.
  // Named after the token it continues: should that token be redelivered (its lister died after this send), the
  // second lister's hand-on is dropped as a duplicate, and the listing stays one chain of tokens. Only within SQS's
  // 5-minute deduplication window: a redelivery after the list queue's visibility timeout (12 minutes on Lambda)
  // makes a second chain. Both chains list the same pages under the cursor's conditional writes, so no key is lost or
  // counted twice; the cost is repeated listing until one chain meets a page the other recorded.
  const after = past === undefined ? "" : `-${past.tokenId || randomUUID()}`;
  await sendMessages(sqs, listQueueUrl, [
    {
      id: "token",
      body: JSON.stringify(message),
      groupId: job.id,
      // Collapses repeated hand-ons within SQS's 5-minute window; correctness does not depend on it.
      deduplicationId: `${job.id}-${job.seq}${after}`,
    },
  ]);
}

export interface SourcePage {
  objects: ListedObject[];
  /** The source has no keys after these. */
  last: boolean;
  /** Empty truncated pages followed to reach these keys. */
  emptyPages: number;
  /** Set (with no keys) when `shouldStop` said so inside a run of empty pages: where S3 had got to. */
  resumeToken?: string;
  /** S3 refused the job's continuation token: the page was listed from the start key. */
  tokenRefused?: true;
}

/**
 * One ListObjectsV2 page (up to 1,000 keys) after the job's cursor, cut to fit a page record.
 *
 * S3 may answer a truncated page with no keys, for example over a run of delete markers: listing again after the
 * same key would return the same empty page forever, so such a page is followed by its continuation token until
 * keys or the end come. The cursor stays a key, so a page record is never empty unless it is the last.
 */
export async function listSourcePage(
  objects: ObjectClient,
  job: Pick<Job, "from" | "prefix" | "startAfter"> & Pick<ListCursor, "continuationToken">,
  pageKeys = 1000,
  /** Asked before each empty page is followed: a run of them can outlast a lister's time. */
  shouldStop: () => boolean = () => false,
): Promise<SourcePage> {
  const input = { prefix: job.prefix ?? "", startAfter: job.startAfter ?? "", maxKeys: pageKeys };
  const { continuationToken } = job;
  let tokenRefused = false;
  let out =
    continuationToken === undefined
      ? await objects.listPage(job.from, input)
      : // A shortcut past empty pages another lister walked. Should S3 refuse it (a malformed or foreign token: 400
        // InvalidArgument, or a 400 without a code), the start key gives the same keys. Any other failure is the
        // listing's: the list token is retried, and redrive sends it on without the shortcut.
        await objects.listPage(job.from, { ...input, continuationToken }).catch((error: unknown) => {
          if (!(error instanceof S3CallError && (error.code === "InvalidArgument" || error.status === 400)))
            throw error;
          tokenRefused = true;
          return objects.listPage(job.from, input);
        });
  let emptyPages = 0;
  while (out.objects.length === 0 && out.truncated) {
    const token = out.nextContinuationToken;
    if (!token) {
      throw new ListingStalledError(job.from, input.startAfter, "without a NextContinuationToken");
    }
    emptyPages += 1;
    if (shouldStop()) return { objects: [], last: false, emptyPages, resumeToken: token, ...refused(tokenRefused) };
    out = await objects.listPage(job.from, { ...input, continuationToken: token });
    if (out.objects.length === 0 && out.truncated && out.nextContinuationToken === token) {
      throw new ListingStalledError(job.from, input.startAfter, "with the same NextContinuationToken again");
    }
  }
  const fit = fitPageRecord(out.objects);
  return {
    objects: out.objects.slice(0, fit),
    last: fit === out.objects.length && !out.truncated,
    emptyPages,
    ...refused(tokenRefused),
  };
}

const refused = (tokenRefused: boolean) => (tokenRefused ? { tokenRefused: true as const } : {});

function newProgress(): ListingProgress {
  return { pages: 0, keys: 0, finished: false, superseded: false, emptyPages: 0, refusedTokens: 0 };
}

async function recordPage(deps: ListingDeps, job: Job, source: SourcePage): Promise<PageRecord> {
  const page: PageRecord = {
    seq: job.seq,
    objects: source.objects,
    last: source.last,
    batches: splitIntoBatches(source.objects, deps.batchLimits ?? DEFAULT_BATCH_LIMITS),
  };
  return deps.store.putPageIfAbsent(job.id, page);
}

/** Sends every batch of a page to the move queue; ids are stable, so a repeat sends the same messages. */
export async function sendPageBatches(deps: ListingDeps, job: Job, page: PageRecord): Promise<void> {
  const messages = page.batches.map(([start, end], batch) => ({
    id: `b${batch}`,
    body: JSON.stringify(
      buildMoveMessage(
        job,
        page.seq,
        batch,
        page.objects.slice(start, end).map((object, i) => ({ i, object })),
      ),
    ),
  }));
  await sendMessages(deps.sqs, deps.moveQueueUrl, messages);
}
