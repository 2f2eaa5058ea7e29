// A loopback HTTP proxy in front of the emulator: adds latency (there is no netem here), counts requests per
// service and operation, injects faults at a seeded rate, and lets a test answer chosen requests itself.
// S3 requests are expected path-style (`forcePathStyle: true`).
import { randomUUID } from "node:crypto";
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export type Service = "s3" | "sqs" | "dynamodb";
export type FaultKind = "500" | "503" | "reset";

export interface ProxyRequestInfo {
  service: Service;
  /** The API operation, e.g. "CopyObject", "SendMessageBatch", "UpdateItem". */
  operation: string;
  method: string;
  /** Decoded path: "/bucket/key" for S3, "/" or the queue path otherwise. */
  path: string;
  /** The URL's query, decoded (S3's list parameters, for one). */
  query: URLSearchParams;
  /** S3 only: the bucket and key the path names (a CopyObject's source is in `x-amz-copy-source`). */
  bucket?: string;
  key?: string;
  headers: IncomingHttpHeaders;
  /** A DeleteObjects request's XML body (its keys and their ETag conditions); read only for that operation. */
  body?: string;
}

export interface ProxyFaults {
  /** Share of matching requests that fail, 0..1. */
  rate: number;
  /** Seed of the PRNG that picks the failures and their kinds; the same seed fails the same requests. Default 1. */
  seed?: number;
  /** Default: all three. "reset" drops the connection without an answer. */
  kinds?: FaultKind[];
  /** Only these requests may fail; default all. */
  only?: (req: ProxyRequestInfo) => boolean;
}

export interface ProxyResponse {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

/** Answers a request instead of the emulator; return (or resolve to) undefined to forward it. */
export type ProxyResponder = (req: ProxyRequestInfo) => ProxyResponse | undefined | Promise<ProxyResponse | undefined>;

export interface ProxyOptions {
  /** The emulator, e.g. "http://127.0.0.1:4566". */
  target: string;
  /** Held before each request is forwarded or answered. Default 0. */
  latencyMs?: number;
  faults?: ProxyFaults;
  respond?: ProxyResponder;
}

export interface ProxyCounts {
  s3: number;
  sqs: number;
  dynamodb: number;
  byOperation: Record<string, number>;
}

export interface LoopbackProxy {
  /** `http://127.0.0.1:<port>`: give it to the clients instead of the emulator's endpoint. */
  endpoint: string;
  port: number;
  counts(): ProxyCounts;
  resetCounts(): void;
  setFaults(faults: ProxyFaults | undefined): void;
  setRespond(respond: ProxyResponder | undefined): void;
  stop(): Promise<void>;
}

export async function startProxy(options: ProxyOptions): Promise<LoopbackProxy> {
  const target = new URL(options.target);
  if (target.protocol !== "http:") {
    throw new TypeError(`Expected \`target\` to be an http:// URL, got ${options.target}.`);
  }
  const latencyMs = options.latencyMs ?? 0;
  if (!(latencyMs >= 0)) throw new TypeError(`Expected \`latencyMs\` to be 0 or more, got ${latencyMs}.`);
  // Many SDK clients run hundreds of requests in flight: keep that many sockets open to the emulator.
  const agent = new Agent({ keepAlive: true, maxSockets: 1024 });
  let counts = emptyCounts();
  let faults = faultInjector(options.faults);
  let respond = options.respond;

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      // A throwing `respond` or `only` callback, or a client gone mid-body: answer if still possible, never crash.
      if (res.headersSent) res.destroy(err);
      else res.writeHead(500).end(`proxy: ${err.stack ?? err.message}`);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The Action of a Query-protocol SQS call is in its form body, so those (small) bodies are read here.
    const formBody = isForm(req.headers) ? await readBody(req) : undefined;
    let info = classify(req, formBody);
    let body = formBody;
    if (info.operation === "DeleteObjects") {
      // S3 leaves delete conditions to the body, which the emulator ignores: a test reads them here.
      body = await readBody(req);
      info = { ...info, body: body.toString("utf8") };
    }
    counts[info.service] += 1;
    counts.byOperation[info.operation] = (counts.byOperation[info.operation] ?? 0) + 1;
    if (latencyMs > 0) await sleep(latencyMs);

    const answer = (await respond?.(info)) ?? faults(info);
    if (answer === "reset") {
      req.socket.destroy();
      return;
    }
    if (answer) {
      if (body === undefined) await readBody(req);
      res.writeHead(answer.status, answer.headers).end(answer.body);
      return;
    }
    forward(req, res, body);
  }

