import jpeg from "jpeg-js";
import { makeJpeg, isJpeg } from "../src/images/jpeg.ts";
for (const t of [1, 500, 660, 661,662,663,664,665,700, 1024, 2048, 5000, 20480, 100_000, 200_000, 1_000_000, 6_000_000]) {
  const t0 = performance.now();
  const a = makeJpeg(1, t);
  const t1 = performance.now();
  const b = makeJpeg(123456789, t);
  const t2 = performance.now();
  const d = jpeg.decode(a, { useTArray: true });
  const d2 = jpeg.decode(b, { useTArray: true });
  console.log(t, a.length, b.length, isJpeg(a), (t1 - t0).toFixed(1), (t2 - t1).toFixed(2), d.width, d2.width, d.comments?.length, JSON.stringify(d2.comments?.[0]));
}
const t0 = performance.now();
for (let i = 0; i < 10000; i++) makeJpeg(i);
console.log("10k default", (performance.now() - t0).toFixed(0), "ms");
