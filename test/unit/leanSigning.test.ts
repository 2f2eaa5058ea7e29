import { createHash, createHmac } from "node:crypto";
import type { OutgoingHttpHeaders } from "node:http";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { SignatureV4 } from "@smithy/signature-v4";
import type { HttpRequest, SourceData } from "@smithy/types";
import { describe, expect, it } from "vitest";
import { encodeKeyPath, s3Address, signRequest } from "../../src/s3/leanObjectClient.ts";
import { encodeCopySource } from "../../src/s3/objectClient.ts";

const DATE = new Date("2026-11-25T12:34:56.789Z");
const REGION = "eu-west-1";
const KEYS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const SESSION = { ...KEYS, sessionToken: "IQoJb3JpZ2luX2VjEXAMPLE/+token==" };
const TRICKY_KEYS = [
  "plain.jpg",
  "with space/and+plus/100%/what?/hash#/a&b.jpg",
  "café/日本語/📷 photo.jpg",
  "double//slash",
  "./dot/../x",
  "/leading",
  "!'()*~-_.",
  "tab\there",
  `long/${"é".repeat(509)}a`, // 1,024 bytes
];

/** node:crypto in the shape SignatureV4 expects (the SDK bundles its own). */
class Sha256 {
  readonly #hash;
  constructor(secret?: SourceData) {
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(secret));
  }
  update(data: SourceData): void {
    this.#hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.#hash.digest();
  }
}

const bytes = (data: SourceData): string | Uint8Array =>
  typeof data === "string"
    ? data
    : ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data);

/** Signs the lean client's request again with the SDK's signer, from the same headers minus the ones it adds. */
async function sdkAuthorization(
  lean: { path: string; headers: OutgoingHttpHeaders },
  method: string,
  credentials: typeof SESSION | typeof KEYS,
  body?: Buffer,
): Promise<string> {
  const signer = new SignatureV4({ credentials, region: REGION, service: "s3", sha256: Sha256, uriEscapePath: false });
  const [path = "", query] = lean.path.split("?");
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(lean.headers)) {
    if (!/^(authorization|x-amz-date|x-amz-security-token)$/i.test(name)) headers[name.toLowerCase()] = String(value);
  }
  const request: HttpRequest = {
    method,
    protocol: "https:",
    hostname: headers.host ?? "",
    path,
    query: Object.fromEntries(new URLSearchParams(query ?? "")),
    headers,
    body,
  };
  const signed = await signer.sign(request, { signingDate: DATE });
  return String(signed.headers.authorization);
}

describe("the lean client's SigV4 signature", () => {
  it.each(TRICKY_KEYS)("of a CopyObject of %j matches the SDK's, with a session token", async (key) => {
    const lean = signRequest(
      {
        method: "PUT",
        host: "dst-bucket.s3.eu-west-1.amazonaws.com",
        path: `/${encodeKeyPath(key)}`,
        headers: {
          "x-amz-copy-source": encodeCopySource("src-bucket", key),
          "x-amz-copy-source-if-match": '"9b2cf535f27731c974343645a3985328"',
          "x-amz-metadata-directive": "COPY",
          "x-amz-tagging-directive": "COPY",
        },
      },
      SESSION,
      REGION,
      DATE,
    );
    expect(lean.headers["X-Amz-Security-Token"]).toBe(SESSION.sessionToken);
    expect(lean.headers.Authorization).toBe(await sdkAuthorization(lean, "PUT", SESSION));
  });

  it("of a path-style HeadObject on a custom endpoint matches the SDK's, without a session token", async () => {
    const lean = signRequest(
      {
        method: "HEAD",
        host: "127.0.0.1:4566",
        path: `/my.dotted.bucket/${encodeKeyPath("a b/c+d.jpg")}`,
        headers: {},
      },
      KEYS,
      REGION,
      DATE,
    );
    expect(lean.headers["X-Amz-Security-Token"]).toBeUndefined();
    // The SDK signs with the payload hash it is given, so the empty body's hash is checked on its own.
    expect(lean.headers["X-Amz-Content-Sha256"]).toBe(createHash("sha256").update("").digest("hex"));
    expect(lean.headers.Authorization).toBe(await sdkAuthorization(lean, "HEAD", KEYS));
  });

  it("of a DeleteObjects with its XML body matches the SDK's, and hashes the body", async () => {
    const body = Buffer.from(
      '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>false</Quiet><Object><Key>café &amp; 📷</Key><ETag>&quot;abc&quot;</ETag></Object></Delete>',
    );
    const lean = signRequest(
      {
        method: "POST",
        host: "src-bucket.s3.eu-west-1.amazonaws.com",
        path: "/?delete",
        headers: { "content-type": "application/xml", "content-md5": createHash("md5").update(body).digest("base64") },
        body,
      },
      SESSION,
      REGION,
      DATE,
    );
    expect(lean.headers["X-Amz-Content-Sha256"]).toBe(createHash("sha256").update(body).digest("hex"));
    expect(lean.headers.Authorization).toBe(await sdkAuthorization(lean, "POST", SESSION, body));
  });
});

describe("key paths", () => {
  it("are encoded byte for byte as the SDK's S3Client puts them on the wire", async () => {
    let sentPath = "";
    const s3 = new S3Client({
      endpoint: "http://127.0.0.1:9",
      forcePathStyle: true,
      region: REGION,
      credentials: KEYS,
      maxAttempts: 1,
      // Catches the finished request instead of sending it.
      requestHandler: {
        handle: async (request: HttpRequest) => {
          sentPath = request.path;
          throw new Error("captured");
        },
      },
    });
    for (const key of TRICKY_KEYS) {
      await expect(s3.send(new HeadObjectCommand({ Bucket: "bucket", Key: key }))).rejects.toThrow("captured");
      expect(sentPath).toBe(`/bucket/${encodeKeyPath(key)}`);
    }
    s3.destroy();
  });
});

describe("s3Address", () => {
  it("addresses AWS virtual-hosted in the bucket's region, path-style for dotted names, and a custom endpoint by path", () => {
    expect(s3Address({ bucket: "photos", key: "a b.jpg" }, "eu-west-1", undefined)).toEqual({
      host: "photos.s3.eu-west-1.amazonaws.com",
      path: "/a%20b.jpg",
    });
    expect(s3Address({ bucket: "photos", subresource: "list-type=2" }, "cn-north-1", undefined)).toEqual({
      host: "photos.s3.cn-north-1.amazonaws.com.cn",
      path: "/?list-type=2",
    });
    expect(s3Address({ bucket: "my.photos", key: "x" }, "ap-southeast-2", undefined)).toEqual({
      host: "s3.ap-southeast-2.amazonaws.com",
      path: "/my.photos/x",
    });
    expect(s3Address({ bucket: "photos", key: "x" }, "eu-west-1", { host: "127.0.0.1:4566", basePath: "" })).toEqual({
      host: "127.0.0.1:4566",
      path: "/photos/x",
    });
  });
});
