/**
 * A model of a move's wall time and AWS cost, from the inputs in DEFAULT_INPUTS (each says where it comes from).
 * Pure: used by `npm run model` (bench/model.ts), by dry runs (their estimate) and by docs/SCALING.md.
 */
export interface ModelInputs {
  objects: number;
  avgKb: number;
  avgKeyBytes: number;
  latencyMs: number;
  copyMBps: number;
  inFlight: number;
  workers: number;
  jobs: number;
  prefixes: number;
  headsPerObject: number;
  cpuMsPerS3Request: number;
  cpuMsPerSdkRequest: number;
  invocationOverheadMs: number;
  startupSeconds: number;
  listKeysPerSecond: number;
  keysPerPage: number;
  keysPerMessage: number;
  messagesPerInvocation: number;
  memoryMb: number;
  listerMemoryMb: number;
  listerInvocationSeconds: number;
  multipartThresholdMb: number;
  partSizeMb: number;
  s3WritesPerPrefix: number;
  s3ReadsPerPrefix: number;
  lambdaInitialConcurrency: number;
  lambdaRampPerMinute: number;
  lambdaMaxConcurrency: number;
  accountConcurrency: number;
  pageRecordBytesPerKey: number;
  ledgerBytesPerKey: number;
  totalsItemBytes: number;
  jobItemBytes: number;
  messageBytesPerKey: number;
  dynamodbPartitionWru: number;
  dynamodbPartitionRru: number;
  maxKeysPerJob: number;
  sumsPerJob: number;
  priceS3WritePer1000: number;
  priceS3ReadPer1000: number;
  priceSqsPerMillion: number;
  priceSqsFifoPerMillion: number;
  priceLambdaGbSecond: number;
  priceLambdaPerMillion: number;
  priceDynamodbWruPerMillion: number;
  priceDynamodbRruPerMillion: number;
  baselineSecondsPerObject: number;
}

/**
 * The model's defaults. Client CPU comes from this repository's benches (bench/clientCpu.ts, `npm run bench`, results in
 * bench/results/); the rest from FIELD.md, AWS's pages, the code, or is an assumption, as each comment says.
 * docs/SCALING.md, "Where the inputs come from", lists them with their sources.
 */
