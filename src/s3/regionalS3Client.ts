import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";

type Send = (command: { input: object }, options?: object) => Promise<unknown>;

/**
 * An S3Client that sends each call to its bucket's region. A bucket in another region than the client's answers
 * 301 PermanentRedirect (or 400 AuthorizationHeaderMalformed) naming its region: the call is sent again from a
 * client for that region, and so is every later call for that bucket.
 *
 * Not the SDK's own `followRegionRedirects`: it swaps the client's region for the length of each redirected call,
 * so concurrent calls for buckets in two regions sign for each other's, and two redirects at once can leave the
 * client in the wrong region for good (seen with test/integration/regions.test.ts).
 */
export function createRegionalS3Client(config: S3ClientConfig & { region: string }): S3Client {
  const home = new S3Client(config);
  const homeSend = home.send.bind(home) as Send;
  const homeDestroy = home.destroy.bind(home);
  const bucketRegions = new Map<string, string>();
  const regional = new Map<string, Send>();
  const others: S3Client[] = [];

  const sendIn = (region: string | undefined): Send => {
    if (region === undefined || region === config.region) return homeSend;
    let send = regional.get(region);
    if (!send) {
      const client = new S3Client({ ...config, region });
      others.push(client);
      send = client.send.bind(client) as Send;
      regional.set(region, send);
    }
    return send;
  };

  const send: Send = async (command, options) => {
    const bucket = (command.input as { Bucket?: unknown }).Bucket;
    if (typeof bucket !== "string") return homeSend(command, options);
    const known = bucketRegions.get(bucket);
    try {
      return await sendIn(known)(command, options);
    } catch (error) {
      const region = redirectRegionOf(error, known ?? config.region);
      if (region === undefined) throw error;
      bucketRegions.set(bucket, region);
      return sendIn(region)(command, options);
    }
  };
  // The promise form only: every caller here awaits `send`.
  home.send = send as S3Client["send"];
  home.destroy = () => {
    for (const client of others) client.destroy();
    homeDestroy();
  };
  return home;
}

/** The region S3 named in refusing a call sent to (or signed for) another one; undefined for any other error. */
function redirectRegionOf(error: unknown, sentTo: string): string | undefined {
  const e = error as {
    $metadata?: { httpStatusCode?: number };
    $response?: { headers?: Record<string, string | undefined> };
    Region?: unknown;
  };
  const status = e.$metadata?.httpStatusCode;
  if (status !== 301 && status !== 307 && status !== 400) return undefined;
  const named = e.$response?.headers?.["x-amz-bucket-region"] ?? (typeof e.Region === "string" ? e.Region : undefined);
  return named && named !== sentTo && /^[a-z0-9-]+$/.test(named) ? named : undefined;
}
