import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "./errors.ts";

// Only the local runtime reads serverless.yml; Lambda bundles never import this module (nor the YAML parser).

/** How an SQS event source feeds one function: the same numbers on Lambda and in the local runtime. */
export interface ConsumerSettings {
  functionName: "lister" | "mover";
  batchSize: number;
  batchingWindowSeconds: number;
  timeoutSeconds: number;
  maximumConcurrency: number | undefined;
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
  environment: Record<string, string>;
}

export interface StackSettings {
  lister: ConsumerSettings;
  mover: ConsumerSettings;
}

const SERVERLESS_YML = new URL("../serverless.yml", import.meta.url);

/**
 * Reads the event-source settings the local runtime needs from serverless.yml.
 *
 * They are kept in the temp directory under a hash of the file's text and of this module's source, so a change to
 * either parses again. Every local command reads them before its first requests can go out, and the YAML parser
 * costs 35-110 ms there (its import and a cold parse, traced); a kept copy costs well under 1 ms.
 */
export function loadStackSettings(
  path: URL | string = SERVERLESS_YML,
  cacheDir: string | undefined = join(tmpdir(), "s3-image-mover"),
): StackSettings {
  const text = readFileSync(path, "utf8");
  const kept = cacheDir && join(cacheDir, `stack-settings-${settingsHash(text)}.json`);
  if (kept) {
    try {
      // The temp directory is shared: only a copy this user wrote is trusted.
      if (process.getuid === undefined || statSync(kept).uid === process.getuid()) {
        return JSON.parse(readFileSync(kept, "utf8")) as StackSettings;
      }
    } catch {
      // not kept yet, or unreadable: parse below
    }
  }
  const settings = parseStackSettings(text);
  if (kept) keep(kept, settings);
  return settings;
}

/** The settings from serverless.yml's text, with the YAML parser (loaded only now, when the copy kept is stale). */
export function parseStackSettings(text: string): StackSettings {
  const { parse } = createRequire(import.meta.url)("yaml") as typeof import("yaml");
  const doc = parse(text) as ServerlessDoc;
  return {
    lister: consumerSettings(doc, "lister", "ListQueue"),
    mover: consumerSettings(doc, "mover", "MoveQueue"),
  };
}

let ownSource: string | undefined;

function settingsHash(text: string): string {
  ownSource ??= readFileSync(fileURLToPath(import.meta.url), "utf8");
  return createHash("sha256").update(ownSource).update("\0").update(text).digest("hex").slice(0, 32);
}

/** Best effort, written whole (rename) so that a concurrent reader never sees half a file. */
function keep(file: string, settings: StackSettings): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    const partial = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    writeFileSync(partial, JSON.stringify(settings));
    renameSync(partial, file);
  } catch {
    // a read-only temp directory only means parsing every time
  }
}

interface ServerlessDoc {
  functions: Record<
    string,
    {
      timeout?: number;
      environment?: Record<string, string>;
      events?: Array<{
        sqs?: { batchSize?: number; maximumBatchingWindow?: number; maximumConcurrency?: number };
      }>;
    }
  >;
  resources: {
    Resources: Record<
      string,
      { Properties: { VisibilityTimeout?: number; RedrivePolicy?: { maxReceiveCount?: number } } }
    >;
  };
}

function consumerSettings(
  doc: ServerlessDoc,
  functionName: ConsumerSettings["functionName"],
  queueResource: string,
): ConsumerSettings {
  const fn = doc.functions[functionName];
  const sqs = fn?.events?.find((event) => event.sqs)?.sqs;
  const queue = doc.resources.Resources[queueResource]?.Properties;
  if (!fn || !sqs || !queue) {
    throw new ConfigError(
      `serverless.yml must declare function "${functionName}" with an sqs event on ${queueResource}`,
    );
  }
  return {
    functionName,
    batchSize: sqs.batchSize ?? 10,
    batchingWindowSeconds: sqs.maximumBatchingWindow ?? 0,
    timeoutSeconds: fn.timeout ?? 6,
    maximumConcurrency: sqs.maximumConcurrency,
    visibilityTimeoutSeconds: queue.VisibilityTimeout ?? 30,
    maxReceiveCount: queue.RedrivePolicy?.maxReceiveCount ?? 10,
    environment: fn.environment ?? {},
  };
}