export const DEFAULT_INPUTS: ModelInputs = {
  /** Objects to move. The CLI's --objects; without it the table's six sizes. */
  objects: 1_000_000,
  /** Average object size in KiB (photos); it only changes time above a few MB, and the multipart request count. */
  avgKb: 200,
  /** Average key length in bytes (e.g. "photos/2024/05/IMG_20240512_183012.jpg" is 39). Sizes page records and messages. */
  avgKeyBytes: 50,
  /** S3 CopyObject round trip for a small object, in-region. Assumption; the bench rig's proxy adds 20 ms. */
  latencyMs: 30,
  /** Server-side copy throughput of one CopyObject, MB/s. Assumption, not measured: matters only for objects of MBs. */
  copyMBps: 100,
  /** Copies in flight per mover invocation: serverless.yml COPY_CONCURRENCY. */
  inFlight: 256,
  /** Mover invocations at once: serverless.yml maximumConcurrency. */
  workers: 50,
  /** Jobs run side by side over disjoint key prefixes; each has one lister and its own DynamoDB partition key. */
  jobs: 1,
  /** Partitioned prefixes the keys spread over (source and destination alike). 1 = a bucket S3 has not split yet. */
  prefixes: 1,
  /** HeadObject calls per object: 0 as deployed (overwrite on, MD5 ETags); 1 with --no-overwrite or non-MD5 ETags. */
  headsPerObject: 0,
  /**
   * Client CPU per S3 request, ms, with the default per-object client (the lean SigV4 signer over node:http,
   * src/s3/leanObjectClient.ts). `node bench/clientCpu.ts` (256 in flight, client only): 0.17–0.19 ms per CopyObject;
   * the AWS SDK v3 client (S3_CLIENT=sdk) ~0.6 ms: pass --cpu-ms 0.6 for it. Cross-check, everything included (listing,
   * SQS, DynamoDB, copies, deletes, process start): `npm run bench -- --objects 100000 --tools ours --runs 1` →
   * bench/results/2026-11-25-100k-ours.json, toolCpuMsPerObject 0.218; this input gives 0.206 ms per object.
   */
  cpuMsPerS3Request: 0.18,
  /**
   * Client CPU per DynamoDB call, ms (always the AWS SDK v3): `node bench/clientCpu.ts` measured ~0.6 ms per SDK
   * CopyObject; a DynamoDB call through the SDK is assumed to cost the same (not measured on its own).
   */
  cpuMsPerSdkRequest: 0.6,
  /** Per mover invocation, after its last copy: DeleteObjects + ledger/totals writes + the event source's hand-off. Assumption: the bench's local runtime has no event-source hand-off to measure. */
  invocationOverheadMs: 100,
  /** From `start` to the first copies: start + lister cold starts, first ListObjectsV2, first mover cold start. Assumption. */
  startupSeconds: 2,
  /** Keys one ListObjectsV2 stream lists per second: FIELD.md (10,000–12,000), low end. Not measurable on the bench rig: there the lister is paced by the movers (~3–4 pages/s at 100k). */
  listKeysPerSecond: 10_000,
  /** Keys per ListObjectsV2 page and page record (src/core/listing.ts). */
  keysPerPage: 1000,
  /** Keys per move message (src/core/batching.ts DEFAULT_BATCH_LIMITS.maxKeys). */
  keysPerMessage: 1000,
  /** Messages per mover invocation: serverless.yml batchSize. */
  messagesPerInvocation: 10,
  /** Mover memory: serverless.yml (1,769 MB = one vCPU). Billed per GB-second. Set for the vCPU, not the heap: the whole local move (lister + movers in one process) peaked at 336 MB RSS for 100,000 objects (bench/results/2026-11-25-100k-ours.json). */
  memoryMb: 1769,
  /** Lister memory: serverless.yml (1,769 MB, one vCPU). */
  listerMemoryMb: 1769,
  /** A lister invocation hands on after ~100 s (timeout 120 s minus its 20 s reserve, src/handlers/lister.ts). */
  listerInvocationSeconds: 100,
  /** Objects above this are copied with UploadPartCopy (src/config.ts MULTIPART_THRESHOLD_BYTES, 1 GiB). */
  multipartThresholdMb: 1024,
  /** Part size of a multipart copy (src/config.ts PART_SIZE_BYTES, 256 MiB). */
  partSizeMb: 256,
  /** S3: at least 3,500 PUT/COPY/POST/DELETE per second per partitioned prefix (FIELD.md). */
  s3WritesPerPrefix: 3500,
  /** S3: at least 5,500 GET/HEAD per second per partitioned prefix (FIELD.md). */
  s3ReadsPerPrefix: 5500,
  /** SQS event source: starts with 5 concurrent batches (AWS Lambda docs, services-sqs-scaling). */
  lambdaInitialConcurrency: 5,
  /** …and adds up to 300 concurrent invocations a minute (same page). */
  lambdaRampPerMinute: 300,
  /** maximumConcurrency is at most 1,000 (Lambda API ScalingConfig). */
  lambdaMaxConcurrency: 1000,
  /** Default Lambda concurrency quota of an account and region, shared by movers and listers. */
  accountConcurrency: 1000,
  /** Page record bytes per key beyond the key itself (ETag, size, JSON): 113,078 bytes per 1,000 50-byte keys. test/unit/model.test.ts checks it against the code. */
  pageRecordBytesPerKey: 63,
  /** Ledger item bytes per key ({o,b,e,t} per position, as JSON): 87,953 bytes for 1,000 keys. test/unit/model.test.ts checks it. */
  ledgerBytesPerKey: 88,
  /** A page's totals item (6 sums + 4 scalars per batch, one batch a page): 125 bytes. test/unit/model.test.ts checks it. */
  totalsItemBytes: 125,
  /** The job record with `status`'s progress samples (up to 40): ~1.5 KB. */
  jobItemBytes: 1500,
  /** Move message bytes per key beyond its base64url text (position, ETag, size, JSON): buildMoveMessage gives 138 bytes for a 50-byte key. Checked by the test. */
  messageBytesPerKey: 71,
  /** DynamoDB: at most 1,000 write units per second per partition (AWS docs, warm throughput); a job's totals items share one partition key (page records and ledgers have one per page). */
  dynamodbPartitionWru: 1000,
  /** …and 3,000 read units per second (same page). */
  dynamodbPartitionRru: 3000,
  /**
   * Keys per job when a move is split: one lister lists about 10,000 keys/s, so a job of 10M keys lists in 17 min,
   * and more jobs list side by side (docs/SCALING.md).
   */
  maxKeysPerJob: 10_000_000,
  /**
   * Sums of all the job's page totals per job: only the checks of its last pages run one (EARLY_SUM_PAGES + 1 in
   * src/jobs/jobStore.ts); the others count the page on the job record.
   */
  sumsPerJob: 9,
  /** S3 PUT/COPY/POST/LIST, $ per 1,000 requests, us-east-1 (FIELD.md). */
  priceS3WritePer1000: 0.005,
  /** S3 GET/HEAD, $ per 1,000 requests, us-east-1 (aws.amazon.com/s3/pricing). DELETE is free. */
  priceS3ReadPer1000: 0.0004,
  /** SQS standard, $ per million requests; every 64 KB of a request's payload is billed as one request (FIELD.md, AWS SQS pricing). */
  priceSqsPerMillion: 0.4,
  /** SQS FIFO (the list queue), $ per million requests (aws.amazon.com/sqs/pricing). */
  priceSqsFifoPerMillion: 0.5,
  /** Lambda arm64, $ per GB-second, us-east-1 (aws.amazon.com/lambda/pricing). */
  priceLambdaGbSecond: 0.0000133334,
  /** Lambda, $ per million invocations. */
  priceLambdaPerMillion: 0.2,
  /** DynamoDB on demand, $ per million write request units (1 KB each), us-east-1, since Nov 2024. */
  priceDynamodbWruPerMillion: 0.625,
  /** DynamoDB on demand, $ per million read request units (one strongly consistent read of 4 KB). */
  priceDynamodbRruPerMillion: 0.125,
  /** The original program: sequential boto3 copy + delete, 0.3–0.4 s per object (FIELD.md). */
  baselineSecondsPerObject: 0.35,
};

