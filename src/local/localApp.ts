import { Logger } from "@aws-lambda-powertools/logger";
import { type App, createApp } from "../app.ts";
import { createClients, resolveTarget } from "../aws/clients.ts";
import { type MoverSettings, moverSettingsFromEnv } from "../config.ts";
import type { ObjectClient } from "../s3/objectClient.ts";
import type { StackSettings } from "../stackSettings.ts";
import { type LocalResources, prepareLocalResources } from "./resources.ts";

export interface LocalAppOptions {
  endpoint?: string | undefined;
  region?: string | undefined;
  /** Copies in flight in this process. */
  copyConcurrency?: number | undefined;
  settings?: Partial<MoverSettings>;
  /** Replace the per-object S3 client (tests, or the lean client). */
  objects?: (app: Omit<App, "objects">) => ObjectClient;
  /** The table and queues were ensured, and serverless.yml read, by another thread: use what it found. */
  prepared?: { resources: LocalResources; stack: StackSettings } | undefined;
}

export type LocalApp = App & { resources: LocalResources; stack: StackSettings };

/**
 * Builds the same App a Lambda function builds, for this process: clients for the endpoint (or AWS), the table and
 * queues created where missing, and the stack settings read from serverless.yml.
 */
export async function createLocalApp(options: LocalAppOptions = {}): Promise<LocalApp> {
  const base = moverSettingsFromEnv();
  const settings: MoverSettings = {
    ...base,
    ...options.settings,
    ...(options.copyConcurrency ? { copyConcurrency: options.copyConcurrency } : {}),
  };
  const clients = createClients(
    resolveTarget({ endpoint: options.endpoint, region: options.region, maxSockets: settings.copyConcurrency }),
  );
  const { resources, stack } = options.prepared ?? (await prepareLocalResources(clients));
  // Lambda logs every batch to CloudWatch; a terminal wants warnings only unless asked (POWERTOOLS_LOG_LEVEL).
  const logger = new Logger({
    serviceName: "s3-image-mover",
    logLevel: (process.env.POWERTOOLS_LOG_LEVEL ?? "WARN") as "WARN",
  });
  const app = createApp({ clients, resources, settings, logger, allowFileReports: true });
  if (options.objects) app.objects = options.objects(app);
  return { ...app, resources, stack };
}
