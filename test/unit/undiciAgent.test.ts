import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Agent } from "undici";
import { describe, expect, it } from "vitest";
import { UndiciAgent, undiciRequest } from "../../src/s3/undiciAgent.ts";

// src/s3/undiciAgent.ts loads two files of undici that are not its public API: if an upgrade moves them, this fails.
describe("undici's Agent and request(), loaded without its index", () => {
  it("are undici's own", () => {
    expect(UndiciAgent).toBe(Agent);
  });

  it("send a request over loopback and read the answer", async () => {
    const server = createServer((req, res) => {
      res.setHeader("x-seen", `${req.method} ${req.url}`);
      res.end("hello");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const agent = new UndiciAgent({ connections: 2 });
    try {
      const { port } = server.address() as AddressInfo;
      const answer = await undiciRequest(agent, { origin: `http://127.0.0.1:${port}`, path: "/a/./b", method: "PUT" });
      expect(answer.statusCode).toBe(200);
      expect(answer.headers["x-seen"]).toBe("PUT /a/./b");
      expect(await answer.body.text()).toBe("hello");
    } finally {
      await agent.close();
      server.close();
    }
  });
});
