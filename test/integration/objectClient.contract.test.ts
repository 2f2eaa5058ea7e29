import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import pLimit from "p-limit";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AwsClients, createClients, destroyClients, resolveTarget } from "../../src/aws/clients.ts";
import { type Emulator, startEmulator } from "../../src/emulator/emulator.ts";
import { S3CallError } from "../../src/errors.ts";
import { LeanObjectClient } from "../../src/s3/leanObjectClient.ts";
import type { ObjectClient } from "../../src/s3/objectClient.ts";
import { SdkObjectClient } from "../../src/s3/sdkObjectClient.ts";
import { freshBuckets, listAll } from "../support/harness.ts";
import { type LoopbackProxy, type ProxyRequestInfo, startProxy } from "../support/proxy.ts";

const TRICKY_KEYS = [
  "with space.jpg",
  "a+b.jpg",
  "100%.jpg",
  "what?.jpg",
  "hash#tag.jpg",
  "a&b.jpg",
  "!'()*.jpg",
  "café/naïve/日本語.jpg",
  "📷 emoji 🎉.jpg",
  `long/${"é".repeat(509)}a`, // 1,024 bytes of UTF-8, S3's longest key
  "double//slash",
  "./dot/../x",
];

let emulator: Emulator;
let clients: AwsClients;
beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  clients = createClients(resolveTarget({ endpoint: emulator.endpoint }));
});
afterAll(async () => {
  destroyClients(clients);
  await emulator.stop();
});

function leanClient(endpoint: string, options: { maxAttempts?: number } = {}): LeanObjectClient {
  return new LeanObjectClient({
    endpoint,
    region: clients.target.region ?? "us-east-1",
    credentials: clients.s3.config.credentials,
    ...options,
  });
}

/** Puts each key with its own name as body; returns the keys with their ETags. */
async function putObjects(s3: S3Client, bucket: string, keys: string[]): Promise<Array<{ key: string; etag: string }>> {
  const limit = pLimit(64);
  return Promise.all(
    keys.map((key) =>
      limit(async () => {
        const out = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
        return { key, etag: out.ETag ?? "" };
      }),
    ),
  );
}

