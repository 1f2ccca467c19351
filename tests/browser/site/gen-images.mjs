// Writes the test images into public/: a blocky-noise PNG (a low-entropy image is not an LCP
// candidate in Chrome, so the hero must carry real detail) and a 1x1 PNG for the 400-resource page.
import { deflateSync } from 'node:zlib';
import { writeFileSync, mkdirSync } from 'node:fs';

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc = (buf) => {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};
const chunk = (type, data) => {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
  return Buffer.concat([len, td, c]);
};
const png = (w, h, pixel) => {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) pixel(x, y, raw, y * (w * 3 + 1) + 1 + x * 3);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
};
let seed = 42;
const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
const blocks = new Map();
const dir = new URL('./public/', import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL('hero.png', dir), png(800, 450, (x, y, b, o) => {
  const k = `${x >> 3},${y >> 3}`;
  if (!blocks.has(k)) blocks.set(k, [rnd(), rnd(), rnd()]);
  const [r, g, bl] = blocks.get(k);
  b[o] = r ^ (rnd() & 15); b[o + 1] = g; b[o + 2] = bl;
}));
writeFileSync(new URL('dot.png', dir), png(1, 1, (x, y, b, o) => { b[o] = 200; b[o + 1] = 30; b[o + 2] = 30; }));