export type Binding = "listing" | "lambda-scaling" | "s3-prefix" | "client-cpu" | "latency" | "dynamodb-partition";

export interface MoveEstimate {
  objects: number;
  /** Wall time from `start` to the last key resolved. */
  seconds: number;
  /** The limit that holds for most of the move. */
  binding: Binding;
  settings: { workers: number; prefixes: number; jobs: number; inFlight: number };
  /** Objects per second each limit allows, for the whole move. */
  limits: {
    perWorker: number;
    perWorkerCpu: number;
    perWorkerLatency: number;
    workers: number;
    s3Prefix: number;
    dynamodbPartition: number;
    listing: number;
  };
  phases: { listingSeconds: number; rampSeconds: number; tailSeconds: number };
  /** Copies in flight one invocation needs to keep its CPU busy. */
  inFlightNeeded: number;
  requests: {
    s3Copy: number;
    s3Head: number;
    s3List: number;
    s3Delete: number;
    sqs: number;
    sqsFifo: number;
    lambdaInvocations: number;
    lambdaGbSeconds: number;
    dynamodbWru: number;
    dynamodbRru: number;
    doneChecks: number;
  };
  costs: { s3Copy: number; s3List: number; sqs: number; lambda: number; dynamodb: number; total: number };
  /** The original sequential program on the same objects. */
  baselineSeconds: number;
}

/** Sizes of the README's table. */
export const TABLE_SIZES: readonly number[] = [1e3, 1e4, 1e5, 1e6, 1e8, 1e9];

