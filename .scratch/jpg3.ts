import jpeg from "jpeg-js";
function encodeSquare(side: number) {
  const data = new Uint8Array(side * side * 4);
  let seed = 0x9e3779b9;
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) {
    seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
    const noise = (seed >>> 24) % 48; const i = (y * side + x) * 4;
    data[i] = ((x * 255) / side + noise) & 0xff; data[i + 1] = ((y * 255) / side + noise) & 0xff;
    data[i + 2] = (((x + y) * 127) / side + noise) & 0xff; data[i + 3] = 0xff;
  }
  return jpeg.encode({ data, width: side, height: side }, 80).data;
}
for (const s of [8, 9, 12, 16, 17, 20, 24, 32, 40, 64, 128, 256, 512]) { const a = performance.now(); const n = encodeSquare(s).length; console.log(s, n, ((n - 610) / s / s).toFixed(3), (performance.now() - a).toFixed(1)); }
