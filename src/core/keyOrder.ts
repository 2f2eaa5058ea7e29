// The order S3 lists keys in, which the move report and the embedded emulator's listing index both keep.

/**
 * Compares two keys in UTF-8 byte order. UTF-16 code units agree with it except where a surrogate (a character
 * above U+FFFF, four bytes in UTF-8) meets a unit of U+E000–U+FFFF (three bytes): there UTF-8 puts the surrogate last.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return utf8Rank(x) - utf8Rank(y);
    return x - y;
  }
  return a.length - b.length;
}

function utf8Rank(unit: number): number {
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}