const KIB = 1024;
const SQS_BILLING_CHUNK = 64 * KIB; // each 64 KB of a request's payload is billed as one request
const SQS_MAX_BATCH_BYTES = 250_000; // src/aws/queues.ts MAX_BATCH_BYTES
const SQS_MAX_BATCH_ENTRIES = 10;
const DYNAMODB_CALLS_PER_BATCH = 4; // ledger PutItem + totals UpdateItem, + a GetItem each on retries (src/core/moving.ts): pessimistic
const DYNAMODB_READ_UNIT_BYTES = 4 * KIB;
const DYNAMODB_WRITE_UNIT_BYTES = KIB;

/** S3 requests that create the copy of one object: 1, or Create + parts + Complete above the multipart threshold. */
export function copyRequestsPerObject(inputs: ModelInputs): number {
  const bytes = inputs.avgKb * KIB;
  if (bytes <= inputs.multipartThresholdMb * KIB * KIB) return 1;
  return 2 + Math.ceil(bytes / (inputs.partSizeMb * KIB * KIB));
}

/**
 * What one mover invocation sustains: bounded by its CPU (one thread) and by copies in flight ÷ copy time,
 * plus a fixed overhead per invocation of `keysPerMessage × messagesPerInvocation` keys.
 */
export function perWorkerRate(inputs: ModelInputs) {
  const s3RequestsPerObject = copyRequestsPerObject(inputs) + inputs.headsPerObject + 1 / inputs.keysPerMessage;
  const sdkRequestsPerObject = DYNAMODB_CALLS_PER_BATCH / inputs.keysPerMessage;
  const cpuMsPerObject =
    inputs.cpuMsPerS3Request * s3RequestsPerObject + inputs.cpuMsPerSdkRequest * sdkRequestsPerObject;
  const copyMs =
    inputs.latencyMs * (1 + inputs.headsPerObject) + ((inputs.avgKb * KIB) / (inputs.copyMBps * 1e6)) * 1000;
  const cpu = 1000 / cpuMsPerObject;
  const latency = (inputs.inFlight * 1000) / copyMs;
  const keysPerInvocation = inputs.keysPerMessage * inputs.messagesPerInvocation;
  const invocationSeconds = keysPerInvocation / Math.min(cpu, latency) + inputs.invocationOverheadMs / 1000;
  return { cpu, latency, rate: keysPerInvocation / invocationSeconds, cpuMsPerObject, copyMs, keysPerInvocation };
}

/** DynamoDB units per page of keys (one page record, its totals, the cursor, and per batch a ledger and a roll-up). */
export function dynamodbUnitsPerPage(inputs: ModelInputs): { wru: number; rru: number; jobPartitionWru: number } {
  const batches = Math.ceil(inputs.keysPerPage / inputs.keysPerMessage);
  const writeUnits = (bytes: number) => Math.ceil(bytes / DYNAMODB_WRITE_UNIT_BYTES);
  const pageRecordBytes = inputs.keysPerPage * (inputs.avgKeyBytes + inputs.pageRecordBytesPerKey);
  const listerWru = writeUnits(pageRecordBytes) + writeUnits(inputs.totalsItemBytes) + writeUnits(inputs.jobItemBytes);
  const moverWru =
    batches * (writeUnits(inputs.ledgerBytesPerKey * inputs.keysPerMessage) + writeUnits(inputs.totalsItemBytes));
  // Strongly consistent GetItems of items under 4 KB: the lister's page lookup, and per batch its ledger and its
  // page's totals. (The job record read when a page resolves is the count's ReturnValues: no read units.)
  const rru = 1 + batches * 2;
  // The resolved page's count: an update of the job record.
  const countWru = writeUnits(inputs.jobItemBytes);
  // Page records and ledgers live in a partition per page; only the totals items, the roll-ups, the cursor and the
  // count share the job's partition key, so they alone count against one partition's write units.
  const jobPartitionWru =
    writeUnits(inputs.totalsItemBytes) * (1 + batches) + writeUnits(inputs.jobItemBytes) + countWru;
  return { wru: listerWru + moverWru + countWru, rru, jobPartitionWru };
}