  function forward(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): void {
    const upstream = request({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent,
    });
    upstream.on("response", (reply) => {
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      reply.pipe(res);
    });
    upstream.on("error", (err) => {
      if (res.headersSent) res.destroy(err);
      else res.writeHead(502).end(`proxy: ${options.target} did not answer: ${err.message}`);
    });
    // The client gave up: stop the upstream request too.
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    if (body === undefined) req.pipe(upstream);
    else upstream.end(body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    counts: () => ({ ...counts, byOperation: { ...counts.byOperation } }),
    resetCounts: () => {
      counts = emptyCounts();
    },
    setFaults: (next) => {
      faults = faultInjector(next);
    },
    setRespond: (next) => {
      respond = next;
    },
    async stop() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
      agent.destroy();
    },
  };
}

function emptyCounts(): ProxyCounts {
  return { s3: 0, sqs: 0, dynamodb: 0, byOperation: {} };
}

/** Decides, for each request, whether it fails and how; a seeded PRNG makes a run repeatable. */
function faultInjector(
  faults: ProxyFaults | undefined,
): (req: ProxyRequestInfo) => ProxyResponse | "reset" | undefined {
  if (!faults) return () => undefined;
  if (!(faults.rate >= 0 && faults.rate <= 1)) {
    throw new TypeError(`Expected \`faults.rate\` to be a number from 0 to 1, got ${faults.rate}.`);
  }
  const kinds = faults.kinds ?? ["500", "503", "reset"];
  if (kinds.length === 0) throw new TypeError("Expected `faults.kinds` to name at least one kind, got [].");
  const random = mulberry32(faults.seed ?? 1);
  return (req) => {
    if (faults.only && !faults.only(req)) return undefined;
    if (random() >= faults.rate) return undefined;
    const kind = kinds[Math.floor(random() * kinds.length)] ?? "500";
    return kind === "reset" ? "reset" : errorResponse(req, kind);
  };
}

/** Small, fast, seedable PRNG (public domain, by Tommy Ettinger): floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What each service answers for a 500 and a 503 (code, message), so the SDKs parse and retry them as on AWS. */
const SERVICE_ERRORS: Record<Service, Record<"500" | "503", [string, string]>> = {
  s3: {
    "500": ["InternalError", "We encountered an internal error. Please try again."],
    "503": ["SlowDown", "Please reduce your request rate."],
  },
  sqs: {
    "500": ["InternalFailure", "The request processing has failed because of an unknown error."],
    "503": ["ServiceUnavailable", "The request has failed due to a temporary failure of the server."],
  },
  dynamodb: {
    "500": ["InternalServerError", "Internal server error"],
    "503": ["ServiceUnavailable", "The service is currently unavailable or busy."],
  },
};

function errorResponse(req: ProxyRequestInfo, kind: "500" | "503"): ProxyResponse {
  const status = Number(kind);
  const [code, message] = SERVICE_ERRORS[req.service][kind];
  const requestId = randomUUID();
  if (req.service === "s3") {
    return {
      status,
      headers: { "content-type": "application/xml", "x-amz-request-id": requestId },
      body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId><HostId>proxy</HostId></Error>`,
    };
  }
  if (req.service === "sqs" && isForm(req.headers)) {
    return {
      status,
      headers: { "content-type": "text/xml" },
      body: `<?xml version="1.0"?><ErrorResponse><Error><Type>Receiver</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
    };
  }
  const namespace = req.service === "sqs" ? "com.amazonaws.sqs" : "com.amazonaws.dynamodb.v20120810";
  return {
    status,
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amzn-requestid": requestId,
      // SQS's JSON protocol also names the error in this header, for clients that moved from the Query protocol.
      ...(req.service === "sqs" ? { "x-amzn-query-error": `${code};Receiver` } : {}),
    },
    body: JSON.stringify({ __type: `${namespace}#${code}`, message }),
  };
}

