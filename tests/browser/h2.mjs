// Headless Chromium over the TLS listener (issue 7): the page arrives over HTTP/2 with the
// beacon injected, its sub-resources (the beacon script) too, and the beacon's POST lands (204)
// and is stored under the page's view id with nextHopProtocol "h2" in its navigation entry.
// usage: node h2.mjs https://localhost:PORT   (prints TAP; run by h2.sh)
import { chromium } from 'playwright-core';

const base = process.argv[2];
let n = 0, failed = 0;
const ok = (cond, name, info) => {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond && info !== undefined) console.log(`  # ${JSON.stringify(info)}`.slice(0, 1500));
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--ignore-certificate-errors',
    '--disable-background-networking', '--no-first-run', '--disable-quic'],
});
try {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  const beacons = [];
  page.on('response', (r) => {
    if (r.url().includes('/__vitals/beacon') && r.request().method() === 'POST')
      beacons.push(r.status());
  });
  await page.goto(`${base}/html`, { waitUntil: 'load' });
  const nav = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  ok(nav === 'h2', 'navigation nextHopProtocol is h2', nav);
  const vid = await page.evaluate(() => document.querySelector('script[src*="/__vitals/beacon.js"]')?.dataset.vid);
  ok(/^[\w-]{8,64}$/.test(vid || ''), 'the page over h2 carries the injected beacon tag', vid);
  const res = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/__vitals/beacon.js')).map((e) => e.nextHopProtocol));
  ok(res.length === 1 && res[0] === 'h2', 'beacon.js loaded over h2', res);
  await page.waitForTimeout(500);
  await page.goto('about:blank'); // pagehide: the beacon sends what it has
  await page.waitForTimeout(1500);
  let view = null;
  for (let i = 0; i < 20 && !view; i++) {
    const r = await ctx.request.get(`${base}/__vitals/api/views/${vid}`, { ignoreHTTPSErrors: true });
    if (r.status() === 200) view = await r.json();
    else await new Promise((f) => setTimeout(f, 250));
  }
  ok(view !== null, 'the beacon landed: the view is in the API over h2', vid);
  const wf = (view && view.resources) || [];
  ok(wf.length > 0 && wf.every((r) => r.protocol === 'h2'), 'the waterfall\'s protocol is h2', wf);
  const reqs = ((view && view.requests) || []).filter((r) => r.url === '/html');
  ok(reqs.length === 1 && reqs[0].protocol === 'h2' && /^TLSv1\.[23]$/.test(reqs[0].tls_version),
    'the proxy\'s timing record says h2 and the TLS version', reqs);
} finally {
  await browser.close();
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