/** SQS requests billed per page: SendMessageBatch and the event source's ReceiveMessage by 64 KB, one DeleteMessageBatch per 10. */
export function sqsRequestsPerPage(inputs: ModelInputs): number {
  const messages = Math.ceil(inputs.keysPerPage / inputs.keysPerMessage);
  const bytes = inputs.keysPerPage * (Math.ceil((inputs.avgKeyBytes * 4) / 3) + inputs.messageBytesPerKey);
  const calls = Math.max(Math.ceil(messages / SQS_MAX_BATCH_ENTRIES), Math.ceil(bytes / SQS_MAX_BATCH_BYTES));
  const billedPerCall = Math.ceil(bytes / calls / SQS_BILLING_CHUNK);
  const sends = calls * billedPerCall;
  const receives = sends; // the event source receives up to 10 messages per ReceiveMessage (batchSize 10)
  const deletes = Math.ceil(messages / SQS_MAX_BATCH_ENTRIES);
  return sends + receives + deletes;
}

/**
 * Estimates one move. Listing feeds the movers at `limits.listing`; the movers ramp up as the SQS event source adds
 * invocations, to the lowest of their CPU/latency bound, S3's prefix limit and the job's DynamoDB partition. A job's
 * done check sums its page totals only for its last pages (`sumsPerJob`): it adds read units, not time.
 */