describe.each([
  ["SdkObjectClient", () => new SdkObjectClient(clients.s3)],
  ["LeanObjectClient", () => leanClient(emulator.endpoint)],
])("%s against the emulator", (_name, create: () => ObjectClient & { destroy?(): void }) => {
  let client: ObjectClient & { destroy?(): void };
  beforeAll(() => {
    client = create();
  });
  afterAll(() => client.destroy?.());

  it("copies bytes, content type and user metadata, and answers the source's ETag", async () => {
    const { from, to } = await freshBuckets(clients.s3, "copy");
    const bytes = randomBytes(64 * 1024);
    const put = await clients.s3.send(
      new PutObjectCommand({
        Bucket: from,
        Key: "photo.jpg",
        Body: bytes,
        ContentType: "image/jpeg",
        Metadata: { camera: "x100", "taken-at": "2024-05-01T10:00:00Z" },
      }),
    );

    const copied = await client.copyObject({
      fromBucket: from,
      toBucket: to,
      key: "photo.jpg",
      ifMatch: put.ETag ?? "",
    });

    expect(copied.etag).toBe(put.ETag);
    const got = await clients.s3.send(new GetObjectCommand({ Bucket: to, Key: "photo.jpg" }));
    expect(Buffer.from((await got.Body?.transformToByteArray()) ?? [])).toEqual(bytes);
    expect(got.ContentType).toBe("image/jpeg");
    expect(got.Metadata).toEqual({ camera: "x100", "taken-at": "2024-05-01T10:00:00Z" });
  });

  it("copies, heads and deletes tricky keys byte-exact", async () => {
    const { from, to } = await freshBuckets(clients.s3, "tricky");
    const items = await putObjects(clients.s3, from, TRICKY_KEYS);

    for (const { key, etag } of items) {
      await client.copyObject({ fromBucket: from, toBucket: to, key, ifMatch: etag });
      expect(await client.headObject(to, key)).toEqual({ etag, size: Buffer.byteLength(key) });
    }
    expect([...(await listAll(clients.s3, to)).keys()].sort()).toEqual([...TRICKY_KEYS].sort());

    const result = await client.deleteObjects(from, items);
    expect(result.errors).toEqual([]);
    expect([...result.deleted].sort()).toEqual([...TRICKY_KEYS].sort());
    expect((await listAll(clients.s3, from)).size).toBe(0);
  });

  it("lists tricky keys byte-exact, page by page after a start key, and under a prefix", async () => {
    const { from } = await freshBuckets(clients.s3, "listing");
    const items = await putObjects(clients.s3, from, TRICKY_KEYS);
    const expected = new Map(items.map(({ key, etag }) => [key, { etag, size: Buffer.byteLength(key) }]));

    const seen = new Map<string, { etag: string; size: number }>();
    let startAfter = "";
    for (let page = 0; page < 10; page++) {
      const out = await client.listPage(from, { prefix: "", startAfter, maxKeys: 5 });
      for (const o of out.objects) seen.set(o.k, { etag: o.e, size: o.s });
      expect(out.objects.every((o) => o.c === undefined)).toBe(true); // STANDARD is left out
      startAfter = out.objects.at(-1)?.k ?? startAfter;
      if (!out.truncated) break;
      expect(out.objects).toHaveLength(5);
    }
    expect(seen).toEqual(expected);

    const under = await client.listPage(from, { prefix: "café/", startAfter: "", maxKeys: 1000 });
    expect(under).toEqual({
      objects: [
        {
          k: "café/naïve/日本語.jpg",
          e: expected.get("café/naïve/日本語.jpg")?.etag,
          s: Buffer.byteLength("café/naïve/日本語.jpg"),
        },
      ],
      truncated: false,
    });
  });

  it("pages through NextContinuationToken alone, the start key ignored after the first page", async () => {
    const { from } = await freshBuckets(clients.s3, "tokens");
    await putObjects(clients.s3, from, TRICKY_KEYS);
    const seen: string[] = [];
    let continuationToken: string | undefined;
    for (let page = 0; page < 10; page++) {
      const out = await client.listPage(from, {
        prefix: "",
        startAfter: "a+b.jpg",
        maxKeys: 5,
        ...(continuationToken ? { continuationToken } : {}),
      });
      seen.push(...out.objects.map((o) => o.k));
      if (!out.truncated) {
        expect(out.nextContinuationToken).toBeUndefined();
        break;
      }
      expect(out.nextContinuationToken).toEqual(expect.any(String));
      continuationToken = out.nextContinuationToken;
    }
    const sorted = [...TRICKY_KEYS].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(seen).toEqual(sorted.slice(sorted.indexOf("a+b.jpg") + 1));
  });

  it("deletes 1,000 keys in one call", async () => {
    const { from } = await freshBuckets(clients.s3, "thousand");
    const items = await putObjects(clients.s3, from, thousandKeys("img"));

    const result = await client.deleteObjects(from, items);

    expect(result.errors).toEqual([]);
    expect(new Set(result.deleted)).toEqual(new Set(items.map((item) => item.key)));
    expect((await listAll(clients.s3, from)).size).toBe(0);
  });

  it("reports a missing key as deleted, as S3 does for an unconditional delete", async () => {
    const { from } = await freshBuckets(clients.s3, "missing-delete");
    expect(await client.deleteObjects(from, [{ key: "never-there.jpg" }])).toEqual({
      deleted: ["never-there.jpg"],
      errors: [],
    });
  });

  it("heads an object's ETag and size, and a missing key as undefined", async () => {
    const { from } = await freshBuckets(clients.s3, "head");
    const [item] = await putObjects(clients.s3, from, ["present.jpg"]);
    expect(await client.headObject(from, "present.jpg")).toEqual({ etag: item?.etag, size: 11 });
    expect(await client.headObject(from, "absent.jpg")).toBeUndefined();
  });

  it("fails a copy from a missing key with NoSuchKey, 404", async () => {
    const { from, to } = await freshBuckets(clients.s3, "no-key");
    const copy = client.copyObject({ fromBucket: from, toBucket: to, key: "absent.jpg", ifMatch: '"0"' });
    await expect(copy).rejects.toBeInstanceOf(S3CallError);
    await expect(copy).rejects.toMatchObject({ code: "NoSuchKey", status: 404, transient: false });
  });

  it("fails a copy from a missing bucket with NoSuchBucket", async () => {
    const { to } = await freshBuckets(clients.s3, "no-bucket");
    const copy = client.copyObject({
      fromBucket: "no-such-bucket-anywhere",
      toBucket: to,
      key: "a.jpg",
      ifMatch: '"0"',
    });
    await expect(copy).rejects.toMatchObject({ name: "S3CallError", code: "NoSuchBucket", status: 404 });
  });
});

