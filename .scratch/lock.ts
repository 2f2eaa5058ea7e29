import { startEmulator } from "../src/emulator/emulator.ts";
const a = await startEmulator({ port: 0, dataDir: "/tmp/emlock" });
try { const b = await startEmulator({ port: 0, dataDir: "/tmp/emlock" }); console.log("second started?!", b.port); await b.stop(); } catch (e) { console.log("second failed", String(e)); }
await a.stop();
