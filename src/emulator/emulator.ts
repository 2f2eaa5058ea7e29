import { mkdirSync } from "node:fs";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type BuildAppOptions, buildApp } from "fauxqs";
import { MoverError } from "../errors.ts";
import { type ListableStore, useSortedListing } from "./sortedListing.ts";

/** The local emulator could not start (port taken, data directory unusable...). */
export class EmulatorError extends MoverError {}

export interface EmulatorOptions {
  /** Port on 127.0.0.1; 0 picks a free one. Default 4566, where LocalStack-style tools look. */
  port?: number;
  /** Keep state here across restarts (`<dataDir>/fauxqs`, `<dataDir>/dynamodb`); in memory when absent. */
  dataDir?: string;
}

export interface Emulator {
  /** `http://127.0.0.1:<port>`: give it as `endpoint` to the S3 (with `forcePathStyle`), SQS and DynamoDB clients. */
  endpoint: string;
  port: number;
  /** The address the server is bound to, as the OS reports it: 127.0.0.1, never a public interface. */
  address: string;
  stop(): Promise<void>;
}

type Stores = NonNullable<BuildAppOptions["stores"]>;
type PersistenceManager = NonNullable<Stores["sqsStore"]["persistence"]>;
type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;
interface DynaliteStore {
  db: { open(): Promise<void>; close(callback: (err?: Error | null) => void): void };
}

// fauxqs's package `exports` map only exposes dist/app.js, so its stores and persistence load by file URL beside it.
async function importFauxqsInternals() {
  const entry = import.meta.resolve("fauxqs");
  const load = (path: string): Promise<Record<string, unknown>> => import(new URL(path, entry).href);
  const [sqs, sns, s3, persistence] = await Promise.all([
    load("./sqs/sqsStore.js"),
    load("./sns/snsStore.js"),
    load("./s3/s3Store.js"),
    load("./persistence.js"),
  ]);
  return {
    SqsStore: sqs.SqsStore as new () => Stores["sqsStore"],
    SnsStore: sns.SnsStore as new () => Stores["snsStore"],
    S3Store: s3.S3Store as new () => Stores["s3Store"],
    PersistenceManager: persistence.PersistenceManager as new (dataDir: string) => PersistenceManager,
  };
}

/**
 * Starts S3 + SQS (fauxqs) and DynamoDB (dynalite) on one port of 127.0.0.1.
 *
 * @example
 * const emulator = await startEmulator({ port: 0 });
 * const s3 = new S3Client({ endpoint: emulator.endpoint, forcePathStyle: true, region: "us-east-1" });
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const port = options.port ?? 4566;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new TypeError(`Expected \`port\` to be an integer from 0 to 65535, got ${port}.`);
  }
  const fauxqsDir = options.dataDir && join(options.dataDir, "fauxqs");
  const dynamoDir = options.dataDir && join(options.dataDir, "dynamodb");
  try {
    for (const dir of [fauxqsDir, dynamoDir]) if (dir) mkdirSync(dir, { recursive: true });
  } catch (cause) {
    throw new EmulatorError(`Cannot create the emulator data directory "${options.dataDir}": pick a writable path.`, {
      cause,
    });
  }

  const dynamo = await createDynalite(dynamoDir);
  const { SqsStore, SnsStore, S3Store, PersistenceManager } = await importFauxqsInternals();
  const stores = { sqsStore: new SqsStore(), snsStore: new SnsStore(), s3Store: new S3Store() };
  useSortedListing(stores.s3Store as unknown as ListableStore);
  // Empty host: queue URLs name the address the client called (http://127.0.0.1:<port>/000000000000/<name>, or a
  // proxy's); fauxqs's default names them sqs.<region>.localhost:<port>, which may resolve to ::1, where nothing
  // listens.
  stores.sqsStore.host = "";
  let persistence: PersistenceManager | undefined;
  const app = buildApp({
    logger: false,
    stores,
    // Lets tests copy small objects with byte-range UploadPartCopy (S3 wants a source over 5 MiB for that).
    relaxedRules: { disableMinCopySourceSize: true },
  });
  // DynamoDB shares the port: its requests name their operation in x-amz-target ("DynamoDB_20120810.PutItem").
  app.addHook("onRequest", async (request, reply) => {
    const target = request.headers["x-amz-target"];
    if (typeof target === "string" && target.startsWith("DynamoDB_")) {
      reply.hijack();
      dynamo.handle(request.raw, reply.raw);
    }
  });
  const close = async () => {
    await app.close();
    persistence?.close();
    await dynamo.close();
  };

  try {
    if (fauxqsDir) {
      persistence = new PersistenceManager(fauxqsDir);
      keepReleasedMessages(persistence);
      // Load before wiring persistence into the stores, as fauxqs's startFauxqs does: loading must not write back.
      persistence.load(stores.sqsStore, stores.snsStore, stores.s3Store);
      stores.sqsStore.persistence = persistence;
      stores.snsStore.persistence = persistence;
      stores.s3Store.persistence = persistence;
      for (const queue of stores.sqsStore.allQueues()) queue.persistence = persistence;
    }
    await app.listen({ port, host: "127.0.0.1" });
  } catch (cause) {
    await close();
    const inUse = (cause as NodeJS.ErrnoException).code === "EADDRINUSE";
    throw new EmulatorError(
      inUse
        ? `Port ${port} on 127.0.0.1 is already in use: stop whatever holds it, or pass port 0 for a free one.`
        : `The emulator could not start on 127.0.0.1:${port}${fauxqsDir ? ` with its state in "${fauxqsDir}"` : ""}.`,
      { cause },
    );
  }
  const bound = app.server.address() as AddressInfo;
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${bound.port}`,
    port: bound.port,
    address: bound.address,
    stop: () => {
      stopped ??= close();
      return stopped;
    },
  };
}

/**
 * fauxqs 2.4.1 writes a message back as ready (its visibility set to 0) with NULL in the NOT NULL receive count: the
 * write throws after the message has left the in-flight set, so it is on no queue at all until a restart. A redrive
 * leaves other jobs' letters on their dead-letter queue that way, and the local runtime a message it took as it
 * stopped. Only the in-flight columns are cleared here; the count stays as the receive wrote it.
 */