describe("LeanObjectClient through a faulty proxy", () => {
  let proxy: LoopbackProxy;
  let client: LeanObjectClient;
  beforeAll(async () => {
    proxy = await startProxy({ target: emulator.endpoint });
    client = leanClient(proxy.endpoint);
  });
  beforeEach(() => proxy.resetCounts());
  afterEach(() => {
    proxy.setFaults(undefined);
    proxy.setRespond(undefined);
  });
  afterAll(async () => {
    client.destroy();
    await proxy.stop();
  });

  /** Lets the first `times` requests of an operation be handled by `fail`; the others reach the emulator. */
  function firstOf(operation: string, times: number): (req: ProxyRequestInfo) => boolean {
    let seen = 0;
    return (req) => req.operation === operation && ++seen <= times;
  }

  const copyError = (status: number, code: string, message: string) => ({
    status,
    headers: { "content-type": "application/xml" },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>r1</RequestId></Error>`,
  });

  it("deletes 1,000 keys with one request, each with its ETag condition", async () => {
    const { from } = await freshBuckets(clients.s3, "one-delete");
    const items = await putObjects(clients.s3, from, thousandKeys("k"));
    const bodies: string[] = [];
    proxy.setRespond((req) => {
      if (req.operation === "DeleteObjects") bodies.push(req.body ?? "");
      return undefined;
    });

    const result = await client.deleteObjects(from, items);

    expect(result.deleted).toHaveLength(1000);
    expect(proxy.counts().s3).toBe(1);
    expect(bodies).toHaveLength(1);
    expect(bodies[0]?.match(/<ETag>/g)).toHaveLength(1000);
  });

  it("retries 503 SlowDown until the copy succeeds", async () => {
    const { from, to } = await freshBuckets(clients.s3, "slowdown");
    const [item] = await putObjects(clients.s3, from, ["a.jpg"]);
    const fail = firstOf("CopyObject", 3);
    proxy.setRespond((req) => (fail(req) ? copyError(503, "SlowDown", "Please reduce your request rate.") : undefined));

    expect(
      await client.copyObject({ fromBucket: from, toBucket: to, key: "a.jpg", ifMatch: item?.etag ?? "" }),
    ).toEqual({
      etag: item?.etag,
    });
    expect(proxy.counts().byOperation.CopyObject).toBe(4);
  });

  it("retries dropped connections until the copy and the delete succeed", async () => {
    const { from, to } = await freshBuckets(clients.s3, "reset");
    const [item] = await putObjects(clients.s3, from, ["a.jpg"]);
    const dropCopy = firstOf("CopyObject", 2);
    const dropDelete = firstOf("DeleteObjects", 2);
    proxy.setFaults({ rate: 1, kinds: ["reset"], only: (req) => dropCopy(req) || dropDelete(req) });

    await client.copyObject({ fromBucket: from, toBucket: to, key: "a.jpg", ifMatch: item?.etag ?? "" });
    expect(await client.deleteObjects(from, [{ key: "a.jpg", etag: item?.etag ?? "" }])).toEqual({
      deleted: ["a.jpg"],
      errors: [],
    });
    expect(proxy.counts().byOperation).toMatchObject({ CopyObject: 3, DeleteObjects: 3 });
    expect([...(await listAll(clients.s3, to)).keys()]).toEqual(["a.jpg"]);
  });

  it("maps a 412 PreconditionFailed answer to its code, without retrying", async () => {
    proxy.setRespond((req) =>
      req.operation === "CopyObject"
        ? copyError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
        : undefined,
    );
    const copy = client.copyObject({ fromBucket: "src", toBucket: "dst", key: "a.jpg", ifMatch: '"old"' });
    await expect(copy).rejects.toMatchObject({ code: "PreconditionFailed", status: 412, transient: false });
    expect(proxy.counts().byOperation.CopyObject).toBe(1);
  });

  it("turns a 200 answer with an <Error> body into an S3CallError, retried as the internal error it is", async () => {
    const { from, to } = await freshBuckets(clients.s3, "error-in-200");
    const [item] = await putObjects(clients.s3, from, ["a.jpg"]);
    const once = firstOf("CopyObject", 1);
    proxy.setRespond((req) =>
      once(req) ? copyError(200, "InternalError", "We encountered an internal error.") : undefined,
    );
    await client.copyObject({ fromBucket: from, toBucket: to, key: "a.jpg", ifMatch: item?.etag ?? "" });
    expect(proxy.counts().byOperation.CopyObject).toBe(2);

    proxy.resetCounts();
    proxy.setRespond((req) =>
      req.operation === "CopyObject" ? copyError(200, "InternalError", "We encountered an internal error.") : undefined,
    );
    const twoTries = leanClient(proxy.endpoint, { maxAttempts: 2 });
    const copy = twoTries.copyObject({ fromBucket: from, toBucket: to, key: "a.jpg", ifMatch: item?.etag ?? "" });
    await expect(copy).rejects.toMatchObject({ name: "S3CallError", code: "InternalError", status: 200 });
    expect(proxy.counts().byOperation.CopyObject).toBe(2);
    twoTries.destroy();
  });
});

describe("LeanObjectClient's requests", () => {
  it("sends its conditions: If-Match on copies, an <ETag> per DeleteObjects entry, If-Match on a single DELETE", async () => {
    const recorder = await startRecorder((req) => {
      if (req.method === "PUT") return ok("<CopyObjectResult><ETag>&quot;e1&quot;</ETag></CopyObjectResult>");
      if (req.method === "POST") return ok("<DeleteResult><Deleted><Key>a&amp;b.jpg</Key></Deleted></DeleteResult>");
      return { status: 204 };
    });
    const client = leanClient(recorder.endpoint);

    await client.copyObject({ fromBucket: "src", toBucket: "dst", key: "a&b.jpg", ifMatch: '"e1"' });
    // U+0001 cannot appear in XML 1.0, so that key goes as its own DELETE.
    const result = await client.deleteObjects("src", [
      { key: "a&b.jpg", etag: '"e1"' },
      { key: "ctl\u0001.jpg", etag: '"e2"' },
    ]);

    const [copy, ...deletes] = recorder.requests;
    expect(copy).toMatchObject({ method: "PUT", url: "/dst/a%26b.jpg" });
    expect(copy?.headers).toMatchObject({
      "x-amz-copy-source": "src/a%26b.jpg",
      "x-amz-copy-source-if-match": '"e1"',
      "x-amz-metadata-directive": "COPY",
      "x-amz-tagging-directive": "COPY",
    });
    const batch = deletes.find((req) => req.method === "POST");
    expect(batch?.url).toBe("/src?delete");
    expect(batch?.body).toContain("<Object><Key>a&amp;b.jpg</Key><ETag>&quot;e1&quot;</ETag></Object>");
    expect(batch?.body).not.toContain("ctl");
    expect(batch?.headers["content-md5"]).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    expect(deletes.find((req) => req.method === "DELETE")).toMatchObject({
      url: "/src/ctl%01.jpg",
      headers: expect.objectContaining({ "if-match": '"e2"' }),
    });
    expect(result).toEqual({ deleted: ["a&b.jpg", "ctl\u0001.jpg"], errors: [] });
    client.destroy();
    await recorder.stop();
  });

  it("decodes entity references in DeleteObjects answers, numeric ones included", async () => {
    const recorder = await startRecorder(() =>
      ok(
        "<DeleteResult><Deleted><Key>caf&#233; &amp; &#x1F4F7;.jpg</Key></Deleted>" +
          "<Error><Key>&lt;b&gt; &quot;q&quot; &apos;s&apos;</Key><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error></DeleteResult>",
      ),
    );
    const client = leanClient(recorder.endpoint);

    const result = await client.deleteObjects("src", [
      { key: "café & 📷.jpg", etag: '"e1"' },
      { key: `<b> "q" 's'`, etag: '"e2"' },
    ]);

    expect(result).toEqual({
      deleted: ["café & 📷.jpg"],
      errors: [
        {
          key: `<b> "q" 's'`,
          code: "PreconditionFailed",
          message: "At least one of the pre-conditions you specified did not hold",
        },
      ],
    });
    client.destroy();
    await recorder.stop();
  });

  it("corrects its clock from the Date of a RequestTimeTooSkewed answer and signs again", async () => {
    const serverNow = Date.now() + 60 * 60_000;
    const recorder = await startRecorder((_req, index) =>
      index === 0
        ? {
            status: 403,
            headers: { date: new Date(serverNow).toUTCString() },
            body: "<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>",
          }
        : ok("<CopyObjectResult><ETag>&quot;e1&quot;</ETag></CopyObjectResult>"),
    );
    const client = leanClient(recorder.endpoint);

    await client.copyObject({ fromBucket: "src", toBucket: "dst", key: "a.jpg", ifMatch: '"e1"' });

    const [first, second] = recorder.requests.map((req) => amzDateMs(req.headers));
    expect(Math.abs((first ?? 0) - Date.now())).toBeLessThan(60_000);
    expect(Math.abs((second ?? 0) - serverNow)).toBeLessThan(60_000);
    client.destroy();
    await recorder.stop();
  });

  it("reads a skewed clock from a bodiless 403 to HEAD", async () => {
    const serverNow = Date.now() - 30 * 60_000;
    const recorder = await startRecorder((_req, index) =>
      index === 0
        ? { status: 403, headers: { date: new Date(serverNow).toUTCString() } }
        : { status: 200, headers: { etag: '"e1"', "content-length": "5" } },
    );
    const client = leanClient(recorder.endpoint);

    expect(await client.headObject("src", "a.jpg")).toEqual({ etag: '"e1"', size: 5 });
    expect(Math.abs((amzDateMs(recorder.requests[1]?.headers ?? {}) ?? 0) - serverNow)).toBeLessThan(60_000);
    client.destroy();
    await recorder.stop();
  });

  it("signs with the session token of cached credentials, refreshed five minutes before they expire", async () => {
    const recorder = await startRecorder(() => ok("<CopyObjectResult><ETag>&quot;e1&quot;</ETag></CopyObjectResult>"));
    const session = (minutes: number) => {
      let calls = 0;
      const provider = async () => {
        calls += 1;
        return {
          accessKeyId: "ASIAEXAMPLE",
          secretAccessKey: "secret",
          sessionToken: `token-${calls}`,
          expiration: new Date(Date.now() + minutes * 60_000),
        };
      };
      return { provider, calls: () => calls };
    };
    const copyThrice = async (credentials: () => Promise<{ accessKeyId: string; secretAccessKey: string }>) => {
      const client = new LeanObjectClient({ endpoint: recorder.endpoint, region: "us-east-1", credentials });
      for (let i = 0; i < 3; i++)
        await client.copyObject({ fromBucket: "s", toBucket: "d", key: "a", ifMatch: '"e1"' });
      client.destroy();
    };

    const fresh = session(60);
    await copyThrice(fresh.provider);
    expect(fresh.calls()).toBe(1);
    expect(recorder.requests.map((req) => req.headers["x-amz-security-token"])).toEqual([
      "token-1",
      "token-1",
      "token-1",
    ]);

    const expiring = session(4);
    await copyThrice(expiring.provider);
    expect(expiring.calls()).toBe(3);
    await recorder.stop();
  });

  it("deletes a key that XML cannot carry from the emulator, beside a batched one", async () => {
    const { from } = await freshBuckets(clients.s3, "xml-invalid");
    const items = await putObjects(clients.s3, from, ["plain.jpg", "bell\u0007.jpg"]);
    const client = leanClient(emulator.endpoint);

    const result = await client.deleteObjects(from, items);

    expect(result.errors).toEqual([]);
    expect([...result.deleted].sort()).toEqual(["bell\u0007.jpg", "plain.jpg"]);
    expect((await listAll(clients.s3, from)).size).toBe(0);
    client.destroy();
  });
});

describe.each([
  [
    "SdkObjectClient",
    (endpoint: string) => {
      const own = createClients(resolveTarget({ endpoint }));
      return Object.assign(new SdkObjectClient(own.s3), { destroy: () => destroyClients(own) });
    },
  ],
  ["LeanObjectClient", (endpoint: string) => leanClient(endpoint)],
])("%s and storage classes", (_name, create: (endpoint: string) => ObjectClient & { destroy(): void }) => {
  it("stores a copy in the class it is asked for, sends none when asked for none, and heads an object's class", async () => {
    const recorder = await startRecorder((req) => {
      if (req.method === "PUT") return ok("<CopyObjectResult><ETag>&quot;e1&quot;</ETag></CopyObjectResult>");
      const storageClass = req.url.includes("ia.jpg") ? { "x-amz-storage-class": "STANDARD_IA" } : {};
      return { status: 200, headers: { etag: '"e1"', "content-length": "5", ...storageClass } };
    });
    const client = create(recorder.endpoint);
    try {
      const copy = { fromBucket: "src", toBucket: "dst", ifMatch: '"e1"' };
      await client.copyObject({ ...copy, key: "ia.jpg", storageClass: "STANDARD_IA" });
      await client.copyObject({ ...copy, key: "standard.jpg" });

      const [inIa, inStandard] = recorder.requests;
      expect(inIa?.headers["x-amz-storage-class"]).toBe("STANDARD_IA");
      expect(inStandard?.headers).not.toHaveProperty("x-amz-storage-class");
      expect(await client.headObject("src", "ia.jpg")).toEqual({ etag: '"e1"', size: 5, storageClass: "STANDARD_IA" });
      expect(await client.headObject("src", "standard.jpg")).toEqual({ etag: '"e1"', size: 5 });
    } finally {
      client.destroy();
      await recorder.stop();
    }
  });
});

describe("SdkObjectClient's listing", () => {
  const page = (encodingType: string, keys: string[]) =>
    ok(
      `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Name>src</Name><Prefix></Prefix><KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys>${encodingType}` +
        `<IsTruncated>false</IsTruncated>` +
        keys.map((k) => `<Contents><Key>${k}</Key><ETag>&quot;e&quot;</ETag><Size>1</Size></Contents>`).join("") +
        `</ListBucketResult>`,
    );

  it("asks for URL-encoded keys, so that a carriage return in a key survives, and decodes them", async () => {
    const recorder = await startRecorder(() =>
      page("<EncodingType>url</EncodingType>", ["cr%0Dkey", "with+space%2Bplus", "100%25", "caf%C3%A9/x"]),
    );
    const own = createClients(resolveTarget({ endpoint: recorder.endpoint }));
    try {
      const listed = await new SdkObjectClient(own.s3).listPage("src", { prefix: "", startAfter: "", maxKeys: 1000 });
      expect(new URL(recorder.requests[0]?.url ?? "", "http://x").searchParams.get("encoding-type")).toBe("url");
      expect(listed.objects.map((o) => o.k)).toEqual(["cr\rkey", "with space+plus", "100%", "café/x"]);
    } finally {
      destroyClients(own);
      await recorder.stop();
    }
  });

  it("takes keys as they are from a server that ignores the encoding (no EncodingType in its answer)", async () => {
    const recorder = await startRecorder(() => page("", ["100%25", "a+b"]));
    const own = createClients(resolveTarget({ endpoint: recorder.endpoint }));
    try {
      const listed = await new SdkObjectClient(own.s3).listPage("src", { prefix: "", startAfter: "", maxKeys: 1000 });
      expect(listed.objects.map((o) => o.k)).toEqual(["100%25", "a+b"]);
    } finally {
      destroyClients(own);
      await recorder.stop();
    }
  });
});

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Answer {
  status: number;
  headers?: OutgoingHttpHeaders;
  body?: string;
}

const ok = (body: string): Answer => ({ status: 200, headers: { "content-type": "application/xml" }, body });

const amzDateMs = (headers: IncomingHttpHeaders) =>
  Date.parse(String(headers["x-amz-date"]).replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z"));

/** A stand-in S3 on 127.0.0.1 that records every request and answers from `answer`. */
async function startRecorder(answer: (req: Recorded, index: number) => Answer) {
  const requests: Recorded[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const recorded = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
    };
    requests.push(recorded);
    const { status, headers, body } = answer(recorded, requests.length - 1);
    res.writeHead(status, headers).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** 1,000 keys, as many as one DeleteObjects takes. */
function thousandKeys(prefix: string): string[] {
  return Array.from({ length: 1000 }, (_, i) => `${prefix}-${String(i).padStart(4, "0")}.jpg`);
}
