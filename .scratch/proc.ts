import { spawnEmulator } from "../src/emulator/process.ts";
const t0 = Date.now();
const em = await spawnEmulator({ port: 0, dataDir: "/tmp/emp" });
console.log(em.endpoint, em.pid, Date.now() - t0);
em.kill("SIGKILL");
await em.stop();
console.log("killed", Date.now() - t0);
const em2 = await spawnEmulator({ port: 0, dataDir: "/tmp/emp" });
console.log(em2.endpoint, em2.pid, Date.now() - t0);
await em2.stop();
console.log("stopped", Date.now() - t0);
try { await spawnEmulator({ port: em2.port === 1 ? 2 : 1 }); } catch (e) { console.log(String(e)); }
