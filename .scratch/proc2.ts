import { spawnEmulator } from "../src/emulator/process.ts";
import { startEmulator } from "../src/emulator/emulator.ts";
const em = await startEmulator({ port: 0 });
try { await spawnEmulator({ port: em.port }); } catch (e) { console.log(String(e)); }
try { await startEmulator({ port: em.port }); } catch (e) { console.log(String(e)); }
await em.stop();
