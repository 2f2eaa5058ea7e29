// Buckets in other regions than the client's. The proxy answers as S3 does a request signed for the wrong region:
// 301 PermanentRedirect naming the bucket's region in x-amz-bucket-region (or a 400 AuthorizationHeaderMalformed
// naming it in its body). The move must reach both buckets, and the lean client must learn each bucket's region once.
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import type { App } from "../../src/app.ts";
import { startMove } from "../../src/core/start.ts";
import { seedBucket } from "../../src/images/seed.ts";
import { runLocalMove } from "../../src/local/localMove.ts";
import { SdkObjectClient } from "../../src/s3/sdkObjectClient.ts";
import { freshBuckets, listAll, useProxiedHarness } from "../support/harness.ts";
import type { ProxyRequestInfo, ProxyResponse } from "../support/proxy.ts";

const CLIENT_REGION = "us-east-1";

/** The region a SigV4 Authorization header was signed for. */
function signedRegion(req: ProxyRequestInfo): string | undefined {
  return /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\//.exec(String(req.headers.authorization ?? ""))?.[1];
}

function wrongRegionAnswer(req: ProxyRequestInfo, region: string, style: "301" | "400-body"): ProxyResponse {
  if (style === "400-body") {
    return {
      status: 400,
      headers: { "content-type": "application/xml" },
      body:
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthorizationHeaderMalformed</Code>` +
        `<Message>The authorization header is malformed; the region '${signedRegion(req)}' is wrong; expecting '${region}'</Message>` +
        `<Region>${region}</Region></Error>`,
    };
  }
  return {
    status: 301,
    headers: { "x-amz-bucket-region": region, "content-type": "application/xml" },
    body:
      req.method === "HEAD"
        ? ""
        : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are ` +
          `attempting to access must be addressed using the specified endpoint.</Message><Bucket>${req.bucket}</Bucket></Error>`,
  };
}

describe("buckets in other regions than the client's", () => {
  const harness = useProxiedHarness();

  it.each([
    ["the lean client", undefined],
    ["the SDK client", (a: Omit<App, "objects">) => new SdkObjectClient(a.clients.s3)],
  ])("moves every key between two buckets in two other regions, with %s", async (name, objects) => {
    const app = await harness.app({
      endpoint: harness.proxy.endpoint,
      region: CLIENT_REGION,
      ...(objects ? { objects } : {}),
    });
    const { from, to } = await freshBuckets(app.clients.s3, "regions");
    await seedBucket(app.clients.s3, { bucket: from, objects: 600, bytes: 128 });
    const regions = new Map([
      [from, "eu-west-1"],
      [to, "ap-southeast-2"],
    ]);
    const redirected: Array<{ operation: string; bucket: string }> = [];
    const forwarded: Array<{ operation: string; bucket: string; region: string | undefined }> = [];
    harness.proxy.setRespond((req) => {
      const region = req.service === "s3" && req.bucket ? regions.get(req.bucket) : undefined;
      if (!region || !req.bucket) return undefined;
      if (signedRegion(req) !== region) {
        redirected.push({ operation: req.operation, bucket: req.bucket });
        // S3 names the region in a 400's body when the request reached the right region signed for another.
        return wrongRegionAnswer(req, region, req.operation === "ListObjectsV2" ? "400-body" : "301");
      }
      forwarded.push({ operation: req.operation, bucket: req.bucket, region: signedRegion(req) });
      return undefined;
    });
    let result: Awaited<ReturnType<typeof runLocalMove>>;
    try {
      result = await runLocalMove(app, app.stack, { from, to });
    } finally {
      harness.proxy.setRespond(undefined);
    }

    expect(result.job.state, name).toBe("done");
    expect(result.counts).toMatchObject({ listed: 600, moved: 600, skipped: 0, failed: 0 });
    expect((await listAll(app.clients.s3, to)).size).toBe(600);
    expect((await listAll(app.clients.s3, from)).size).toBe(0);
    // Every call that went through was signed for its bucket's region, and each kind of call reached it.
    for (const call of forwarded) expect(call.region).toBe(regions.get(call.bucket));
    const reached = new Set(forwarded.map((call) => `${call.operation} ${call.bucket === from ? "from" : "to"}`));
    for (const call of [
      "HeadBucket from",
      "HeadBucket to",
      "ListObjectsV2 from",
      "CopyObject to",
      "DeleteObjects from",
    ])
      expect(reached).toContain(call);
    if (objects === undefined) {
      // The lean client learns each bucket's region once: only the copies sent before the first redirect came back
      // were refused (at most the copies in flight), and the source's deletes, sent after its listing, never were.
      const copiesRedirected = redirected.filter((call) => call.operation === "CopyObject").length;
      expect(copiesRedirected).toBeGreaterThan(0);
      expect(copiesRedirected).toBeLessThanOrEqual(app.settings.copyConcurrency);
      expect(redirected.filter((call) => call.operation === "DeleteObjects")).toEqual([]);
    } else {
      // The SDK client learnt both regions from the start's bucket checks: nothing after them was redirected.
      expect(redirected.map((call) => `${call.operation} ${call.bucket === from ? "from" : "to"}`).sort()).toEqual([
        "HeadBucket from",
        "HeadBucket to",
      ]);
    }
  });

  it("the SDK client follows a 400 AuthorizationHeaderMalformed that names the region in its body alone", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, region: CLIENT_REGION });
    const { from } = await freshBuckets(app.clients.s3, "region-400");
    await seedBucket(app.clients.s3, { bucket: from, objects: 3, bytes: 64 });
    const signedFor: Array<string | undefined> = [];
    harness.proxy.setRespond((req) => {
      if (req.bucket !== from || req.operation !== "ListObjectsV2") return undefined;
      signedFor.push(signedRegion(req));
      return signedRegion(req) === "sa-east-1" ? undefined : wrongRegionAnswer(req, "sa-east-1", "400-body");
    });
    try {
      const out = await app.clients.s3.send(new ListObjectsV2Command({ Bucket: from }));
      expect(out.KeyCount).toBe(3);
      await app.clients.s3.send(new ListObjectsV2Command({ Bucket: from })); // the region kept: no second refusal
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect(signedFor).toEqual([CLIENT_REGION, "sa-east-1", "sa-east-1"]);
  });

  it.each([
    ["the lean client", undefined],
    ["the SDK client", (a: Omit<App, "objects">) => new SdkObjectClient(a.clients.s3)],
  ])("keeps the cause of an unrelated 400 that names a region, and its region, with %s", async (_name, objects) => {
    const app = await harness.app({
      endpoint: harness.proxy.endpoint,
      region: CLIENT_REGION,
      ...(objects ? { objects } : {}),
    });
    const { from } = await freshBuckets(app.clients.s3, "region-other-400");
    const signedFor: Array<string | undefined> = [];
    harness.proxy.setRespond((req) => {
      if (req.bucket !== from || req.operation !== "ListObjectsV2") return undefined;
      signedFor.push(signedRegion(req));
      if (signedFor.length > 1) return undefined;
      return {
        status: 400,
        headers: { "x-amz-bucket-region": "eu-west-1", "content-type": "application/xml" },
        body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>bad max-keys</Message></Error>`,
      };
    });
    const page = { prefix: "", startAfter: "", maxKeys: 10 };
    try {
      await expect(app.objects.listPage(from, page)).rejects.toMatchObject({ code: "InvalidArgument" });
      await expect(app.objects.listPage(from, page)).resolves.toMatchObject({ objects: [] });
    } finally {
      harness.proxy.setRespond(undefined);
    }
    expect(signedFor).toEqual([CLIENT_REGION, CLIENT_REGION]); // neither resent nor learnt
  });

  it("says what S3 answered when the region it names cannot be used, rather than only that the bucket is unreachable", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, region: CLIENT_REGION });
    const { from, to } = await freshBuckets(app.clients.s3, "region-malformed");
    harness.proxy.setRespond((req) =>
      req.bucket === from && req.operation === "HeadBucket"
        ? { status: 301, headers: { "x-amz-bucket-region": "EU West (Ireland)" } }
        : undefined,
    );
    try {
      await expect(startMove(app, { from, to })).rejects.toThrow(
        new RegExp(
          `^Could not reach the source bucket "${from}": .*\\(S3 answered 301, naming the bucket's region "EU West \\(Ireland\\)", which this call could not be sent to\\)$`,
        ),
      );
    } finally {
      harness.proxy.setRespond(undefined);
    }
  });

  it("blames the credentials, not a region, for a bucket check's 400 naming the region it was sent to", async () => {
    const app = await harness.app({ endpoint: harness.proxy.endpoint, region: CLIENT_REGION });
    const { from, to } = await freshBuckets(app.clients.s3, "region-expired");
    // An expired session token: S3 answers a HEAD 400, with the bucket's own region in its header.
    harness.proxy.setRespond((req) =>
      req.bucket === from && req.operation === "HeadBucket"
        ? { status: 400, headers: { "x-amz-bucket-region": CLIENT_REGION } }
        : undefined,
    );
    try {
      const refused = startMove(app, { from, to });
      await expect(refused).rejects.toThrow(
        /\(S3 answered 400; check the credentials \(an expired session token, say\)\)$/,
      );
      await expect(refused).rejects.not.toThrow(/naming the bucket's region/);
    } finally {
      harness.proxy.setRespond(undefined);
    }
  });
});