function classify(req: IncomingMessage, formBody: Buffer | undefined): ProxyRequestInfo {
  const method = req.method ?? "GET";
  const url = new URL(req.url ?? "/", "http://proxy");
  const path = decodePath(url.pathname);
  const query = url.searchParams;
  const headers = req.headers;
  const target = headers["x-amz-target"];
  if (typeof target === "string" && target.startsWith("DynamoDB_")) {
    return { service: "dynamodb", operation: operationOf(target), method, path, query, headers };
  }
  if (typeof target === "string" && target.startsWith("AmazonSQS")) {
    return { service: "sqs", operation: operationOf(target), method, path, query, headers };
  }
  const action = formBody && new URLSearchParams(formBody.toString("utf8")).get("Action");
  if (action) return { service: "sqs", operation: action, method, path, query, headers };

  const [, bucket = "", ...keyParts] = path.split("/");
  const key = keyParts.join("/");
  return {
    service: "s3",
    operation: s3Operation(method, url.searchParams, headers, bucket, key),
    method,
    path,
    query,
    bucket: bucket || undefined,
    key: key || undefined,
    headers,
  };
}

/** "DynamoDB_20120810.PutItem" → "PutItem" */
function operationOf(target: string): string {
  return target.slice(target.indexOf(".") + 1);
}

/** Names the S3 operation from what the REST API puts in method, query and headers. */
function s3Operation(
  method: string,
  query: URLSearchParams,
  headers: IncomingHttpHeaders,
  bucket: string,
  key: string,
): string {
  const copy = headers["x-amz-copy-source"] !== undefined;
  if (!bucket) return method === "GET" ? "ListBuckets" : `${method} /`;
  if (!key) {
    if (method === "GET") {
      if (query.get("list-type") === "2") return "ListObjectsV2";
      if (query.has("uploads")) return "ListMultipartUploads";
      if (query.has("versions")) return "ListObjectVersions";
      if (query.has("location")) return "GetBucketLocation";
      if (query.has("lifecycle")) return "GetBucketLifecycleConfiguration";
      if (query.has("tagging")) return "GetBucketTagging";
      return "ListObjects";
    }
    if (method === "POST" && query.has("delete")) return "DeleteObjects";
    if (method === "PUT") {
      if (query.has("lifecycle")) return "PutBucketLifecycleConfiguration";
      if (query.has("tagging")) return "PutBucketTagging";
      return "CreateBucket";
    }
    if (method === "HEAD") return "HeadBucket";
    if (method === "DELETE") return query.has("lifecycle") ? "DeleteBucketLifecycle" : "DeleteBucket";
    return `${method} bucket`;
  }
  const multipart = query.has("uploadId");
  switch (method) {
    case "GET":
      if (multipart) return "ListParts";
      if (query.has("tagging")) return "GetObjectTagging";
      if (query.has("attributes")) return "GetObjectAttributes";
      return "GetObject";
    case "HEAD":
      return "HeadObject";
    case "PUT":
      if (multipart && query.has("partNumber")) return copy ? "UploadPartCopy" : "UploadPart";
      if (query.has("tagging")) return "PutObjectTagging";
      return copy ? "CopyObject" : "PutObject";
    case "POST":
      if (query.has("uploads")) return "CreateMultipartUpload";
      if (multipart) return "CompleteMultipartUpload";
      return `${method} object`;
    case "DELETE":
      if (multipart) return "AbortMultipartUpload";
      if (query.has("tagging")) return "DeleteObjectTagging";
      return "DeleteObject";
    default:
      return `${method} object`;
  }
}

function decodePath(pathname: string): string {
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

function isForm(headers: IncomingHttpHeaders): boolean {
  return headers["content-type"]?.startsWith("application/x-www-form-urlencoded") ?? false;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
