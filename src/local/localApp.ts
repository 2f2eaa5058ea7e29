import { Logger } from "@aws-lambda-powertools/logger";
import { type App, createApp } from "../app.ts";
import { type AwsClients, createClients, resolveTarget } from "../aws/clients.ts";
import { type MoverSettings, moverSettingsFromEnv } from "../config.ts";
import type { ObjectClient } from "../s3/objectClient.ts";
import { loadStackSettings, type StackSettings } from "../stackSettings.ts";
import { ensureResources, type LocalResources } from "./resources.ts";

export interface LocalAppOptions {
  endpoint?: string | undefined;
  region?: string | undefined;
  /** Copies in flight in this process. */
  copyConcurrency?: number | undefined;
  settings?: Partial<MoverSettings>;
  /** Replace the per-object S3 client (tests, or the lean client). */
  objects?: (app: Omit<App, "objects">) => ObjectClient;
  /** Runs while the table and queues are ensured, e.g. a move's bucket checks: set-up time is round trips. */
  alongside?: (clients: AwsClients) => Promise<unknown>;
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
  // serverless.yml is parsed (~50 ms of cold YAML code) once set-up's first requests are on the wire, not before.
  const stackParsed = new Promise<void>((resolve) => setImmediate(resolve)).then(() => loadStackSettings());
  const [resources, , stack] = await Promise.all([
    ensureResources(clients, stackParsed),
    options.alongside?.(clients),
    stackParsed,
  ]);
  // Lambda logs every batch to CloudWatch; a terminal wants warnings only unless asked (POWERTOOLS_LOG_LEVEL).
  const logger = new Logger({
    serviceName: "s3-image-mover",
    logLevel: (process.env.POWERTOOLS_LOG_LEVEL ?? "WARN") as "WARN",
  });
  const app = createApp({ clients, resources, settings, logger, allowFileReports: true });
  if (options.objects) app.objects = options.objects(app);
  return { ...app, resources, stack };
}
