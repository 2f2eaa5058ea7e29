import { Agent, request } from "node:http";
import { startEmulator } from "../src/emulator/emulator.ts";
const em = await startEmulator({ port: 0 });
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
function call(headers: Record<string, string>, body: string, path = "/") {
  return new Promise<string>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: em.port, method: "POST", path, headers, agent }, (res) => {
      let s = ""; res.on("data", (c) => (s += c)); res.on("end", () => resolve(`${res.statusCode} ${(req.socket as any)?.localPort ?? ""} ${s.slice(0, 60)}`));
    });
    req.on("error", reject); req.end(body);
  });
}
for (let i = 0; i < 3; i++) {
  console.log(await call({ "x-amz-target": "DynamoDB_20120810.ListTables", "content-type": "application/x-amz-json-1.0" }, "{}"));
  console.log(await call({ "x-amz-target": "AmazonSQS.ListQueues", "content-type": "application/x-amz-json-1.0" }, "{}"));
}
agent.destroy();
await em.stop();
console.log("done");
