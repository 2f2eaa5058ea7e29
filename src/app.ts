import { Logger } from "@aws-lambda-powertools/logger";
import pLimit, { type LimitFunction } from "p-limit";
import { type AwsClients, createClients, resolveTarget } from "./aws/clients.ts";
import { type MoverSettings, moverSettingsFromEnv, type Resources, resourcesFromEnv } from "./config.ts";
import { JobStore } from "./jobs/jobStore.ts";
import type { ObjectClient } from "./s3/objectClient.ts";
import { SdkObjectClient } from "./s3/sdkObjectClient.ts";

/**
 * Everything a handler needs, built once at the edge: on Lambda from environment variables, in the local runtime
 * from its options. The core receives these and never reads the environment itself.
 */
export interface App {
  clients: AwsClients;
  resources: Resources;
  store: JobStore;
  objects: ObjectClient;
  settings: MoverSettings;
  copyLimit: LimitFunction;
  logger: Logger;
  /** Buckets this deployment may touch; undefined when any bucket is allowed. */
  allowedBuckets: string[] | undefined;
}

export function createApp(options: {
  clients: AwsClients;
  resources: Resources;
  settings: MoverSettings;
  objects?: ObjectClient;
  logger?: Logger;
  allowedBuckets?: string[] | undefined;
}): App {
  return {
    clients: options.clients,
    resources: options.resources,
    store: new JobStore(options.clients.dynamo, options.resources.table),
    objects: options.objects ?? new SdkObjectClient(options.clients.s3),
    settings: options.settings,
    copyLimit: pLimit(options.settings.copyConcurrency),
    logger: options.logger ?? new Logger({ serviceName: "s3-image-mover" }),
    allowedBuckets: options.allowedBuckets,
  };
}

let lambdaApp: App | undefined;

/** The App of a Lambda function, built on first use from the variables serverless.yml sets. */
export function appFromEnv(env: NodeJS.ProcessEnv = process.env): App {
  if (!lambdaApp) {
    const settings = moverSettingsFromEnv(env);
    lambdaApp = createApp({
      clients: createClients(resolveTarget({ maxSockets: settings.copyConcurrency }, env), env),
      resources: resourcesFromEnv(env),
      settings,
      allowedBuckets: parseAllowedBuckets(env.ALLOWED_BUCKETS),
    });
  }
  return lambdaApp;
}

/** "a,b,photos-*" → ["a","b","photos-*"]; "*" or empty → undefined (any bucket). */
export function parseAllowedBuckets(raw: string | undefined): string[] | undefined {
  const list = (raw ?? "").split(",").map((b) => b.trim()).filter(Boolean);
  return list.length === 0 || list.includes("*") ? undefined : list;
}
