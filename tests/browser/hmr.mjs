// HMR through the front: a copy of the test app runs under `next dev`; the page is opened through
// the proxy (or the harness), the page's source is edited, and the open page must show the new
// text without a reload, which only happens over the dev server's WebSocket. Prints TAP lines
// numbered from START.
//
// usage: node hmr.mjs BASE_URL SITE_DIR START      (TAP_STATE=file: write the last number, no plan)
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [base, siteDir, startArg] = process.argv.slice(2);
let n = Number(startArg) - 1;
let failed = 0;
const ok = (cond, name, info) => {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond && info !== undefined) console.log(`  # ${JSON.stringify(info)}`.slice(0, 2000));
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
try {
  const page = await browser.newPage();
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(base + '/hmr', { waitUntil: 'load', timeout: 90000 });
  ok((await page.textContent('#hmr')) === 'version 1', 'hmr: dev page served through the front');
  ok(await page.evaluate(() => !!document.querySelector('script[src*="/__vitals/beacon.js"]')), 'hmr: beacon injected into the dev page');
  await page.waitForFunction(() => true);
  await new Promise((r) => setTimeout(r, 1500));
  ok(sockets.some((u) => /\/_next\/(webpack-)?hmr/.test(u)), 'hmr: HMR WebSocket opened through the front', sockets);
  await page.evaluate(() => { window.__noReload = 1; });
  const file = join(siteDir, 'app/hmr/page.js');
  writeFileSync(file, readFileSync(file, 'utf8').replace('version 1', 'version 2'));
  let updated = false;
  try {
    await page.waitForFunction(() => document.querySelector('#hmr')?.textContent === 'version 2', null, { timeout: 30000 });
    updated = true;
  } catch {}
  ok(updated, 'hmr: the edit reaches the open page');
  ok(updated && (await page.evaluate(() => window.__noReload === 1)), 'hmr: without a full reload');
} catch (e) {
  ok(false, `hmr: threw ${e.message.split('\n')[0]}`);
}
await browser.close();
if (process.env.TAP_STATE) writeFileSync(process.env.TAP_STATE, String(n));
else console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