export function estimateMove(inputs: ModelInputs): MoveEstimate {
  validateInputs(inputs);
  const n = inputs.objects;
  const worker = perWorkerRate(inputs);
  const pages = Math.ceil(n / inputs.keysPerPage);
  const jobs = Math.min(inputs.jobs, pages);
  const units = dynamodbUnitsPerPage(inputs);
  const dynamodbKeysPerJob = inputs.dynamodbPartitionWru / (units.jobPartitionWru / inputs.keysPerPage);
  const invocations = Math.ceil(n / worker.keysPerInvocation);
  const workers = Math.max(
    1,
    Math.min(inputs.workers, inputs.lambdaMaxConcurrency, inputs.accountConcurrency - jobs, invocations),
  );

  const s3Prefix = Math.min(
    (inputs.prefixes * inputs.s3WritesPerPrefix) / copyRequestsPerObject(inputs),
    inputs.headsPerObject > 0 ? (inputs.prefixes * inputs.s3ReadsPerPrefix) / inputs.headsPerObject : Infinity,
  );
  const dynamodbPartition = jobs * dynamodbKeysPerJob;
  const listing = jobs * Math.min(inputs.listKeysPerSecond, dynamodbKeysPerJob);
  const workerLimit = workers * worker.rate;
  const moveCap = Math.min(workerLimit, s3Prefix, dynamodbPartition);
  const moveBinding: Binding =
    moveCap === workerLimit
      ? worker.cpu <= worker.latency
        ? "client-cpu"
        : "latency"
      : moveCap === s3Prefix
        ? "s3-prefix"
        : "dynamodb-partition";

  // The event source adds invocations linearly until they carry moveCap (or maximumConcurrency is reached).
  const startWorkers = Math.min(inputs.lambdaInitialConcurrency, workers);
  const workersNeeded = Math.min(workers, Math.min(s3Prefix, dynamodbPartition) / worker.rate);
  const rampSeconds = Math.max(0, (workersNeeded - startWorkers) / (inputs.lambdaRampPerMinute / 60));
  const startRate = Math.min(startWorkers * worker.rate, moveCap);
  const rampObjects = (rampSeconds * (startRate + moveCap)) / 2;
  const acceleration = rampSeconds > 0 ? (moveCap - startRate) / rampSeconds : 0;
  const flowSeconds =
    n <= rampObjects
      ? (-startRate + Math.sqrt(startRate * startRate + 2 * acceleration * n)) / acceleration
      : rampSeconds + (n - rampObjects) / moveCap;
  const rampBinds = 2 * rampSeconds > flowSeconds;

  const listingSeconds = n / listing;
  const pagesPerJob = Math.ceil(pages / jobs);
  const readsPerDoneCheck = Math.ceil((pagesPerJob * inputs.totalsItemBytes) / DYNAMODB_READ_UNIT_BYTES) + 1;

  let moveSeconds: number;
  let binding: Binding;
  if (moveCap >= listing) {
    // Movers keep up: the move ends one invocation after the last page is listed.
    const drainSeconds = Math.min(n, worker.keysPerInvocation) / worker.rate;
    moveSeconds = Math.max(listingSeconds + drainSeconds, flowSeconds);
    const listingBinds = listingSeconds + drainSeconds >= flowSeconds;
    binding = listingBinds
      ? dynamodbKeysPerJob < inputs.listKeysPerSecond
        ? "dynamodb-partition"
        : "listing"
      : rampBinds
        ? "lambda-scaling"
        : moveBinding;
  } else {
    moveSeconds = flowSeconds;
    binding = rampBinds ? "lambda-scaling" : moveBinding;
  }
  const seconds = inputs.startupSeconds + moveSeconds;

  // Throttled invocations (S3 503s, DynamoDB throttling) keep running and are billed; otherwise only useful work is.
  const throttled = binding === "s3-prefix" || binding === "dynamodb-partition";
  const moverSeconds = throttled ? workers * moveSeconds : n / worker.rate;
  const listerInvocations = jobs * Math.ceil(listingSeconds / inputs.listerInvocationSeconds);
  const lambdaGbSeconds =
    (moverSeconds * inputs.memoryMb) / KIB + (jobs * listingSeconds * inputs.listerMemoryMb) / KIB;
  const lambdaInvocations = invocations + listerInvocations + jobs;

  const doneChecks = jobs * Math.min(pagesPerJob, Math.max(1, inputs.sumsPerJob));
  const dynamodbWru = pages * units.wru;
  const dynamodbRru = pages * units.rru + doneChecks * readsPerDoneCheck;
  const sqs = pages * sqsRequestsPerPage(inputs);
  const sqsFifo = listerInvocations * 3; // list token: send, receive, delete
  const s3Copy = n * copyRequestsPerObject(inputs);
  const s3Head = n * inputs.headsPerObject;
  const s3List = pages;
  const s3Delete = Math.ceil(n / inputs.keysPerMessage);

  const costs = {
    s3Copy: (s3Copy / 1000) * inputs.priceS3WritePer1000 + (s3Head / 1000) * inputs.priceS3ReadPer1000,
    s3List: (s3List / 1000) * inputs.priceS3WritePer1000,
    sqs: (sqs / 1e6) * inputs.priceSqsPerMillion + (sqsFifo / 1e6) * inputs.priceSqsFifoPerMillion,
    lambda: lambdaGbSeconds * inputs.priceLambdaGbSecond + (lambdaInvocations / 1e6) * inputs.priceLambdaPerMillion,
    dynamodb:
      (dynamodbWru / 1e6) * inputs.priceDynamodbWruPerMillion + (dynamodbRru / 1e6) * inputs.priceDynamodbRruPerMillion,
    total: 0,
  };
  costs.total = costs.s3Copy + costs.s3List + costs.sqs + costs.lambda + costs.dynamodb;

  return {
    objects: n,
    seconds,
    binding,
    settings: { workers: inputs.workers, prefixes: inputs.prefixes, jobs: inputs.jobs, inFlight: inputs.inFlight },
    limits: {
      perWorker: worker.rate,
      perWorkerCpu: worker.cpu,
      perWorkerLatency: worker.latency,
      workers: workerLimit,
      s3Prefix,
      dynamodbPartition,
      listing,
    },
    phases: { listingSeconds, rampSeconds, tailSeconds: Math.max(0, moveSeconds - listingSeconds) },
    inFlightNeeded: Math.ceil((Math.min(worker.cpu, worker.latency) * worker.copyMs) / 1000),
    requests: {
      s3Copy,
      s3Head,
      s3List,
      s3Delete,
      sqs,
      sqsFifo,
      lambdaInvocations,
      lambdaGbSeconds,
      dynamodbWru,
      dynamodbRru,
      doneChecks,
    },
    costs,
    baselineSeconds: n * inputs.baselineSecondsPerObject,
  };
}

