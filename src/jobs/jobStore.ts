import { createHash, randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { ConflictError, JobNotFoundError } from "../errors.ts";
import {
  type BatchCounts,
  isFinished,
  type Job,
  type JobCounts,
  type JobState,
  type ListedObject,
  type MoveRequest,
  type Outcome,
} from "../types.ts";

/**
 * The job table. A job's partition holds its record (cursor included) and one small totals item per page; each page
 * has a partition of its own for its record and its batches' ledgers. Every write is conditional, so repeats and races change nothing.
 */
export class JobStore {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  /** Emits "finished" (jobId, state) when this process marks a job done or cancelled: a local runtime stops at once. */
  readonly events = new EventEmitter<{ finished: [jobId: string, state: JobState] }>();

  constructor(db: DynamoDBDocumentClient, table: string) {
    this.#db = db;
    this.#table = table;
  }

  /**
   * Opens a job for `request`, or attaches to the unfinished job with the same from/to/prefix:
   * a conditional put on one "active job" item per (from, to, prefix) decides, so two starts never open two jobs.
   */
  async openJob(request: MoveRequest, now = new Date()): Promise<{ job: Job; attached: boolean }> {
    const activeKey = { pk: activeJobKey(request), sk: "ACTIVE" };
    for (let attempt = 0; attempt < 5; attempt++) {
      // Most starts open a new job: the first attempt claims the active item without reading it first.
      const active = attempt === 0 ? undefined : await this.#get(activeKey);
      if (active) {
        // Only a record that is not there is missing: a read that fails says nothing, and must not attach this start
        // to whatever job a later read returns (a finished one, if its active item was left behind).
        const job = await this.getJob(String(active.jobId)).catch((error: unknown) => {
          if (error instanceof JobNotFoundError) return undefined;
          throw error;
        });
        // Attach to anything not cleanly done: a job done with failures continues once its failures are redriven.
        if (job && job.state !== "done" && job.state !== "cancelled") {
          this.noteNotCancelled(job.id);
          // The job's entry in the job list again (the same item): a crash between its record and its entry, which
          // are written at once, would otherwise leave it out of `status` for good.
          await this.#putListEntry(job);
          return { job, attached: true };
        }
        if (!job) {
          // The active item was written but the job record was not (a crash between the two): write it now.
          const created = await this.#createJobRecord(String(active.jobId), request, now);
          return { job: created, attached: true };
        }
      }
      const id = newJobId(now);
      try {
        await this.#db.send(
          new PutCommand({
            TableName: this.#table,
            Item: { ...activeKey, jobId: id },
            ConditionExpression: active ? "jobId = :old" : "attribute_not_exists(pk)",
            ...(active ? { ExpressionAttributeValues: { ":old": active.jobId } } : {}),
          }),
        );
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) continue; // another start won: attach to its job
        throw error;
      }
      const job = await this.#createJobRecord(id, request, now);
      this.noteNotCancelled(job.id);
      return { job, attached: false };
    }
    throw new ConflictError(`Could not open a job for ${request.from} → ${request.to}: too many concurrent starts`);
  }

  async #createJobRecord(id: string, request: MoveRequest, now: Date): Promise<Job> {
    const job: Job = {
      ...request,
      id,
      state: "listing",
      seq: 0,
      startAfter: "",
      listed: 0,
      listedBytes: 0,
      listingDone: false,
      countsPages: true,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    };
    try {
      // Both at once: a start's time is round trips. In the rare repeat (the record exists), the extra index entry
      // names the same job, and listJobs drops duplicates.
      await Promise.all([
        this.#db.send(
          new PutCommand({
            TableName: this.#table,
            Item: { pk: jobPk(id), sk: "JOB", ...job },
            ConditionExpression: "attribute_not_exists(pk)",
          }),
        ),
        this.#putListEntry(job),
      ]);
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return this.getJob(id);
    }
    return job;
  }

  /** The job's entry in the list of jobs (`listJobs`), newest first by its creation time. */
  async #putListEntry(job: Pick<Job, "id" | "createdAt">): Promise<void> {
    await this.#db.send(
      new PutCommand({ TableName: this.#table, Item: { pk: "JOBS", sk: `${job.createdAt}#${job.id}`, jobId: job.id } }),
    );
  }

  /** Opens a dry-run job: recorded for status, never attached to, never moved. */
  async openDryRun(request: MoveRequest, now = new Date()): Promise<Job> {
    return this.#createJobRecord(newJobId(now), request, now);
  }

  async getJob(id: string): Promise<Job> {
    const item = await this.#get({ pk: jobPk(id), sk: "JOB" });
    if (!item) throw new JobNotFoundError(id);
    return toJob(item);
  }

  /** The most recent jobs, newest first. */
  async listJobs(limit = 20): Promise<Job[]> {
    const out = await this.#db.send(
      new QueryCommand({
        TableName: this.#table,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": "JOBS" },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    const ids = [...new Set((out.Items ?? []).map((item) => String(item.jobId)))];
    const jobs = await Promise.all(ids.map((id) => this.getJob(id).catch(() => undefined)));
    return jobs.filter((job): job is Job => job !== undefined);
  }

  /** The page record for `seq`, if the lister has written it. */
  async getPage(jobId: string, seq: number): Promise<PageRecord | undefined> {
    const item = await this.#get(pageKey(jobId, seq));
    return item
      ? {
          seq,
          objects: JSON.parse(String(item.objects)) as ListedObject[],
          batches: item.batches as Array<[number, number]>,
          last: item.last === true,
        }
      : undefined;
  }

  /**
   * Records a page: its exact objects and how they split into batches. The first writer wins; a repeat returns what
   * was recorded first. The caller then writes the page's totals (ensureTotals) from the record returned.
   */
  async putPageIfAbsent(jobId: string, page: PageRecord): Promise<PageRecord> {
    let recorded = page;
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          // One string attribute, not a list of maps: a thousand nested values cost CPU to marshal and validate.
          Item: {
            ...pageKey(jobId, page.seq),
            objects: JSON.stringify(page.objects),
            batches: page.batches,
            last: page.last,
          },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const existing = await this.getPage(jobId, page.seq);
      if (!existing) throw error;
      recorded = existing;
    }
    return recorded;
  }

  /**
   * Creates a page's totals item (its key count and bytes, every batch's rolled counts at zero) unless it exists.
   * Called after the page record is written, and again when a lister resumes at a recorded page: a crash between
   * the two writes cannot leave a page without totals.
   */
  async ensureTotals(jobId: string, page: PageRecord): Promise<void> {
    const totals: Record<string, number> = {
      keys: page.objects.length,
      bytes: page.objects.reduce((sum, o) => sum + o.s, 0),
      moved: 0,
      movedBytes: 0,
      skipped: 0,
      failed: 0,
    };
    for (let i = 0; i < page.batches.length; i++) Object.assign(totals, zeroBatchCounts(i));
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: { pk: jobPk(jobId), sk: totalsSk(page.seq), seq: page.seq, ...totals },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /**
   * Moves the listing cursor past page `seq`, only if it still points at `seq`: a repeated or late lister
   * cannot move it twice. Returns false when another lister already did.
   */
  async advanceCursor(jobId: string, seq: number, page: PageRecord, last: boolean, now = new Date()): Promise<boolean> {
    const lastKey = page.objects.at(-1)?.k;
    try {
      await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: jobPk(jobId), sk: "JOB" },
          UpdateExpression:
            "SET #seq = :next, #startAfter = :startAfter, #listingDone = :last, #state = :state, #updatedAt = :now ADD #listed :n, #listedBytes :bytes, #resolvedPages :empty REMOVE #listingError",
          // A cancelled job's cursor no longer moves: its lister stops at the next page.
          ConditionExpression: "#seq = :seq AND #state <> :cancelled",
          ExpressionAttributeNames: {
            "#seq": "seq",
            "#startAfter": "startAfter",
            "#listingDone": "listingDone",
            "#state": "state",
            "#updatedAt": "updatedAt",
            "#listed": "listed",
            "#listedBytes": "listedBytes",
            "#resolvedPages": "resolvedPages",
            "#listingError": "listingError", // a page listed: an earlier failure is over
          },
          ExpressionAttributeValues: {
            ":seq": seq,
            ":cancelled": "cancelled",
            ":next": seq + 1,
            ":startAfter": lastKey ?? "",
            ":last": last,
            ":state": last ? "moving" : "listing",
            ":now": now.toISOString(),
            ":n": page.objects.length,
            ":bytes": page.objects.reduce((sum, o) => sum + o.s, 0),
            // No mover ever resolves a page without keys: it counts as resolved when it is listed.
            ":empty": page.objects.length === 0 ? 1 : 0,
          },
        }),
      );
      if (last) this.#noteListingDone(jobId);
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** Records why the job's lister failed, for status and the local runtime; the next page listed clears it. */
  async noteListingError(jobId: string, error: { reason: string; attempt: number }, now = new Date()): Promise<void> {
    await this.#db.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { pk: jobPk(jobId), sk: "JOB" },
        UpdateExpression: "SET #listingError = :error",
        ConditionExpression: "attribute_exists(pk)",
        ExpressionAttributeNames: { "#listingError": "listingError" },
        ExpressionAttributeValues: { ":error": { ...error, at: now.toISOString() } },
      }),
    );
  }

  /** The outcomes recorded for one batch, by item position, with the version to write against. */
  async getLedger(jobId: string, page: number, batch: number): Promise<Ledger> {
    const item = await this.#get(ledgerKey(jobId, page, batch));
    const outcomes = item?.outcomes === undefined ? {} : (JSON.parse(String(item.outcomes)) as Record<string, Outcome>);
    return { outcomes, ver: Number(item?.ver ?? 0) };
  }

  /**
   * Writes a batch's outcomes whole, only if nobody wrote since `ledger.ver` was read.
   * Throws ConflictError otherwise: re-read, merge, write again.
   */
  async writeLedger(
    jobId: string,
    page: number,
    batch: number,
    ledger: Ledger,
    lastErrors?: string[],
  ): Promise<Ledger> {
    const next = { outcomes: ledger.outcomes, ver: ledger.ver + 1 };
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          // Outcomes as one JSON string (like page objects): cheap to marshal, and the item stays a few attributes.
          Item: {
            ...ledgerKey(jobId, page, batch),
            outcomes: JSON.stringify(next.outcomes),
            ver: next.ver,
            ...(lastErrors?.length ? { lastErrors } : {}),
          },
          ConditionExpression: ledger.ver === 0 ? "attribute_not_exists(pk)" : "ver = :ver",
          ...(ledger.ver === 0 ? {} : { ExpressionAttributeValues: { ":ver": ledger.ver } }),
        }),
      );
      return next;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        throw new ConflictError(`Ledger ${page}.${batch} of job ${jobId} changed under us`, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Rolls a batch's current counts into its page's totals, idempotently: the totals item records what it already
   * holds for this batch and from which ledger version, and the update only adds the difference if that record is
   * unchanged and older. A duplicate delivery that rolls up an older version after a newer one changes nothing.
   * Returns the page's totals after the roll-up and what this call added (zero when another call had rolled it).
   */
  async rollUpBatch(
    jobId: string,
    page: number,
    batch: number,
    counts: BatchCounts,
    /** The version of the ledger the counts come from. */
    ver: number,
    /** What the totals probably hold for this batch (the counts of the ledger as read): saves a read when right. */
    likelyRolled?: BatchCounts,
  ): Promise<{ totals: PageTotals; added: BatchCounts }> {
    const key = { pk: jobPk(jobId), sk: totalsSk(page) };
    let guess = likelyRolled && !sameCounts(likelyRolled, counts) ? likelyRolled : undefined;
    for (let missing = 0; ; ) {
      let old: BatchCounts;
      let item: Record<string, unknown> | undefined;
      if (guess) {
        old = guess;
        guess = undefined;
      } else {
        item = await this.#get(key);
        if (!item) {
          // The lister writes a page's totals while its batches go out: a fast mover can get here first.
          if (++missing > 20) throw new ConflictError(`Totals for page ${page} of job ${jobId} are missing`);
          await new Promise((resolve) => setTimeout(resolve, 50 * missing));
          continue;
        }
        old = readBatchCounts(item, batch);
        // A newer version is rolled already (its counts hold every outcome this one has, or a later one).
        if (Number(item[batchAttributeNames(batch).v] ?? 0) > ver) {
          return { totals: toPageTotals(item), added: { moved: 0, movedBytes: 0, skipped: 0, failed: 0 } };
        }
      }
      const diff = {
        moved: counts.moved - old.moved,
        movedBytes: counts.movedBytes - old.movedBytes,
        skipped: counts.skipped - old.skipped,
        failed: counts.failed - old.failed,
      };
      if (item && Object.values(diff).every((d) => d === 0)) return { totals: toPageTotals(item), added: diff };
      const names = batchAttributeNames(batch);
      try {
        const out = await this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: key,
            UpdateExpression:
              "SET #m = :m, #mb = :mb, #s = :s, #f = :f, #v = :v ADD moved :dm, movedBytes :dmb, skipped :ds, failed :df",
            ConditionExpression:
              "#m = :om AND #mb = :omb AND #s = :os AND #f = :of AND (attribute_not_exists(#v) OR #v <= :v)",
            ExpressionAttributeNames: { "#m": names.m, "#mb": names.mb, "#s": names.s, "#f": names.f, "#v": names.v },
            ExpressionAttributeValues: {
              ":v": ver,
              ":m": counts.moved,
              ":mb": counts.movedBytes,
              ":s": counts.skipped,
              ":f": counts.failed,
              ":om": old.moved,
              ":omb": old.movedBytes,
              ":os": old.skipped,
              ":of": old.failed,
              ":dm": diff.moved,
              ":dmb": diff.movedBytes,
              ":ds": diff.skipped,
              ":df": diff.failed,
            },
            ReturnValues: "ALL_NEW",
          }),
        );
        return { totals: toPageTotals(out.Attributes ?? {}), added: diff };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        // The guess was wrong, or another mover rolled this batch meanwhile: re-read and add only what is missing.
      }
    }
  }

  /** The job's counts: the sum of its page totals (one small item per 1,000 keys). */
  async sumTotals(jobId: string): Promise<JobCounts & { pages: number; completePages: number }> {
    const sum = {
      listed: 0,
      listedBytes: 0,
      moved: 0,
      movedBytes: 0,
      skipped: 0,
      failed: 0,
      pages: 0,
      completePages: 0,
    };
    let exclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const out = await this.#db.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
          ExpressionAttributeValues: { ":pk": jobPk(jobId), ":prefix": "TOTALS#" },
          ProjectionExpression: "#keys, #bytes, moved, movedBytes, skipped, failed",
          ExpressionAttributeNames: { "#keys": "keys", "#bytes": "bytes" },
          ConsistentRead: true,
          ExclusiveStartKey: exclusiveStartKey,
        }),
      );
      for (const item of out.Items ?? []) {
        const totals = toPageTotals(item);
        sum.listed += totals.keys;
        sum.listedBytes += totals.bytes;
        sum.moved += totals.moved;
        sum.movedBytes += totals.movedBytes;
        sum.skipped += totals.skipped;
        sum.failed += totals.failed;
        sum.pages += 1;
        if (isPageResolved(totals)) sum.completePages += 1;
      }
      exclusiveStartKey = out.LastEvaluatedKey;
    } while (exclusiveStartKey);
    return sum;
  }

  /**
   * Marks the job done when its listing has finished and every listed key is resolved; otherwise changes nothing.
   * Idempotent: run it as often as convenient. Returns the job's state afterwards. It sums every page's totals, one
   * item per page: for the checks that run once (the listing's end, drained queues, status). A mover that resolved
   * a page calls completeIfPagesResolved instead.
   */
  async completeIfResolved(jobId: string, now = new Date()): Promise<JobState> {
    // Once this process has seen the listing finish (it never un-finishes), the totals are read with the job, not
    // after it: a round trip less at the end of every job. Before that, a page resolving costs only the job's read.
    const early = this.#listingDone.has(jobId) ? this.sumTotals(jobId) : undefined;
    early?.catch(() => undefined); // awaited below
    const job = await this.getJob(jobId);
    if (!job.listingDone || job.state === "cancelled") return job.state;
    this.#noteListingDone(jobId);
    const earlyCounts = early ? await early : undefined;
    // With failures an early sum may predate the roll-up of a redriven letter settled before the job was read.
    const counts = earlyCounts && earlyCounts.failed === 0 ? earlyCounts : await this.sumTotals(jobId);
    // A mover of this process whose batch resolves one of the last few pages then reads the totals with the job
    // record: a job of one page (the listing ends before its batches are moved) ends a round trip sooner.
    this.#notePagesLeft(jobId, counts.pages - counts.completePages);
    return this.#completeIfCounted(job, counts, now);
  }

  /**
   * The check of a mover whose batch left its page resolved. Summing every page's totals on each page resolved
   * would cost O(pages) reads per page once listing has ended: 100M keys, 100,000 pages, would take 100,000 Queries
   * of 12.5 MB. Instead the job record counts resolved pages, and the totals are summed only once that count
   * reaches the job's page count.
   *
   * `newly`: this call may be the one that resolved the page. Its roll-up did, or it added nothing (a replay, whose
   * first try may have died before counting). Such a call adds one to the count. Duplicates can overcount, which
   * costs sums and nothing else; nothing undercounts, because the call that resolves a page counts it, or its
   * message comes back and its replay does.
   */
  async completeIfPagesResolved(jobId: string, newly: boolean, now = new Date()): Promise<JobState> {
    // The last few pages' checks read the totals with the job record: the job's last page costs no extra round trip.
    const left = this.#pagesLeft.get(jobId);
    const early = left !== undefined && left <= EARLY_SUM_PAGES ? this.sumTotals(jobId) : undefined;
    early?.catch(() => undefined); // awaited below, or dropped
    const job = newly ? await this.#countResolvedPage(jobId) : await this.getJob(jobId);
    if (!job.listingDone || job.state === "cancelled") return job.state;
    const unresolved = job.countsPages ? job.seq - (job.resolvedPages ?? 0) : 0;
    this.#notePagesLeft(jobId, unresolved);
    if (unresolved > 0) return job.state;
    // An early sum that shows every key resolved is true. One that does not may predate another page's roll-up
    // whose check was counted before this one's, and saw the count short: it is read again, after the count.
    const counts = early ? await early : undefined;
    // With failures it may also predate the roll-up of a redriven letter settled before the job was read.
    const resolved = counts && isJobResolved(counts, job) && counts.failed === 0 ? counts : await this.sumTotals(jobId);
    return this.#completeIfCounted(job, resolved, now);
  }

  /** Records the job's end if `counts` (summed after the job's listing ended) resolve every listed key. */
  async #completeIfCounted(job: Job, counts: JobCounts, now: Date): Promise<JobState> {
    const jobId = job.id;
    // Redriven letters not yet settled hold keys that count as failed until they are retried: not finished yet.
    if (!isJobResolved(counts, job) || job.redriven !== undefined) {
      if (!isFinished(job.state)) return job.state;
      // Redriven keys reopen it, unless its last letter was settled (and it ended) or a cancel came meanwhile.
      if (await this.#setState(jobId, "moving", now, { only: "reopenable" })) return "moving";
      return (await this.getJob(jobId)).state;
    }
    const state: JobState = counts.failed > 0 ? "done-with-failures" : "done";
    // Both writes at once. Should this process die between them, the batch that got here is delivered again and
    // writes what is missing: its keys are resolved, so it comes straight back to this line.
    const release = state === "done" ? this.#releaseActive(job) : undefined;
    release?.catch(() => undefined); // awaited below
    // Not over a cancel or a letter a redrive noted since the job was read: then the job stays as that made it.
    if (job.state === state && job.finishedAt !== undefined) {
      await release;
      return state; // recorded already: a replay
    }
    if (!(await this.#setState(jobId, state, now, { only: "endable" }))) {
      await release;
      return (await this.getJob(jobId)).state;
    }
    // Said as soon as it is recorded: a local runtime stops waiting while the active item is released.
    this.events.emit("finished", jobId, state);
    await release;
    return state;
  }

  /** Adds one to the job's resolved pages and returns the job record as it is then. */
  async #countResolvedPage(jobId: string): Promise<Job> {
    try {
      const out = await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: jobPk(jobId), sk: "JOB" },
          UpdateExpression: "ADD resolvedPages :one",
          ConditionExpression: "attribute_exists(pk)",
          ExpressionAttributeValues: { ":one": 1 },
          ReturnValues: "ALL_NEW",
        }),
      );
      return toJob(out.Attributes ?? {});
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new JobNotFoundError(jobId);
      throw error;
    }
  }

  /**
   * Pages left, per job, as this process last saw them after the job's listing ended: from the job record's
   * resolved-page count, or from the page totals summed at the listing's end. Only a hint for when to sum early.
   */
  readonly #pagesLeft = new Map<string, number>();

  #notePagesLeft(jobId: string, left: number): void {
    if (this.#pagesLeft.size > 1000) this.#pagesLeft.clear();
    this.#pagesLeft.set(jobId, left);
  }

  readonly #listingDone = new Set<string>();

  #noteListingDone(jobId: string): void {
    if (this.#listingDone.size > 1000) this.#listingDone.clear();
    this.#listingDone.add(jobId);
  }

  /** Keeps the most recent errors on the job record for `status` (informational: last writer wins). */
  async recordErrors(
    jobId: string,
    errors: ReadonlyArray<{ key: string; reason: string }>,
    now = new Date(),
  ): Promise<void> {
    if (errors.length === 0) return;
    await this.#db.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { pk: jobPk(jobId), sk: "JOB" },
        UpdateExpression: "SET lastErrors = :errors",
        ConditionExpression: "attribute_exists(pk)",
        ExpressionAttributeValues: {
          ":errors": errors.slice(0, 10).map((e) => ({ key: e.key, reason: e.reason, at: now.toISOString() })),
        },
      }),
    );
  }

  /**
   * Appends a (time, moved, bytes) sample to the job record and returns the samples of the last two minutes,
   * from which `status` derives rates. Informational: concurrent writers may drop a sample.
   */
  async sampleProgress(jobId: string, moved: number, movedBytes: number, now = Date.now()): Promise<ProgressSample[]> {
    const job = await this.getJob(jobId);
    const samples = [...(job.samples ?? []), { t: now, moved, bytes: movedBytes }]
      .filter((s) => now - s.t <= 120_000)
      .slice(-40);
    await this.#db.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { pk: jobPk(jobId), sk: "JOB" },
        UpdateExpression: "SET samples = :samples",
        ExpressionAttributeValues: { ":samples": samples },
      }),
    );
    return samples;
  }

  /** A dry run is done when its listing is: it resolves nothing. */
  async finishDryRun(jobId: string, now = new Date()): Promise<void> {
    await this.#setState(jobId, "done", now);
  }

  /**
   * Puts an ended job back to moving while redriven letters of it are pending (noteRedriven does, before they are
   * sent). Conditional, so a job whose letters movers already settled and ended stays ended. A cancelled job stays
   * cancelled.
   */
  async reopen(jobId: string, now = new Date()): Promise<void> {
    await this.#setState(jobId, "moving", now, { only: "reopenable" });
  }

  /**
   * Notes dead letters about to be redriven (their ids on the DLQ), before they are sent: until a mover settles
   * each, the job does not finish (their keys count as failed until they are retried). `replaced`: ids an earlier
   * redrive gave the same letters (SQS dead-lettered them again without a mover settling them), dropped.
   */
  async noteRedriven(
    jobId: string,
    letters: readonly string[],
    replaced: readonly string[] = [],
    now = new Date(),
  ): Promise<void> {
    if (letters.length > 0) await this.#redrivenSet(jobId, "ADD", letters);
    const stale = replaced.filter((id) => !letters.includes(id));
    if (stale.length > 0) await this.#redrivenSet(jobId, "DELETE", stale);
    // Reopened before its letters go out: no mover can settle them and end it first.
    if (letters.length > 0) await this.reopen(jobId, now);
  }

  /** A redriven letter's keys are all settled (moved, skipped, or failed again and dead-lettered): idempotent. */
  async settleRedriven(jobId: string, letter: string): Promise<void> {
    await this.#redrivenSet(jobId, "DELETE", [letter]).catch((error: unknown) => {
      if (!(error instanceof JobNotFoundError)) throw error; // a deleted job's letter still moves; nothing awaits it
    });
  }

  async #redrivenSet(jobId: string, action: "ADD" | "DELETE", letters: readonly string[]): Promise<Job> {
    try {
      const out = await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: jobPk(jobId), sk: "JOB" },
          UpdateExpression: `${action} redriven :letters`,
          ConditionExpression: "attribute_exists(pk)",
          ExpressionAttributeValues: { ":letters": new Set(letters) },
          ReturnValues: "ALL_NEW",
        }),
      );
      return toJob(out.Attributes ?? {});
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new JobNotFoundError(jobId);
      throw error;
    }
  }

  /**
   * Cancels an unfinished job: its listing stops at the next page, movers drop its batches unmoved, and keys not
   * yet moved stay in the source (nothing is deleted without its copy). The next start opens a new job. Returns the
   * job as it is now: cancelled, or finished another way first (then unchanged).
   */
  async cancel(jobId: string, now = new Date()): Promise<Job> {
    const job = await this.getJob(jobId);
    if (isFinished(job.state)) return job; // done, or cancelled already
    // Only while unfinished: a job that finished since the read keeps its end (done is not overwritten).
    if (!(await this.#setState(jobId, "cancelled", now, { only: "unfinished" }))) return this.getJob(jobId);
    await this.#releaseActive(job);
    this.#cancelled.set(jobId, { cancelled: true, at: Date.now() });
    this.events.emit("finished", jobId, "cancelled");
    return this.getJob(jobId);
  }

  readonly #cancelled = new Map<string, { cancelled: boolean; at: number }>();

  /**
   * A job this process (or its other thread) just opened or attached to is not cancelled: its first batches need not
   * ask.
   */
  noteNotCancelled(jobId: string): void {
    if (!this.#cancelled.get(jobId)?.cancelled) this.#cancelled.set(jobId, { cancelled: false, at: Date.now() });
  }

  /** Whether a job was cancelled, read at most every 2 s per job: a mover asks for every batch. */
  async isCancelled(jobId: string): Promise<boolean> {
    const cached = this.#cancelled.get(jobId);
    if (cached && (cached.cancelled || Date.now() - cached.at < 2000)) return cached.cancelled;
    const cancelled = (await this.getJob(jobId).catch(() => undefined))?.state === "cancelled";
    if (this.#cancelled.size > 1000) this.#cancelled.clear();
    this.#cancelled.set(jobId, { cancelled, at: Date.now() });
    return cancelled;
  }

  /**
   * Sets a job's state; with `only`, only if it is still unfinished (listing or moving), or not cancelled. Returns
   * false when that condition refused the write.
   */
  async #setState(
    jobId: string,
    state: JobState,
    now: Date,
    options: { only?: keyof typeof STATE_CONDITIONS } = {},
  ): Promise<boolean> {
    const condition = options.only ? STATE_CONDITIONS[options.only] : undefined;
    try {
      await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: jobPk(jobId), sk: "JOB" },
          UpdateExpression: isFinished(state)
            ? "SET #state = :state, updatedAt = :now, finishedAt = :now"
            : "SET #state = :state, updatedAt = :now REMOVE finishedAt",
          ...(condition ? { ConditionExpression: condition.expression } : {}),
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: { ":state": state, ":now": now.toISOString(), ...condition?.values },
        }),
      );
      return true;
    } catch (error) {
      if (condition && error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** A finished job no longer holds its (from, to, prefix): the next start opens a new one. */
  async #releaseActive(job: Job): Promise<void> {
    try {
      await this.#db.send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { pk: activeJobKey(job), sk: "ACTIVE" },
          ConditionExpression: "jobId = :id",
          ExpressionAttributeValues: { ":id": job.id },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  async #get(key: { pk: string; sk: string }): Promise<Record<string, unknown> | undefined> {
    const out = await this.#db.send(new GetCommand({ TableName: this.#table, Key: key, ConsistentRead: true }));
    return out.Item;
  }
}

export interface ProgressSample {
  t: number;
  moved: number;
  bytes: number;
}

export interface PageRecord {
  seq: number;
  objects: ListedObject[];
  /** [start, end) positions of each batch within `objects`. */
  batches: Array<[number, number]>;
  /** No keys come after this page. */
  last: boolean;
}

export interface Ledger {
  /** Outcome by item position within the batch. */
  outcomes: Record<string, Outcome>;
  ver: number;
}

export interface PageTotals extends BatchCounts {
  keys: number;
  bytes: number;
}

/**
 * The conditions a state change may be made on. A job's end and its reopening for redriven letters are each other's
 * conditions (letters noted or not), so two movers racing at a job's last letters cannot leave it moving for good
 * or done while a letter is pending; neither overwrites a cancel.
 */
const STATE_CONDITIONS = {
  /** Listing or moving: a cancel. */
  unfinished: { expression: "#state IN (:listing, :moving)", values: { ":listing": "listing", ":moving": "moving" } },
  /** No redriven letter pending and not cancelled: a job's end. */
  endable: {
    expression: "#state <> :cancelled AND attribute_not_exists(redriven)",
    values: { ":cancelled": "cancelled" },
  },
  /** Redriven letters pending and ended, not cancelled: reopening it. */
  reopenable: {
    expression: "attribute_exists(redriven) AND #state IN (:done, :failures)",
    values: { ":done": "done", ":failures": "done-with-failures" },
  },
} as const;

/** Pages left to count resolved at which a mover's check reads the totals with the job record, in one round trip. */
const EARLY_SUM_PAGES = 8;

function isJobResolved(counts: JobCounts, job: Job): boolean {
  return counts.moved + counts.skipped + counts.failed >= job.listed;
}

export function isPageResolved(totals: PageTotals): boolean {
  return totals.moved + totals.skipped + totals.failed >= totals.keys;
}

function activeJobKey(request: Pick<MoveRequest, "from" | "to" | "prefix">): string {
  const digest = createHash("sha256")
    .update(JSON.stringify([request.from, request.to, request.prefix]))
    .digest("hex");
  return `ACTIVE#${digest}`;
}

/** Sortable, readable ids: 20261125-023512-3fa9c1. */
function newJobId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}