function keepReleasedMessages(persistence: PersistenceManager): void {
  const internals = persistence as unknown as {
    db?: { prepare?(sql: string): { run(...args: unknown[]): unknown } };
    updateMessageReady?: unknown;
  };
  const { db } = internals;
  // A fauxqs laid out otherwise is left as it is (the lockfile pins 2.4.1; the emulator tests check the behaviour).
  if (typeof db?.prepare !== "function" || typeof internals.updateMessageReady !== "function") return;
  const ready = db.prepare(
    "UPDATE sqs_messages SET receipt_handle = NULL, visibility_deadline = NULL WHERE message_id = ?",
  );
  (persistence as unknown as { updateMessageReady(messageId: string): void }).updateMessageReady = (messageId) => {
    ready.run(messageId);
  };
}

/** A dynalite server that never listens: we only borrow its request handler, and close its store ourselves. */
async function createDynalite(path: string | undefined): Promise<{ handle: RequestListener; close(): Promise<void> }> {
  const require = createRequire(import.meta.url);
  const dynalite = require("dynalite") as (options: Record<string, unknown>) => Server;
  const dynaliteDb = require("dynalite/db") as { create(options: Record<string, unknown>): DynaliteStore };
  // dynalite keeps its store private and closes it only from server.close(), which fails on a server that never
  // listened; catch the store as dynalite creates it.
  const create = dynaliteDb.create;
  let store: DynaliteStore | undefined;
  dynaliteDb.create = (options) => {
    store = create(options);
    return store;
  };
  let server: Server;
  try {
    server = dynalite({ ...(path ? { path } : {}), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  } finally {
    dynaliteDb.create = create;
  }
  const handle = server.listeners("request")[0] as RequestListener | undefined;
  const db = store?.db;
  if (!handle || !db) throw new EmulatorError("dynalite changed shape: this emulator expects dynalite 4.x.");
  // LevelDB locks its directory: a second emulator on the same dataDir fails here rather than on its first request.
  await db.open().catch((cause: unknown) => {
    throw new EmulatorError(
      `Cannot open the DynamoDB store in "${path}": is another emulator using this dataDir? Stop it or pick another.`,
      { cause },
    );
  });
  return {
    handle,
    close: () => new Promise((resolve, reject) => db.close((err) => (err ? reject(err) : resolve()))),
  };
}
