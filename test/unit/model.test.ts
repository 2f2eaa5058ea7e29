import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  copyRequestsPerObject,
  DEFAULT_INPUTS,
  dynamodbUnitsPerPage,
  estimateMove,
  formatDuration,
  type ModelInputs,
  perWorkerRate,
  recommendSettings,
  sqsRequestsPerPage,
} from "../../bench/model.ts";
import { splitIntoBatches } from "../../src/core/batching.ts";
import { buildMoveMessage } from "../../src/core/messages.ts";
import type { ListedObject } from "../../src/types.ts";

/**
 * A fixed copy of the model's inputs (DEFAULT_INPUTS will move with bench results; these must not), so every expected
 * value below can be recomputed by hand from the numbers here.
 */
const KNOWN: ModelInputs = {
  objects: 1_000_000,
  avgKb: 200,
  avgKeyBytes: 50,
  latencyMs: 30,
  copyMBps: 100,
  inFlight: 256,
  workers: 50,
  jobs: 1,
  prefixes: 1,
  headsPerObject: 0,
  cpuMsPerS3Request: 1.0,
  cpuMsPerSdkRequest: 1.0,
  invocationOverheadMs: 100,
  startupSeconds: 2,
  listKeysPerSecond: 10_000,
  keysPerPage: 1000,
  keysPerMessage: 100,
  messagesPerInvocation: 10,
  memoryMb: 1769,
  listerMemoryMb: 512,
  listerInvocationSeconds: 100,
  multipartThresholdMb: 1024,
  partSizeMb: 256,
  s3WritesPerPrefix: 3500,
  s3ReadsPerPrefix: 5500,
  lambdaInitialConcurrency: 5,
  lambdaRampPerMinute: 300,
  lambdaMaxConcurrency: 1000,
  accountConcurrency: 1000,
  pageRecordBytesPerKey: 48,
  ledgerBytesPerKey: 16,
  totalsItemBytes: 323,
  jobItemBytes: 1500,
  messageBytesPerKey: 71,
  dynamodbPartitionWru: 1000,
  dynamodbPartitionRru: 3000,
  maxKeysPerJob: 10_000_000,
  sumsPerJob: 9,
  priceS3WritePer1000: 0.005,
  priceS3ReadPer1000: 0.0004,
  priceSqsPerMillion: 0.4,
  priceSqsFifoPerMillion: 0.5,
  priceLambdaGbSecond: 0.0000133334,
  priceLambdaPerMillion: 0.2,
  priceDynamodbWruPerMillion: 0.625,
  priceDynamodbRruPerMillion: 0.125,
  baselineSecondsPerObject: 0.35,
};

// One invocation: 1,000 keys × (1.0 ms × (1 copy + 1/100 DeleteObjects) + 1.0 ms × 4/100 DynamoDB calls) = 1.05 s of CPU,
// + 0.1 s overhead = 1.15 s → 1,000 / 1.15 = 869.565 objects/s per worker.
const PER_WORKER = 1000 / 1.15;

describe("perWorkerRate", () => {
  it("is bound by client CPU with the SDK: 1.05 ms per object, 1.15 s per 1,000-key invocation", () => {
    const worker = perWorkerRate(KNOWN);
    expect(worker.cpuMsPerObject).toBeCloseTo(1.05, 10);
    expect(worker.cpu).toBeCloseTo(1000 / 1.05, 6); // 952.38/s
    // copy time 30 ms + 204,800 bytes at 100 MB/s (2.048 ms) = 32.048 ms; 256 in flight → 7,988/s
    expect(worker.copyMs).toBeCloseTo(32.048, 6);
    expect(worker.latency).toBeCloseTo(256_000 / 32.048, 6);
    expect(worker.rate).toBeCloseTo(PER_WORKER, 6);
  });

  it("is bound by latency when few copies are in flight", () => {
    // 16 in flight / 32.048 ms = 499.25/s < 952/s of CPU; 1,000 keys take 2.003 s + 0.1 s
    const worker = perWorkerRate({ ...KNOWN, inFlight: 16 });
    expect(worker.latency).toBeCloseTo(16_000 / 32.048, 6);
    expect(worker.rate).toBeCloseTo(1000 / (1000 / (16_000 / 32.048) + 0.1), 6);
  });
});

