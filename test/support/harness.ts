import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll } from "vitest";
import { destroyClients } from "../../src/aws/clients.ts";
import { type Emulator, startEmulator } from "../../src/emulator/emulator.ts";
import { ensureBucket } from "../../src/images/seed.ts";
import { createLocalApp, type LocalApp, type LocalAppOptions } from "../../src/local/localApp.ts";
import { type LoopbackProxy, startProxy } from "./proxy.ts";

/** One emulator per test file, on a free port, and LocalApps against it (or against a proxy in front of it). */
export async function startHarness(): Promise<Harness> {
  const emulator = await startEmulator({ port: 0 });
  const apps: LocalApp[] = [];
  return {
    emulator,
    async app(options: LocalAppOptions = {}) {
      const app = await createLocalApp({ endpoint: emulator.endpoint, ...options });
      apps.push(app);
      return app;
    },
    async stop() {
      for (const app of apps) destroyClients(app.clients);
      await emulator.stop();
    },
  };
}

export interface Harness {
  emulator: Emulator;
  app(options?: LocalAppOptions): Promise<LocalApp>;
  stop(): Promise<void>;
}

export type ProxiedHarness = Harness & { proxy: LoopbackProxy };

/** A harness with a fault-injecting proxy in front of its emulator: apps made with `endpoint: proxy.endpoint`. */
export async function startHarnessWithProxy(): Promise<ProxiedHarness> {
  const harness = await startHarness();
  const proxy = await startProxy({ target: harness.emulator.endpoint });
  return {
    ...harness,
    proxy,
    async stop() {
      await proxy.stop();
      await harness.stop();
    },
  };
}

/**
 * A proxied harness for the calling describe block: started before its tests, stopped after them. What it returns
 * may only be used inside those tests (and hooks after beforeAll).
 */
export function useProxiedHarness(): ProxiedHarness {
  let started: ProxiedHarness | undefined;
  beforeAll(async () => {
    started = await startHarnessWithProxy();
  });
  afterAll(async () => {
    await started?.stop();
  });
  const current = (): ProxiedHarness => {
    if (!started) throw new Error("the harness starts in beforeAll: use it inside a test");
    return started;
  };
  return {
    get emulator() {
      return current().emulator;
    },
    get proxy() {
      return current().proxy;
    },
    app: (options) => current().app(options),
    stop: () => current().stop(),
  };
}

let bucketCounter = 0;
/** Fresh bucket names per test, so tests in one file never see each other's objects. */
export async function freshBuckets(s3: S3Client, label: string): Promise<{ from: string; to: string }> {
  bucketCounter += 1;
  const stamp = `${label}-${process.pid}-${bucketCounter}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const from = `src-${stamp}`.slice(0, 63);
  const to = `dst-${stamp}`.slice(0, 63);
  await ensureBucket(s3, from);
  await ensureBucket(s3, to);
  return { from, to };
}

/** Every key of a bucket (under a prefix), paging through ListObjectsV2. */
export async function listAll(
  s3: S3Client,
  bucket: string,
  prefix?: string,
): Promise<Map<string, { etag: string; size: number }>> {
  const keys = new Map<string, { etag: string; size: number }>();
  let token: string | undefined;
  do {
    const out = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, ...(prefix ? { Prefix: prefix } : {}) }),
    );
    for (const item of out.Contents ?? [])
      if (item.Key) keys.set(item.Key, { etag: item.ETag ?? "", size: item.Size ?? 0 });
    token = out.NextContinuationToken;
  } while (token);
  return keys;
}