/**
 * The settings a user controls, sized so that no limit idles another: jobs of at most `maxKeysPerJob` keys (split the
 * key space by prefix and start one job per part), as many invocations as the listing can feed, and as many
 * partitioned prefixes as that rate needs (S3 splits prefixes under sustained load; ask AWS to pre-partition for
 * a planned large move).
 */
export function recommendSettings(inputs: ModelInputs): { workers: number; prefixes: number; jobs: number } {
  const worker = perWorkerRate(inputs);
  const units = dynamodbUnitsPerPage(inputs);
  const jobs = Math.max(1, Math.ceil(inputs.objects / inputs.maxKeysPerJob));
  const perJob = Math.min(
    inputs.listKeysPerSecond,
    inputs.dynamodbPartitionWru / (units.jobPartitionWru / inputs.keysPerPage),
  );
  const invocations = Math.ceil(inputs.objects / worker.keysPerInvocation);
  const maxWorkers = Math.min(inputs.lambdaMaxConcurrency, inputs.accountConcurrency - jobs, invocations);
  const workers = Math.max(1, Math.min(maxWorkers, Math.ceil((jobs * perJob) / worker.rate)));
  const rate = Math.min(jobs * perJob, workers * worker.rate);
  const writes = (rate * copyRequestsPerObject(inputs)) / inputs.s3WritesPerPrefix;
  const reads = (rate * inputs.headsPerObject) / inputs.s3ReadsPerPrefix;
  return { workers, prefixes: Math.max(1, Math.ceil(Math.max(writes, reads))), jobs };
}

/** `inputs` with the recommended workers, prefixes and jobs. */
export function tuneInputs(inputs: ModelInputs): ModelInputs {
  return { ...inputs, ...recommendSettings(inputs) };
}

function validateInputs(inputs: ModelInputs): void {
  for (const [name, value] of Object.entries(inputs)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`Model input ${name} must be a finite number ≥ 0, got ${String(value)}`);
    }
  }
  for (const name of ["objects", "inFlight", "workers", "jobs", "prefixes", "keysPerPage", "keysPerMessage"] as const) {
    if (!Number.isInteger(inputs[name]) || inputs[name] < 1) {
      throw new TypeError(`Model input ${name} must be a whole number ≥ 1, got ${inputs[name]}`);
    }
  }
  for (const name of [
    "latencyMs",
    "copyMBps",
    "cpuMsPerS3Request",
    "listKeysPerSecond",
    "s3WritesPerPrefix",
  ] as const) {
    if (inputs[name] <= 0) throw new TypeError(`Model input ${name} must be > 0, got ${inputs[name]}`);
  }
}

// ---- formatting ----

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 86_400) return `${(seconds / 3600).toFixed(1)} h`;
  if (seconds < 365 * 86_400) return `${(seconds / 86_400).toFixed(1)} d`;
  return `${(seconds / (365 * 86_400)).toFixed(1)} y`;
}

export function formatDollars(dollars: number): string {
  if (dollars === 0) return "$0";
  if (dollars >= 100) return `$${Math.round(dollars).toLocaleString("en-US")}`;
  if (dollars >= 0.095) return `$${dollars.toFixed(2)}`;
  if (dollars < 0.0001) return "<$0.0001";
  return `$${Number(dollars.toPrecision(2))}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: 0 });
}

/** A markdown table: one row per estimate. */
export function formatTable(estimates: readonly MoveEstimate[]): string {
  const header = [
    "objects",
    "wall time",
    "binds",
    "workers / prefixes / jobs",
    "S3 COPY",
    "S3 LIST",
    "SQS",
    "Lambda",
    "DynamoDB",
    "total",
    "sequential baseline",
  ];
  const rows = estimates.map((e) => [
    formatCount(e.objects),
    formatDuration(e.seconds),
    e.binding,
    `${e.settings.workers} / ${e.settings.prefixes} / ${e.settings.jobs}`,
    formatDollars(e.costs.s3Copy),
    formatDollars(e.costs.s3List),
    formatDollars(e.costs.sqs),
    formatDollars(e.costs.lambda),
    formatDollars(e.costs.dynamodb),
    formatDollars(e.costs.total),
    formatDuration(e.baselineSeconds),
  ]);
  return [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}