const jobPk = (id: string) => `JOB#${id}`;
const pad = (n: number) => String(n).padStart(9, "0");
// Page records (up to 350 KB) and ledgers are most of a job's writes: each page gets its own partition key, so one
// job is not capped by a single partition's 1,000 write units/s. Only the small totals items share the job's.
const pageKey = (jobId: string, seq: number) => ({ pk: `PAGE#${jobId}#${pad(seq)}`, sk: "PAGE" });
const ledgerKey = (jobId: string, page: number, batch: number) => ({
  pk: `PAGE#${jobId}#${pad(page)}`,
  sk: `LEDGER#${batch}`,
});
const totalsSk = (seq: number) => `TOTALS#${pad(seq)}`;

function batchAttributeNames(batch: number) {
  return { m: `m_${batch}`, mb: `mb_${batch}`, s: `s_${batch}`, f: `f_${batch}`, v: `v_${batch}` };
}

function zeroBatchCounts(batch: number): Record<string, number> {
  const names = batchAttributeNames(batch);
  return { [names.m]: 0, [names.mb]: 0, [names.s]: 0, [names.f]: 0 };
}

function sameCounts(a: BatchCounts, b: BatchCounts): boolean {
  return a.moved === b.moved && a.movedBytes === b.movedBytes && a.skipped === b.skipped && a.failed === b.failed;
}

function readBatchCounts(item: Record<string, unknown>, batch: number): BatchCounts {
  const names = batchAttributeNames(batch);
  return {
    moved: Number(item[names.m] ?? 0),
    movedBytes: Number(item[names.mb] ?? 0),
    skipped: Number(item[names.s] ?? 0),
    failed: Number(item[names.f] ?? 0),
  };
}

function toPageTotals(item: Record<string, unknown>): PageTotals {
  return {
    keys: Number(item.keys ?? 0),
    bytes: Number(item.bytes ?? 0),
    moved: Number(item.moved ?? 0),
    movedBytes: Number(item.movedBytes ?? 0),
    skipped: Number(item.skipped ?? 0),
    failed: Number(item.failed ?? 0),
  };
}

function toJob(item: Record<string, unknown>): Job {
  const { pk: _pk, sk: _sk, redriven, ...rest } = item;
  // A string set in the table; a plain array on the job (it goes to a worker thread and into `status --json`).
  return { ...rest, ...(redriven instanceof Set && redriven.size > 0 ? { redriven: [...redriven] } : {}) } as Job;
}