describe("requests per page and per object", () => {
  it("counts DynamoDB units: a 96-WRU page record dominates", () => {
    // lister: page record 1,000 × (50 + 48) = 98,000 B → 96 WRU, totals 323 B → 1, cursor on a 1,500 B job → 2
    // movers: 10 batches × (ledger 1,600 B → 2 + totals update → 1) = 30, and the page's count on the job → 2
    // reads: 1 + 10 × 2 = 21
    // the job's own partition takes only the totals put, 10 roll-ups, the cursor and the count: 1 + 10 + 2 + 2 = 15
    expect(dynamodbUnitsPerPage(KNOWN)).toEqual({ wru: 96 + 1 + 2 + 30 + 2, rru: 21, jobPartitionWru: 15 });
  });

  it("counts SQS requests by 64 KB chunk: 7 per page of 50-byte keys", () => {
    // 1,000 × (67 base64url + 71) = 138,000 B in one SendMessageBatch → 3 chunks; receive 3; DeleteMessageBatch 1
    expect(sqsRequestsPerPage(KNOWN)).toBe(7);
  });

  it("uses multipart copy requests above the threshold", () => {
    expect(copyRequestsPerObject(KNOWN)).toBe(1);
    // 2 GiB: Create + 8 parts of 256 MiB + Complete
    expect(copyRequestsPerObject({ ...KNOWN, avgKb: 2 * 1024 * 1024 })).toBe(10);
  });
});

describe("estimateMove", () => {
  it("1M objects on one prefix with 50 workers: S3's 3,500 writes/s bind, $5.42", () => {
    const e = estimateMove(KNOWN);
    expect(e.binding).toBe("s3-prefix");
    expect(e.limits.s3Prefix).toBe(3500);
    expect(e.limits.workers).toBeCloseTo(50 * PER_WORKER, 6);
    // the job's partition: 1,000 WRU/s ÷ 0.015 WRU per key (page records and ledgers have partitions of their own)
    expect(e.limits.dynamodbPartition).toBeCloseTo(1000 / 0.015, 6);
    expect(e.phases.listingSeconds).toBeCloseTo(100, 6); // 1,000,000 keys at 10,000 keys/s
    expect(e.phases.rampSeconds).toBe(0); // 4.03 workers carry 3,500/s: the first 5 are enough
    // 2 s start + 1,000,000 / 3,500 s
    expect(e.seconds).toBeCloseTo(2 + 1e6 / 3500, 6);
    expect(e.inFlightNeeded).toBe(31); // 952.38/s × 32.048 ms = 30.5

    expect(e.requests).toMatchObject({ s3Copy: 1e6, s3List: 1000, s3Delete: 10_000, sqs: 7000, sqsFifo: 3 });
    expect(e.costs.s3Copy).toBeCloseTo(5, 10);
    expect(e.costs.s3List).toBeCloseTo(0.005, 10);
    // 7,000 × $0.40/M + 1 list token × 3 FIFO requests × $0.50/M
    expect(e.costs.sqs).toBeCloseTo(0.0028 + 0.0000015, 10);
    // throttled workers are billed: 50 × 285.714 s × 1.7275 GB + lister 100 s × 0.5 GB, + 1,002 invocations
    const gbSeconds = ((50 * 1e6) / 3500) * (1769 / 1024) + 100 * 0.5;
    expect(e.requests.lambdaGbSeconds).toBeCloseTo(gbSeconds, 6);
    expect(e.costs.lambda).toBeCloseTo(gbSeconds * 0.0000133334 + 1002 * 0.2e-6, 10);
    // 131,000 WRU; 21,000 RRU + the last 9 pages' sums of the totals × (79 + 1) RRU
    expect(e.requests.doneChecks).toBe(9);
    expect(e.requests.dynamodbRru).toBe(21_000 + 9 * 80);
    expect(e.costs.dynamodb).toBeCloseTo(131_000 * 0.625e-6 + 21_720 * 0.125e-6, 10);
    expect(e.costs.total).toBeCloseTo(
      e.costs.s3Copy + e.costs.s3List + e.costs.sqs + e.costs.lambda + e.costs.dynamodb,
      10,
    );
    expect(e.costs.total).toBeCloseTo(5.4223, 4); // 5 + 0.005 + 0.0028015 + 0.3299238 + 0.08459
    expect(e.baselineSeconds).toBe(350_000); // ~4 days
  });

  it("1,000 objects: one invocation, bound by its CPU", () => {
    const e = estimateMove({ ...KNOWN, objects: 1000 });
    expect(e.binding).toBe("client-cpu");
    expect(e.seconds).toBeCloseTo(2 + 1.15, 6);
    expect(e.baselineSeconds).toBe(350); // the original program's ~6 minutes
  });

  it("few copies in flight: latency binds", () => {
    // 5 workers × 475.5/s = 2,377.6/s < 3,500/s
    const e = estimateMove({ ...KNOWN, objects: 100_000, inFlight: 16, workers: 5 });
    const perWorker = 1000 / (1000 / (16_000 / 32.048) + 0.1);
    expect(e.binding).toBe("latency");
    expect(e.seconds).toBeCloseTo(2 + 100_000 / (5 * perWorker), 6);
  });

  it("many workers on a small move: the event source's ramp binds", () => {
    // Capacity grows by 5 workers/s × 869.565/s from 5 workers: N = 5r·t + 5r·t²/2 → t = −1 + √(1 + 2N/5r)
    const e = estimateMove({ ...KNOWN, workers: 1000, prefixes: 1000, jobs: 100 });
    expect(e.binding).toBe("lambda-scaling");
    expect(e.seconds).toBeCloseTo(2 - 1 + Math.sqrt(1 + (2 * 1e6) / (5 * PER_WORKER)), 6);
  });

  it("movers faster than the lister: listing binds, plus one invocation to drain", () => {
    // with 2,000 WRU/s the lister reaches its 10,000 keys/s; movers could do 15,504/s
    const e = estimateMove({ ...KNOWN, prefixes: 10, workers: 100, dynamodbPartitionWru: 2000 });
    expect(e.binding).toBe("listing");
    expect(e.seconds).toBeCloseTo(2 + 100 + 1.15, 6);
  });

  it("one 100M-key job: S3's prefix binds, and only the last 9 pages' checks sum the 100,000 totals items", () => {
    const e = estimateMove({ ...KNOWN, objects: 1e8 });
    expect(e.binding).toBe("s3-prefix");
    expect(e.seconds).toBeCloseTo(2 + 1e8 / 3500, 6);
    // each sum reads ceil(100,000 × 323 / 4,096) + 1 = 7,887 RRU
    expect(e.requests.doneChecks).toBe(9);
    expect(e.requests.dynamodbRru).toBe(1e5 * 21 + 9 * 7887);
  });

  it("rejects nonsense with a TypeError naming the input", () => {
    expect(() => estimateMove({ ...KNOWN, objects: 0 })).toThrow(/objects/);
    expect(() => estimateMove({ ...KNOWN, latencyMs: Number.NaN })).toThrow(TypeError);
  });
});

