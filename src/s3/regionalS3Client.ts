import { HeadBucketCommand, HeadObjectCommand, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { regionToFollow } from "./objectClient.ts";

type Send = (command: { input: object }, options?: object) => Promise<unknown>;

/**
 * An S3Client that sends each call to its bucket's region. A bucket in another region than the client's answers
 * 301 PermanentRedirect (or 400 AuthorizationHeaderMalformed) naming its region: the call is sent again from a
 * client for that region, and so is every later call for that bucket.
 *
 * Not the SDK's own `followRegionRedirects`: it swaps the client's region for the length of each redirected call,
 * so concurrent calls for buckets in two regions sign for each other's, and two redirects at once can leave the
 * client in the wrong region for good (seen with test/integration/regions.test.ts).
 *
 * Middleware added to the returned client's stack runs for calls sent in its own region only.
 */
export function createRegionalS3Client(config: S3ClientConfig & { region: string }): S3Client {
  const home = new S3Client(config);
  const homeSend = home.send.bind(home) as Send;
  const homeDestroy = home.destroy.bind(home);
  const bucketRegions = new Map<string, string>();
  const regional = new Map<string, S3Client>();

  const sendIn = (region: string | undefined): Send => {
    if (region === undefined || region === config.region) return homeSend;
    let client = regional.get(region);
    if (!client) {
      // The home client's credential provider, resolved and cached once for every region (and the lean client).
      client = new S3Client({ ...config, region, credentials: home.config.credentials });
      regional.set(region, client);
    }
    return client.send.bind(client) as Send;
  };

  const send: Send = async (command, options) => {
    const bucket = (command.input as { Bucket?: unknown }).Bucket;
    if (typeof bucket !== "string") return homeSend(command, options);
    const known = bucketRegions.get(bucket);
    try {
      return await sendIn(known)(command, options);
    } catch (error) {
      const sentTo = known ?? config.region;
      const region = redirectRegionOf(error, sentTo, command);
      if (region === undefined) throw withRegion(error, sentTo);
      bucketRegions.set(bucket, region);
      return sendIn(region)(command, options).catch((again: unknown) => {
        throw withRegion(again, region);
      });
    }
  };
  // The promise form only: every caller here awaits `send`.
  home.send = send as S3Client["send"];
  home.destroy = () => {
    for (const client of regional.values()) client.destroy();
    homeDestroy();
  };
  return home;
}

/** The error, naming the region its call was sent to (`$region`), so that a message can tell a redirect apart. */
function withRegion(error: unknown, region: string): unknown {
  if (error !== null && typeof error === "object") Object.assign(error, { $region: region });
  return error;
}

/** The region to send a call to again, by regionToFollow's rule, from the SDK's error. */
function redirectRegionOf(error: unknown, sentTo: string, command: object): string | undefined {
  const e = error as {
    name?: string;
    $metadata?: { httpStatusCode?: number };
    $response?: { headers?: Record<string, string | undefined> };
    Region?: unknown;
  };
  return regionToFollow(
    {
      status: e.$metadata?.httpStatusCode,
      code: e.name,
      head: command instanceof HeadBucketCommand || command instanceof HeadObjectCommand,
      named: e.$response?.headers?.["x-amz-bucket-region"] ?? (typeof e.Region === "string" ? e.Region : undefined),
    },
    sentTo,
  );
}
