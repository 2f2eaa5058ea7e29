// The SDK clients against an endpoint that takes connections and never answers (a frozen emulator, a wrong port
// with something else on it): each call must fail after its idle timeout, not wait forever.
import { createServer, type Server, type Socket } from "node:net";
import { HeadBucketCommand } from "@aws-sdk/client-s3";
import { GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AwsClients, createClients, destroyClients, resolveTarget } from "../../src/aws/clients.ts";

describe("the SDK clients against an endpoint that never answers", () => {
  let server: Server;
  let clients: AwsClients;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    server = createServer((socket) => sockets.push(socket)); // takes the connection, reads nothing, says nothing
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    clients = createClients({
      ...resolveTarget({ endpoint: `http://127.0.0.1:${port}`, region: "us-east-1" }),
      idleTimeoutMs: { s3: 300, queuesAndTable: 300 },
    });
  });
  afterAll(async () => {
    destroyClients(clients);
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it("fails each call with a TimeoutError after the idle timeout, and its retries, instead of waiting forever", async () => {
    const timedOut = { name: "TimeoutError", message: expect.stringMatching(/timed out after 300 ms of inactivity/) };
    await Promise.all([
      expect(clients.s3.send(new HeadBucketCommand({ Bucket: "any-bucket" }))).rejects.toMatchObject(timedOut),
      expect(clients.sqs.send(new GetQueueUrlCommand({ QueueName: "any-queue" }))).rejects.toMatchObject(timedOut),
      expect(clients.dynamo.send(new GetCommand({ TableName: "any", Key: { pk: "x" } }))).rejects.toMatchObject(
        timedOut,
      ),
    ]);
  }, 60_000);
});