describe("recommendSettings", () => {
  it("splits 100M keys into 10 jobs and sizes workers and prefixes to their listing rate", () => {
    // 10 jobs × 10,000 keys/s listing (their partitions allow ~67,000) = 100,000/s → 100,000 / 869.565 = 115.0…01
    // workers, rounded up to 116; ⌈100,000 / 3,500⌉ = 29 prefixes
    expect(recommendSettings({ ...KNOWN, objects: 1e8 })).toEqual({ workers: 116, prefixes: 29, jobs: 10 });
  });

  it("asks for nothing a 1,000-key move cannot use", () => {
    expect(recommendSettings({ ...KNOWN, objects: 1000 })).toEqual({ workers: 1, prefixes: 1, jobs: 1 });
  });
});

describe("the byte sizes in DEFAULT_INPUTS match the code", () => {
  const objects: ListedObject[] = Array.from({ length: 1000 }, (_, i) => ({
    k: `photos/2024/${i}`.padEnd(50, "x"),
    e: '"0123456789abcdef0123456789abcdef"',
    s: 204_800 + i,
  }));

  it("move messages: base64url key + messageBytesPerKey per key", () => {
    const job = { id: "20261125-023512-3fa9c1", from: "source-bucket", to: "destination-bucket", overwrite: true };
    const bytes = splitIntoBatches(objects)
      .map(([a, b], batch) =>
        JSON.stringify(
          buildMoveMessage(
            job,
            123,
            batch,
            objects.slice(a, b).map((object, i) => ({ i, object })),
          ),
        ),
      )
      .reduce((sum, body) => sum + Buffer.byteLength(body), 0);
    const modelled = 1000 * (Math.ceil((50 * 4) / 3) + DEFAULT_INPUTS.messageBytesPerKey);
    expect(Math.abs(bytes - modelled) / bytes).toBeLessThan(0.03);
  });

  it("page records: key + pageRecordBytesPerKey per key (DynamoDB item size rules)", () => {
    const item = {
      pk: "PAGE#20261125-023512-3fa9c1#000000123",
      sk: "PAGE",
      objects: JSON.stringify(objects), // as JobStore.putPageIfAbsent writes it
      batches: splitIntoBatches(objects),
      last: false,
    };
    const modelled = 1000 * (50 + DEFAULT_INPUTS.pageRecordBytesPerKey);
    expect(Math.abs(dynamodbItemBytes(item) - modelled) / modelled).toBeLessThan(0.03);
  });

  it("ledger and totals items fit the modelled sizes", () => {
    // A moved key's outcome as moveBatch records it: bytes, the ETag moved and when.
    const outcomes = Object.fromEntries(
      Array.from({ length: 1000 }, (_, i) => [String(i), { o: "m", b: 204_800 + i, e: objects[i]?.e, t: 1.7e12 + i }]),
    );
    const ledger = {
      pk: "PAGE#20261125-023512-3fa9c1#000000123",
      sk: "LEDGER#0",
      outcomes: JSON.stringify(outcomes),
      ver: 3,
    };
    expect(dynamodbItemBytes(ledger)).toBeLessThanOrEqual(1000 * DEFAULT_INPUTS.ledgerBytesPerKey);
    expect(dynamodbItemBytes(ledger)).toBeGreaterThan(950 * DEFAULT_INPUTS.ledgerBytesPerKey);

    const totals: Record<string, unknown> = { pk: "JOB#20261125-023512-3fa9c1", sk: "TOTALS#000000123", seq: 123 };
    Object.assign(totals, {
      keys: 1000,
      bytes: 204_800_000,
      moved: 1000,
      movedBytes: 204_800_000,
      skipped: 0,
      failed: 0,
    });
    for (let b = 0; b < 1000 / DEFAULT_INPUTS.keysPerMessage; b++)
      Object.assign(totals, { [`m_${b}`]: 1000, [`mb_${b}`]: 204_800_000, [`s_${b}`]: 0, [`f_${b}`]: 0 });
    expect(dynamodbItemBytes(totals)).toBeLessThanOrEqual(DEFAULT_INPUTS.totalsItemBytes);
  });
});

