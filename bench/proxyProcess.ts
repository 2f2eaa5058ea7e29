// The latency proxy of the benchmark, in its own process so that neither the bench nor the tool pays for its CPU:
//   node bench/proxyProcess.ts --target http://127.0.0.1:PORT --latency-ms 20
// Started by bench/proxyClient.ts with an IPC channel. It sends { endpoint } once listening, then answers
// { id, op: "counts" | "reset" } with { id, counts }, and exits when the channel closes (the bench exited).
import { parseArgs } from "node:util";
import { type ProxyCounts, startProxy } from "../test/support/proxy.ts";

export interface ProxyTimelineSecond {
  s3: number;
  sqs: number;
  dynamodb: number;
  byOperation: Record<string, number>;
}

/** When an operation was first and last forwarded, in ms since the reset: a tool's phases, to the millisecond. */
export interface ProxySpan {
  count: number;
  firstMs: number;
  lastMs: number;
}

/** Counts since the last reset, plus the same per second since the reset (when each request was forwarded). */
export interface ProxySnapshot extends ProxyCounts {
  timeline: ProxyTimelineSecond[];
  spans: Record<string, ProxySpan>;
}

export type ProxyRequest = { id: number; op: "counts" | "reset" };
export type ProxyReply = { id: number; counts: ProxySnapshot };
export type ProxyHello = { endpoint: string };

const { values } = parseArgs({ options: { target: { type: "string" }, "latency-ms": { type: "string" } } });
if (!values.target || !process.send) {
  process.stderr.write("usage: node bench/proxyProcess.ts --target URL [--latency-ms N], with an IPC channel\n");
  process.exit(2);
}
const latencyMs = Number(values["latency-ms"] ?? 20);

let resetAt = Date.now();
let timeline: ProxyTimelineSecond[] = [];
let spans: Record<string, ProxySpan> = {};
const proxy = await startProxy({
  target: values.target,
  latencyMs,
  // Called once per request, after the delay and just before it is forwarded: never answers, only records when.
  respond: (info) => {
    const ms = Date.now() - resetAt;
    const span = spans[info.operation];
    if (span) {
      span.count += 1;
      span.lastMs = ms;
    } else spans[info.operation] = { count: 1, firstMs: ms, lastMs: ms };
    const second = Math.floor(ms / 1000);
    // Bounded: a run longer than a day keeps counting in its last bucket.
    const index = Math.min(second, 86_400);
    for (let i = timeline.length; i <= index; i++) timeline.push({ s3: 0, sqs: 0, dynamodb: 0, byOperation: {} });
    const bucket = timeline[index] as ProxyTimelineSecond;
    bucket[info.service] += 1;
    bucket.byOperation[info.operation] = (bucket.byOperation[info.operation] ?? 0) + 1;
    return undefined;
  },
});

process.on("message", (message: ProxyRequest) => {
  if (message.op === "reset") {
    proxy.resetCounts();
    resetAt = Date.now();
    timeline = [];
    spans = {};
  }
  const reply: ProxyReply = { id: message.id, counts: { ...proxy.counts(), timeline, spans } };
  process.send?.(reply);
});
process.on("disconnect", () => {
  void proxy.stop().finally(() => process.exit(0));
});
process.send({ endpoint: proxy.endpoint } satisfies ProxyHello);
