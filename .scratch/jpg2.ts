import jpeg from "jpeg-js";
const t0 = performance.now();
for (const s of [8, 8, 8, 16, 27, 100]) {
  const a = performance.now();
  const r = jpeg.encode({ data: new Uint8Array(s * s * 4), width: s, height: s }, 80);
  console.log(s, r.data.length, (performance.now() - a).toFixed(1));
}
import { makeJpeg } from "../src/images/jpeg.ts";
for (const t of [6_000_000, 6_000_000, 6_000_000, 500, 500]) { const a = performance.now(); makeJpeg(3, t); console.log(t, (performance.now() - a).toFixed(1)); }