describe("bench/model.ts on the command line", () => {
  const script = fileURLToPath(new URL("../../bench/model.ts", import.meta.url));
  const run = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: "utf8" });

  it("prints a markdown table row for --objects 1000", () => {
    const out = run("--objects", "1000");
    expect(out.status).toBe(0);
    const expected = estimateMove({ ...DEFAULT_INPUTS, objects: 1000 });
    expect(out.stdout).toContain("| objects | wall time | binds |");
    expect(out.stdout).toContain(`| 1,000 | ${formatDuration(expected.seconds)} | ${expected.binding} |`);
  });

  it("prints the same numbers as estimateMove with --json", () => {
    const out = run(
      "--objects",
      "1e6",
      "--avg-kb",
      "200",
      "--latency-ms",
      "30",
      "--in-flight",
      "256",
      "--workers",
      "50",
      "--json",
    );
    expect(out.status).toBe(0);
    const parsed = JSON.parse(out.stdout) as { seconds: number; costs: { total: number } };
    const expected = estimateMove({
      ...DEFAULT_INPUTS,
      objects: 1e6,
      avgKb: 200,
      latencyMs: 30,
      inFlight: 256,
      workers: 50,
    });
    expect(parsed.seconds).toBeCloseTo(expected.seconds, 9);
    expect(parsed.costs.total).toBeCloseTo(expected.costs.total, 9);
  });

  it("names the flag of a bad argument and exits non-zero", () => {
    const out = run("--objects", "many");
    expect(out.status).not.toBe(0);
    expect(out.stderr).toContain("--objects");
  });
});

/**
 * DynamoDB item size: attribute names + values; strings by UTF-8 bytes, numbers ~1 byte per 2 significant digits + 1,
 * booleans 1, lists and maps 3 bytes + 1 per element (+ the names of a map's keys).
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
 */
function dynamodbItemBytes(item: Record<string, unknown>): number {
  const value = (v: unknown): number => {
    if (typeof v === "string") return Buffer.byteLength(v);
    if (typeof v === "number") {
      const digits = String(Math.abs(v)).replace(".", "").replace(/^0+/, "").replace(/0+$/, "").length || 1;
      return Math.ceil(digits / 2) + 1;
    }
    if (typeof v === "boolean" || v === null) return 1;
    if (Array.isArray(v)) return 3 + v.reduce((sum: number, x) => sum + 1 + value(x), 0);
    if (typeof v === "object") {
      return 3 + Object.entries(v).reduce((sum, [k, x]) => sum + 1 + Buffer.byteLength(k) + value(x), 0);
    }
    return 0;
  };
  return Object.entries(item).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + value(v), 0);
}
