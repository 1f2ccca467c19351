// Browser tests of web/beacon.js (each test in a fresh browser context; launch() itself runs on a
// fresh temporary profile): headless Debian Chromium (playwright-core) loads the Next.js
// test app through the front server (harness.mjs, which records every beacon POST) and either
// the real vitals-proxy or the harness's own injection. The web-vitals attribution build is
// loaded into the same page loads as a test-only reference; both report their final values when
// the page is hidden (we navigate away), and the test compares them. Prints TAP.
//
// usage: node tests.mjs BASE_URL [--proxy] [--only NAME]
//   BASE_URL  the harness (e.g. http://localhost:8081)
//   --proxy   the beacon goes through a real vitals-proxy: also check its API stored the views
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import zlib from 'node:zlib';
import { launch as launchCDP } from './cdp.mjs';

const base = process.argv[2];
const viaProxy = process.argv.includes('--proxy');
const onlyIdx = process.argv.indexOf('--only');
const only = onlyIdx > 0 ? process.argv[onlyIdx + 1] : null;
const refLib = readFileSync(new URL('./node_modules/web-vitals/dist/web-vitals.attribution.iife.js', import.meta.url), 'utf8')
  .replace(/\n\/\/# sourceMappingURL=.*/, '') + ';\nwindow.webVitals = webVitals;';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Runs inside the page (before any page script): the reference reports every final value to
// the harness with sendBeacon, tagged with the view id of the beacon's tag.
const refInit = `
(() => {
  const prim = (o) => { const r = {}; for (const k in o || {}) if (o[k] == null || typeof o[k] != 'object') r[k] = o[k]; return r; };
  // reports wait for the beacon's tag (it may be inserted late) to learn the view id
  const pending = [];
  const flush = () => {
    const tag = document.querySelector('script[src*="/__vitals/beacon.js"]');
    if (tag) for (const r of pending.splice(0)) navigator.sendBeacon('/__test/ref', JSON.stringify({...r, vid: tag.dataset.vid}));
  };
  const send = (m) => { pending.push({name: m.name, value: m.value, delta: m.delta, id: m.id,
    navigationType: m.navigationType, url: location.pathname, attribution: prim(m.attribution)}); flush(); };
  setInterval(flush, 250);
  for (const f of ['onLCP', 'onCLS', 'onINP', 'onFCP', 'onTTFB']) webVitals[f](send);
})();`;

const getJSON = async (path) => (await fetch(base + path)).json();

// Final state of every view seen by the harness: {vid: {ctx, metrics: {LCP: {...}}, res: [...], posts: [...]}}
const collect = async () => {
  const views = {};
  for (const rec of await getJSON('/__test/beacons')) {
    const p = JSON.parse(rec.body);
    const v = (views[p.vid] ||= { ctx: p, metrics: {}, ids: {}, res: [], posts: [], nt: null });
    v.posts.push(rec);
    for (const m of p.m || []) {
      v.metrics[m.n] = m;
      (v.ids[m.n] ||= new Set()).add(m.id);
    }
    if (p.nt) v.nt = p.nt;
    (p.res || []).forEach((r, i) => { v.res[p.ri + i] = r; });
  }
  return views;
};
const refsFor = async (vid) => {
  const out = {};
  for (const r of await getJSON('/__test/ref')) if (r.vid === vid) out[r.name] = r;
  return out;
};

let n = 0;
let failed = 0;
const results = [];
const ok = (cond, name, info) => {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond && info !== undefined) console.log(`  # ${JSON.stringify(info)}`.slice(0, 2000));
  return cond;
};
const near = (a, b, tol) => typeof a === 'number' && typeof b === 'number' && Math.abs(a - b) <= tol;

const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  // bfcache is a feature under test: keep Chromium's own default (playwright turns it off)
  ignoreDefaultArgs: ['--disable-back-forward-cache'],
  args: chromiumArgs,
});

const newPage = async (withRef = true) => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  if (withRef) {
    await ctx.addInitScript({ content: refLib });
    await ctx.addInitScript({ content: refInit });
  }
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(`${m.text()} ${m.location().url}`));
  return { ctx, page, errors };
};
// Waits until React has hydrated the element (its handlers are attached): an
// interaction before that is measured without the handler's work.
const hydrated = (page, sel) => page.waitForFunction(
  (s) => { const e = document.querySelector(s); return !!e && Object.keys(e).some((k) => k.startsWith('__reactProps')); },
  sel, { timeout: 20000 });
const vidOf = (page) => page.evaluate(() => document.querySelector('script[src*="/__vitals/beacon.js"]')?.dataset.vid);
// Hides the page the way a user does: navigating away fires pagehide and visibilitychange.
const leave = async (page) => {
  await page.goto('about:blank');
  await sleep(400);
};

// Compares our final metrics of view vid with the reference's.
const compare = async (label, vid, names) => {
  const views = await collect();
  const ours = views[vid];
  const ref = await refsFor(vid);
  if (!ok(ours, `${label}: beacon received for the view`, { vid, have: Object.keys(views) })) return null;
  for (const name of names) {
    const a = ours.metrics[name];
    const b = ref[name];
    if (!ok(a && b, `${label}: ${name} reported by both`, { ours: a, ref: b })) continue;
    const tol = name === 'CLS' ? 1e-6 : name === 'INP' ? 0 : 1;
    ok(near(a.v, b.value, tol), `${label}: ${name} value matches the reference (${a.v} vs ${b.value})`, { ours: a, ref: b });
    if (name === 'LCP') ok(a.a && a.a.target === b.attribution.target, `${label}: LCP target matches (${a.a && a.a.target})`, { ours: a.a, ref: b.attribution });
    if (name === 'INP') ok(a.a && a.a.target === b.attribution.interactionTarget, `${label}: INP target matches (${a.a && a.a.target})`, { ours: a.a, ref: b.attribution });
    if (name === 'INP') ok(a.a && a.a.type === b.attribution.interactionType, `${label}: INP interaction type matches (${a.a && a.a.type})`, { ours: a.a, ref: b.attribution });
    if (name === 'CLS' && b.value > 0) ok(a.a && a.a.target === b.attribution.largestShiftTarget, `${label}: CLS target matches`, { ours: a.a, ref: b.attribution });
    if (ours.ids[name].size !== 1) ok(false, `${label}: ${name} has one id`, [...ours.ids[name]]);
  }
  const sent = ours.posts.flatMap((p) => (JSON.parse(p.body).m || []).map((m) => `${m.id}=${m.v}`));
  ok(new Set(sent).size === sent.length, `${label}: no metric value sent twice`, sent);
  return ours;
};

const apiCheck = async (label, vid) => {
  if (!viaProxy) return;
  const r = await fetch(`${base}/__vitals/api/views/${vid}`);
  ok(r.status === 200, `${label}: the proxy's API has view ${vid}`, r.status);
};

const tests = {
  async home_lcp_image() {
    const { ctx, page, errors } = await newPage();
    await page.goto(base + '/', { waitUntil: 'load' });
    await sleep(1500);
    const vid = await vidOf(page);
    ok(/^[\w-]{8,64}$/.test(vid || ''), 'home: the injected tag carries a view id', vid);
    await leave(page);
    const v = await compare('home', vid, ['LCP', 'FCP', 'TTFB', 'CLS']);
    if (v) {
      ok(v.metrics.LCP && v.metrics.LCP.a.url === '/hero.png', 'home: LCP resource url is the hero image', v.metrics.LCP);
      const a = v.metrics.LCP && v.metrics.LCP.a;
      ok(a && near(a.ttfb + a.loadDelay + a.loadDuration + a.renderDelay, v.metrics.LCP.v, 0.01), 'home: LCP sub-parts sum to LCP', a);
      ok(v.ctx.url === '/' && v.ctx.nav === 'navigate' && v.ctx.dev === 'desktop', 'home: view context', v.ctx);
      ok(v.nt && v.nt.ty === 'navigate' && v.nt.rps > 0 && v.nt.le > 0, 'home: navigation entry sent', v.nt);
      ok(v.res.some((r) => r && r.u === '/hero.png' && ['img', 'link'].includes(r.i) && r.rpe > 0), 'home: hero image in the waterfall', v.res.map((r) => r && r.u));
      ok(v.posts.every((p) => p.len <= 49152 && (p.status === 204)), 'home: every POST accepted and <= 48 KiB', v.posts.map((p) => [p.len, p.status, p.reply]));
      ok(v.posts.every((p) => /^text\/plain/.test(p.type || '')), 'home: sent as text/plain (sendBeacon)', v.posts.map((p) => p.type));
      await apiCheck('home', vid);
    }
    ok(errors.length === 0, 'home: no page errors', errors);
    await ctx.close();
  },

  async shift_cls() {
    const { ctx, page, errors } = await newPage();
    await page.goto(base + '/shift', { waitUntil: 'load' });
    await page.waitForSelector('#banner');
    await sleep(800);
    const vid = await vidOf(page);
    await leave(page);
    const v = await compare('shift', vid, ['CLS', 'LCP', 'FCP']);
    if (v) ok(v.metrics.CLS && v.metrics.CLS.v > 0.05, `shift: CLS reflects the banner (${v.metrics.CLS && v.metrics.CLS.v})`, v.metrics.CLS);
    ok(errors.length === 0, 'shift: no page errors', errors);
    await ctx.close();
  },

  async slow_click_inp() {
    const { ctx, page, errors } = await newPage();
    await page.goto(base + '/slow', { waitUntil: 'load' });
    await hydrated(page, '#slow');
    await sleep(500);
    await page.click('#fast');
    await sleep(200);
    await page.click('#slow');
    await sleep(300);
    await page.click('#fast');
    await sleep(300);
    const vid = await vidOf(page);
    await leave(page);
    const v = await compare('slow', vid, ['INP', 'LCP', 'FCP', 'CLS']);
    if (v && v.metrics.INP) {
      const a = v.metrics.INP.a;
      ok(v.metrics.INP.v >= 200, `slow: INP >= 200 ms (${v.metrics.INP.v})`, v.metrics.INP);
      ok(a.type === 'pointer' && a.target === '#slow', 'slow: INP attributed to a pointer interaction on #slow', a);
      ok(near(a.inputDelay + a.processing + a.presentation, v.metrics.INP.v, 0.01) && a.processing >= 250, 'slow: INP sub-parts sum to INP, processing holds the 300 ms', a);
      ok(['complete', 'dom-content-loaded'].includes(a.loadState), 'slow: loadState', a.loadState);
    }
    ok(errors.length === 0, 'slow: no page errors', errors);
    await ctx.close();
  },

  async keyboard_inp() {
    const { ctx, page } = await newPage();
    await page.goto(base + '/slow', { waitUntil: 'load' });
    await hydrated(page, '#field');
    await sleep(300);
    await page.click('#field');
    // the click's frame is presented before the first key: on a busy machine a keydown's 250 ms
    // handler could otherwise hold that frame back, and the click becomes the longest interaction
    // (both libraries then report a pointer INP, correctly)
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await sleep(100);
    await page.keyboard.type('abc', { delay: 150 });
    await sleep(300);
    const vid = await vidOf(page);
    await leave(page);
    const v = await compare('keys', vid, ['INP']);
    if (v && v.metrics.INP) ok(v.metrics.INP.a.type === 'keyboard' && v.metrics.INP.a.target === '#field', 'keys: INP is a keyboard interaction on #field', v.metrics.INP.a);
    await ctx.close();
  },

  async stream_suspense() {
    const { ctx, page, errors } = await newPage();
    await page.goto(base + '/stream', { waitUntil: 'load' });
    await page.waitForSelector('#late');
    await sleep(1300);
    const vid = await vidOf(page);
    await leave(page);
    const v = await compare('stream', vid, ['LCP', 'FCP', 'TTFB', 'CLS']);
    if (v) ok(v.metrics.LCP && v.metrics.LCP.a.target === '#late', 'stream: LCP is the streamed paragraph', v.metrics.LCP && v.metrics.LCP.a);
    ok(errors.length === 0, 'stream: no page errors', errors);
    await ctx.close();
  },

  async soft_navigation() {
    const { ctx, page, errors } = await newPage();
    await page.goto(base + '/nav/a', { waitUntil: 'load' });
    await hydrated(page, '#to-b');
    await sleep(1500);
    const vid = await vidOf(page);
    await page.click('#to-b');
    await page.waitForSelector('#b-title');
    await hydrated(page, '#slow');
    await sleep(300);
    await page.click('#slow');
    await sleep(300);
    await page.goBack({ waitUntil: 'commit' });
    await page.waitForSelector('#to-b');
    await sleep(300);
    await leave(page);
    const views = await collect();
    const hard = views[vid];
    const back = Object.values(views).filter((x) => x.ctx.pvid === vid && x.ctx.url === '/nav/a');
    ok(back.length === 1 && back[0].ctx.nav === 'soft-navigation', 'soft: history back (popstate) is another soft view', Object.values(views).map((x) => x.ctx));
    const soft = Object.values(views).find((x) => x.ctx.pvid === vid && x.ctx.url === '/nav/b');
    ok(hard && hard.ctx.url === '/nav/a', 'soft: hard view reported under /nav/a', hard && hard.ctx);
    if (ok(soft, 'soft: a soft-navigation view with the hard view as parent', Object.keys(views))) {
      ok(soft.ctx.nav === 'soft-navigation' && soft.ctx.url === '/nav/b' && soft.ctx.vid !== vid, 'soft: new id, route /nav/b', soft.ctx);
      ok(!soft.metrics.LCP && !soft.metrics.FCP && !soft.metrics.TTFB, 'soft: hard-navigation metrics not re-reported', Object.keys(soft.metrics));
      ok(soft.metrics.INP && soft.metrics.INP.v >= 200 && soft.metrics.INP.a.target === '#slow', 'soft: its own INP (the slow click on B)', soft.metrics.INP);
      ok(soft.metrics.CLS && soft.metrics.CLS.v >= 0, 'soft: its own CLS window', soft.metrics.CLS);
      ok(soft.res.some((r) => r && /nav\/b/.test(r.u) && r.i === 'fetch'), 'soft: the route fetch (RSC) is in its waterfall', soft.res.map((r) => r && r.u));
      const abs = (v, r) => `${r.u}@${Math.round(v.ctx.t0 + (r.s || 0))}`;
      const inHard = new Set(hard ? hard.res.map((r) => abs(hard, r)) : []);
      ok(hard && !soft.res.some((r) => inHard.has(abs(soft, r))), 'soft: no resource in both views', [...inHard]);
      ok(hard && hard.metrics.LCP && !(hard.metrics.INP && hard.metrics.INP.v >= 200), 'soft: hard view keeps its LCP and not the later slow click', hard && hard.metrics);
      await apiCheck('soft', soft.ctx.vid);
    }
    ok(errors.length === 0, 'soft: no page errors', errors);
    await ctx.close();
  },

  async strict_csp_nonce() {
    const { ctx, page, errors } = await newPage(false);
    const resp = await page.goto(base + '/csp', { waitUntil: 'load' });
    const csp = resp.headers()['content-security-policy'] || '';
    ok(/'nonce-[^']+'.*'strict-dynamic'/.test(csp), 'csp: the page has a nonce + strict-dynamic policy', csp);
    await sleep(1500);
    const vid = await vidOf(page);
    const tagNonce = await page.evaluate(() => document.querySelector('script[src*="/__vitals/beacon.js"]').nonce);
    ok(tagNonce && csp.includes(`'nonce-${tagNonce}'`), 'csp: the beacon tag carries the page nonce');
    await leave(page);
    const v = (await collect())[vid];
    ok(v && v.metrics.LCP && v.metrics.FCP && v.metrics.TTFB, 'csp: the beacon ran and reported', v && v.metrics);
    ok(!errors.some((e) => /Content Security Policy/i.test(e)), 'csp: no CSP violation', errors);
    await ctx.close();
  },

  async products_dynamic_route() {
    const { ctx, page } = await newPage(false);
    await page.goto(base + '/products/42?secret=1', { waitUntil: 'load' });
    await sleep(1500);
    const vid = await vidOf(page);
    await leave(page);
    const v = (await collect())[vid];
    ok(v && v.ctx.url === '/products/42', 'products: URL reported without the query string', v && v.ctx);
    const api = await fetch(base + '/api/ping');
    ok(api.status === 200 && (await api.json()).ok === true, 'api route served through the front');
    await ctx.close();
  },

  async many_resources_chunked() {
    const { ctx, page } = await newPage(false);
    await page.goto(base + '/many', { waitUntil: 'load' });
    await sleep(2500);
    const vid = await vidOf(page);
    await leave(page);
    const v = (await collect())[vid];
    if (ok(v, 'many: beacon received')) {
      const dots = v.res.filter((r) => r && r.u.startsWith('/dot.png?i='));
      ok(dots.length === 400, `many: all 400 resources in the waterfall (${dots.length})`);
      ok(v.res.every((r) => r), 'many: no holes in the resource index (ri chunking)', v.res.length);
      ok(v.posts.length >= 4 && v.posts.every((p) => p.len <= 49152), `many: split over ${v.posts.length} POSTs, each <= 48 KiB`, v.posts.map((p) => p.len));
      ok(v.posts.every((p) => p.status === 204), 'many: every chunk accepted', v.posts.map((p) => [p.status, p.reply]));
    }
    await ctx.close();
    // leaving right after load: what the idle slices have not encoded yet is encoded and sent
    // at hide, at once; the keepalive quota (64 KiB in flight) lets only the first chunk out
    const early = await newPage(false);
    await early.page.goto(base + '/many', { waitUntil: 'load' });
    await sleep(100);
    const vid2 = await vidOf(early.page);
    await leave(early.page);
    const v2 = (await collect())[vid2];
    const dots2 = v2 ? v2.res.filter((r) => r && r.u.startsWith('/dot.png?i=')).length : 0;
    console.log(`# many-early: ${dots2} resources over ${v2 ? v2.posts.length : 0} POSTs`);
    ok(v2 && dots2 > 0 && v2.res.every((r) => r) && v2.posts.every((p) => p.len <= 49152 && p.status === 204),
      `many-early: the hide flush sends the waterfall (${dots2} resources), no holes, every POST accepted`, v2 && v2.posts.map((p) => [p.len, p.status]));
    // a dot image the server failed under load is the page's error, not the beacon's
    const own = early.errors.filter((e) => !/^Failed to load resource: .*\/dot\.png\?i=/.test(e));
    ok(own.length === 0, 'many-early: no page errors', own);
    await early.ctx.close();
  },

  async bfcache_restore() {
    const { ctx, page } = await newPage();
    await page.goto(base + '/bf/one', { waitUntil: 'load' });
    await sleep(1200);
    const vid = await vidOf(page);
    await page.click('#to-two');
    await page.waitForURL('**/bf/two');
    await sleep(500);
    await page.goBack({ waitUntil: 'commit' });
    const restored = await page.evaluate(() => performance.getEntriesByType('navigation')[0].notRestoredReasons);
    await sleep(800);
    await leave(page);
    const views = await collect();
    const bf = Object.values(views).find((x) => x.ctx.pvid === vid && x.ctx.nav === 'back-forward-cache');
    if (ok(bf, 'bfcache: the restore is a new view (back-forward-cache)', { restored, views: Object.values(views).map((x) => x.ctx) })) {
      ok(bf.metrics.LCP && bf.metrics.FCP && bf.metrics.TTFB && bf.metrics.TTFB.v === 0, 'bfcache: LCP, FCP and TTFB (0) for the restore', bf.metrics);
      ok(views[vid] && views[vid].metrics.LCP && views[vid].metrics.LCP.id !== bf.metrics.LCP.id, 'bfcache: new metric ids');
      // The reference's last FCP report under this tag is the restore's. Both read performance.now()
      // in callbacks of the same frame; the reference's runs first and its reporting delays ours, so
      // ours is a little later, never earlier, and within the frame.
      const ref = (await refsFor(vid)).FCP;
      ok(ref && ref.navigationType === 'back-forward-cache' && bf.metrics.FCP && bf.metrics.FCP.v >= ref.value
        && bf.metrics.FCP.v - ref.value < 16,
        `bfcache: restore FCP matches the reference (${bf.metrics.FCP && bf.metrics.FCP.v} vs ${ref && ref.value})`, ref);
    }
    await ctx.close();
  },

  async late_async_load() {
    // the tag is removed from the HTML and inserted 1.5 s after load: buffered observers must
    // still give the same values as the reference, which was there from the start
    const { ctx, page, errors } = await newPage();
    await page.route('**/*', async (route) => {
      // only documents are rewritten; the rest goes through the browser's own network stack
      if (route.request().resourceType() !== 'document') return route.continue();
      const r = await route.fetch();
      if (!(r.headers()['content-type'] || '').startsWith('text/html')) return route.fulfill({ response: r });
      const html = await r.text();
      const m = /<script[^>]*\/__vitals\/beacon\.js[^>]*><\/script>/.exec(html);
      if (!m) { // not a page with our tag (the page itself is checked below)
        console.log(`# late: ${r.status()} ${route.request().url()} is text/html without the tag`);
        return route.fulfill({ response: r, body: html });
      }
      const tag = m[0];
      const src = /src="([^"]+)"/.exec(tag)[1];
      const vid = /data-vid="([^"]+)"/.exec(tag)[1];
      const late = `<script>addEventListener('load', () => setTimeout(() => { const s = document.createElement('script');
        s.src = ${JSON.stringify(src)}; s.dataset.vid = ${JSON.stringify(vid)}; s.async = true; document.head.append(s); }, 1500));</script>`;
      return route.fulfill({ response: r, body: html.replace(tag, late) });
    });
    await page.goto(base + '/', { waitUntil: 'load' });
    await page.waitForFunction(() => document.querySelector('script[src*="/__vitals/beacon.js"]'));
    await sleep(1500);
    const vid = await vidOf(page);
    await leave(page);
    await compare('late', vid, ['LCP', 'FCP', 'TTFB', 'CLS']);
    ok(errors.length === 0, 'late: no page errors', errors);
    await ctx.close();
  },

  async keep_query() {
    const { ctx, page } = await newPage(false);
    await page.route('**/*', async (route) => {
      // only documents are rewritten; the rest goes through the browser's own network stack
      if (route.request().resourceType() !== 'document') return route.continue();
      const r = await route.fetch();
      if (!(r.headers()['content-type'] || '').startsWith('text/html')) return route.fulfill({ response: r });
      return route.fulfill({ response: r, body: (await r.text()).replace('data-vid=', 'data-keep-query data-vid=') });
    });
    await page.goto(base + '/products/7?color=red', { waitUntil: 'load' });
    await sleep(1500);
    const vid = await vidOf(page);
    await leave(page);
    const v = (await collect())[vid];
    ok(v && v.ctx.url === '/products/7?color=red', 'keep-query: data-keep-query keeps the query string', v && v.ctx);
    await ctx.close();
  },

  async no_view_id() {
    // a tag without data-vid: the beacon mints its own view id
    const { ctx, page } = await newPage(false);
    await page.route('**/*', async (route) => {
      // only documents are rewritten; the rest goes through the browser's own network stack
      if (route.request().resourceType() !== 'document') return route.continue();
      const r = await route.fetch();
      if (!(r.headers()['content-type'] || '').startsWith('text/html')) return route.fulfill({ response: r });
      return route.fulfill({ response: r, body: (await r.text()).replace(/ data-vid="[^"]*"/, '') });
    });
    const url = `/products/novid${Date.now()}`;
    await page.goto(base + url, { waitUntil: 'load' });
    await sleep(1500);
    await leave(page);
    const v = Object.values(await collect()).find((x) => x.ctx.url === url);
    ok(v && /^[\w-]{8,64}$/.test(v.ctx.vid) && v.metrics.FCP, 'no-vid: a view with a minted id', v && v.ctx);
    await ctx.close();
  },

  async many_interactions_inp() {
    // 60 interactions: the p98 estimate skips the single worst one (index floor(60 / 50) = 1)
    const { ctx, page } = await newPage();
    await page.goto(base + '/slow', { waitUntil: 'load' });
    await hydrated(page, '#slow');
    await sleep(300);
    await page.click('#slow');
    await page.click('#slow');
    for (let i = 0; i < 58; i++) await page.click('#fast', { delay: 5 });
    await sleep(300);
    const count = await page.evaluate(() => performance.interactionCount);
    const vid = await vidOf(page);
    await leave(page);
    ok(count >= 60, `many-inp: ${count} interactions counted`);
    const v = await compare('many-inp', vid, ['INP']);
    if (v && v.metrics.INP) ok(v.metrics.INP.v >= 200, `many-inp: INP is the second slow click (${v.metrics.INP.v})`);
    await ctx.close();
  },

  async beacon_slices() {
    // No main-thread task may spend more than 5 ms in beacon.js: script evaluation, observer
    // callbacks, timers, the idle slices that encode and send the waterfall, the hide flush.
    // Measured as thread CPU time (trace `tdur`) of beacon.js call frames summed per top-level
    // task: CPU time is what the script costs; wall time on this shared machine adds whatever
    // else was scheduled. The in-page long-animation-frame observer gives the browser's own
    // script attribution (it lists scripts of >= 5 ms in frames of >= 50 ms): none may be ours.
    for (const [path, label] of [['/many', '400 resources'], ['/', 'home']]) {
      const { ctx, page, errors } = await newPage(false);
      await ctx.addInitScript({ content: `window.__loaf = []; try { new PerformanceObserver((l) => { for (const f of l.getEntries())
        for (const s of f.scripts) window.__loaf.push({url: s.sourceURL, d: s.duration, inv: s.invoker}); })
        .observe({type: 'long-animation-frame', buffered: true}); } catch (e) {}` });
      await browser.startTracing(page, { categories: ['devtools.timeline', 'toplevel'] });
      await page.goto(base + path, { waitUntil: 'load' });
      await sleep(2500);
      const loaf = await page.evaluate(() => window.__loaf);
      const vid = await vidOf(page);
      await leave(page);
      const trace = JSON.parse((await browser.stopTracing()).toString('utf8')).traceEvents;
      const isTask = (e) => e.ph === 'X' && (e.name === 'ThreadControllerImpl::RunTask' || e.name === 'RunTask');
      const mine = trace.filter((e) => e.ph === 'X' && e.dur && ['FunctionCall', 'EvaluateScript', 'v8.compile'].includes(e.name)
        && /\/__vitals\/beacon\.js/.test((e.args && e.args.data && (e.args.data.url || e.args.data.fileName)) || ''))
        .sort((a, b) => a.ts - b.ts);
      // outermost beacon frames only (a compile inside an evaluation is counted once), grouped
      // by the top-level task that contains them
      const tasks = trace.filter(isTask);
      const perTask = new Map();
      let end = -1;
      let tidEnd = '';
      for (const e of mine) {
        const key = `${e.pid}:${e.tid}`;
        if (key === tidEnd && e.ts < end) continue;
        tidEnd = key;
        end = e.ts + e.dur;
        const task = tasks.find((t) => t.pid === e.pid && t.tid === e.tid && t.ts <= e.ts && t.ts + t.dur >= e.ts + e.dur);
        const k = task ? `${key}@${task.ts}` : `${key}@${e.ts}`;
        const cur = perTask.get(k) || { cpu: 0, wall: 0, what: [] };
        cur.cpu += (e.tdur ?? e.dur) / 1000;
        cur.wall += e.dur / 1000;
        cur.what.push(e.args.data.functionName || e.name);
        perTask.set(k, cur);
      }
      const all = [...perTask.values()].sort((a, b) => b.cpu - a.cpu);
      const worst = all[0] || { cpu: 0, wall: 0, what: [] };
      const total = all.reduce((a, x) => a + x.cpu, 0);
      console.log(`# beacon.js on ${path} (${label}): ${all.length} tasks, longest ${worst.cpu.toFixed(2)} ms CPU `
        + `(${worst.wall.toFixed(2)} ms wall, ${worst.what.join('+')}), total ${total.toFixed(2)} ms CPU`);
      if (process.env.COST_DEBUG) for (const x of all.slice(0, 6)) console.log('#  ', x.cpu.toFixed(2), x.wall.toFixed(2), x.what.join('+'));
      ok(all.length > 0, `slices ${path}: beacon.js work found in the trace`);
      const ours = loaf.filter((s) => /\/__vitals\/beacon\.js/.test(s.url || ''));
      ok(worst.cpu <= 5, `slices ${path}: no task spends more than 5 ms CPU in beacon.js (longest ${worst.cpu.toFixed(2)} ms)`, worst);
      // LoAF durations are wall time (a descheduled thread counts): a figure, not an assertion
      console.log(`# long-animation-frame scripts on ${path}: ${loaf.length}, attributed to beacon.js: `
        + (ours.map((x) => `${x.d.toFixed(1)} ms wall`).join(', ') || 'none'));
      ok(errors.length === 0, `slices ${path}: no console errors`, errors);
      if (path === '/many') {
        const v = (await collect())[vid];
        ok(v && v.res.filter((r) => r && r.u.startsWith('/dot.png?i=')).length === 400 && v.posts.every((p) => p.len <= 49152),
          'slices /many: the sliced sending still delivers all 400 resources in POSTs <= 48 KiB', v && v.posts.map((p) => p.len));
      }
      await ctx.close();
    }
  },

  async prerender_activation() {
    // Speculation rules prerender /pre/to while /pre/from shows; a trusted click on the plain link
    // activates it. The beacon and the reference both subtract activationStart (TTFB, FCP, LCP)
    // and report navigationType "prerender". playwright-core cannot drive this (see cdp.mjs), so
    // this test runs its own Chromium over the DevTools pipe with tab targets.
    await fetch(base + '/__test/head', { method: 'POST', body: refLib + ';' + refInit });
    const b = await launchCDP(chromiumPath, chromiumArgs);
    try {
      const pages = new Map(); // sessionId -> targetInfo
      const errors = [];
      const status = [];
      b.on((m) => {
        if (m.method === 'Target.attachedToTarget') {
          const { sessionId, targetInfo: t } = m.params;
          if (t.type === 'tab') {
            b.send('Target.setAutoAttach', { autoAttach: true, flatten: true, waitForDebuggerOnStart: false }, sessionId).catch(() => {});
          } else if (t.type === 'page') {
            pages.set(sessionId, t);
            (async () => {
              await b.send('Runtime.enable', {}, sessionId);
              if (t.subtype !== 'prerender') await b.send('Preload.enable', {}, sessionId);
            })().catch(() => {});
          }
        } else if (m.method === 'Target.detachedFromTarget') {
          pages.delete(m.params.sessionId);
        } else if (m.method === 'Runtime.exceptionThrown') {
          errors.push(m.params.exceptionDetails.text + ' ' + (m.params.exceptionDetails.exception?.description || ''));
        } else if (m.method === 'Runtime.consoleAPICalled' && m.params.type === 'error') {
          errors.push(m.params.args.map((a) => a.value ?? a.description).join(' '));
        } else if (m.method === 'Preload.prerenderStatusUpdated') {
          status.push(m.params.status + (m.params.prerenderStatus ? ':' + m.params.prerenderStatus : ''));
        }
      });
      await b.send('Target.setAutoAttach', { autoAttach: true, flatten: true, waitForDebuggerOnStart: false,
        filter: [{ type: 'page', exclude: true }, {}] });
      const { targetId } = await b.send('Target.createTarget', { url: 'about:blank' });
      let front;
      for (let i = 0; i < 50 && !front; i++, await sleep(100)) front = [...pages].find(([, t]) => t.targetId === targetId)?.[0];
      if (!ok(front, 'prerender: a page session in a fresh tab')) return;
      await b.send('Target.activateTarget', { targetId });
      await sleep(300);
      await b.send('Page.navigate', { url: base + '/pre/from' }, front);
      // "Running" once the prerendered navigation has started; give its page time to load
      for (let i = 0; i < 100 && !status.includes('Running') && !status.some((x) => x.startsWith('Failure')); i++) await sleep(100);
      await sleep(2000);
      if (!ok(status.includes('Running') && !status.some((x) => x.startsWith('Failure')),
        `prerender: Chromium prerenders /pre/to (${status.join(', ')})`, status)) return;
      const eval_ = async (sid, expr) => (await b.send('Runtime.evaluate', { expression: expr, returnByValue: true, awaitPromise: true }, sid)).result.value;
      const box = await eval_(front, `(() => { const r = document.querySelector('#to-pre').getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()`);
      for (const type of ['mousePressed', 'mouseReleased'])
        await b.send('Input.dispatchMouseEvent', { type, x: box.x, y: box.y, button: 'left', clickCount: 1 }, front);
      await sleep(1500);
      const pre = [...pages].filter(([, t]) => t.subtype === 'prerender').pop();
      if (!ok(pre, 'prerender: the prerendered page got a session')) return;
      const info = await eval_(pre[0], `(async () => ({url: location.pathname, prerendering: document.prerendering,
        as: performance.getEntriesByType('navigation')[0].activationStart,
        fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
        lcp: await new Promise((r) => new PerformanceObserver((l) => r(l.getEntries().pop().startTime))
          .observe({type: 'largest-contentful-paint', buffered: true})),
        vid: document.querySelector('script[src*="/__vitals/beacon.js"]')?.dataset.vid}))()`);
      ok(info.url === '/pre/to' && info.prerendering === false && info.as > 0,
        `prerender: /pre/to was activated from the prerender (activationStart ${info.as && info.as.toFixed(1)} ms)`, info);
      await b.send('Page.navigate', { url: 'about:blank' }, pre[0]);
      await sleep(600);
      // The reference is put in the page's HTML by the harness (POST /__test/head): a DevTools
      // init script would need the page paused before its scripts, and Chromium kills a paused
      // prerender renderer (final status RendererProcessKilled).
      const v = await compare('prerender', info.vid, ['LCP', 'FCP', 'TTFB', 'CLS']);
      const ref = await refsFor(info.vid);
      if (v) {
        const m = v.metrics;
        ok(v.ctx.nav === 'prerender' && ref.FCP && ref.FCP.navigationType === 'prerender',
          `prerender: navigation type "prerender" (ours ${v.ctx.nav}, reference ${ref.FCP && ref.FCP.navigationType})`, { ours: v.ctx, ref });
        ok(m.FCP && info.fcp > info.as && near(m.FCP.v, info.fcp - info.as, 1),
          `prerender: FCP counts from activation (${m.FCP && m.FCP.v} vs ${info.fcp && info.fcp.toFixed(1)} - ${info.as.toFixed(1)})`, { m, info });
        ok(m.LCP && info.lcp > info.as && near(m.LCP.v, info.lcp - info.as, 1),
          `prerender: LCP counts from activation (${m.LCP && m.LCP.v} vs ${info.lcp && info.lcp.toFixed(1)} - ${info.as.toFixed(1)})`, { m, info });
        ok(m.TTFB && m.TTFB.v === 0, 'prerender: TTFB is 0 (the response came before activation)', m.TTFB);
        await apiCheck('prerender', info.vid);
      }
      ok(errors.length === 0, 'prerender: no console errors', errors);
    } finally {
      await b.close();
      await fetch(base + '/__test/head', { method: 'POST', body: '' });
    }
  },

  async no_interaction_id() {
    // A browser with Event Timing but no interactionId (older Chromium and Firefox releases):
    // the beacon measures everything else and sends it, without INP and without page errors.
    const { ctx, page, errors } = await newPage(false);
    await ctx.addInitScript({ content: 'delete PerformanceEventTiming.prototype.interactionId;' });
    await page.goto(base + '/', { waitUntil: 'load' });
    ok(await page.evaluate(() => !('interactionId' in PerformanceEventTiming.prototype)), 'no-interaction-id: the page has no interactionId');
    await sleep(1500);
    await page.click('body', { position: { x: 5, y: 5 } });
    const vid = await vidOf(page);
    await leave(page);
    const v = (await collect())[vid];
    const names = v ? Object.keys(v.metrics).sort().join(' ') : '';
    ok(names === 'CLS FCP LCP TTFB', `no-interaction-id: CLS, FCP, LCP and TTFB sent, no INP (${names})`, v && v.metrics);
    ok(v && v.nt && v.res.length > 0, 'no-interaction-id: navigation entry and resources sent', v && { nt: v.nt, res: v.res.length });
    ok(errors.length === 0, 'no-interaction-id: no page errors', errors);
    await ctx.close();
  },

  async sampled_out() {
    // data-sample="0" only exists in harness mode (the real proxy takes --sample)
    const { ctx, page } = await newPage(false);
    const before = (await getJSON('/__test/beacons')).length;
    await page.route('**/*', async (route) => {
      // only documents are rewritten; the rest goes through the browser's own network stack
      if (route.request().resourceType() !== 'document') return route.continue();
      const r = await route.fetch();
      const type = r.headers()['content-type'] || '';
      if (!type.startsWith('text/html')) return route.fulfill({ response: r });
      const body = (await r.text()).replace('data-vid=', 'data-sample="0" data-vid=');
      return route.fulfill({ response: r, body });
    });
    await page.goto(base + '/', { waitUntil: 'load' });
    await sleep(1500);
    await leave(page);
    ok((await getJSON('/__test/beacons')).length === before, 'sample: data-sample="0" sends nothing');
    await ctx.close();
  },
};

// The served size of the beacon. The build embeds web/beacon.js without its leading block
// comment (web/asset_strip.c) and precompresses it (brotli q11, gzip -9). Through a proxy the
// test counts the bytes it sends for each Accept-Encoding; without one it compresses the
// source minus that comment the same way.
{
  const src = readFileSync(new URL('../../web/beacon.js', import.meta.url));
  const end = src.indexOf('*/', 2);
  const body = src[0] === 0x2f && src[1] === 0x2a && end > 0 && src[end + 2] === 0x0a ? src.subarray(end + 3) : src;
  const served = (enc) => new Promise((resolve, reject) => {
    http.get(`${base}/__vitals/beacon.js?v=size`, { headers: { 'accept-encoding': enc } }, (r) => {
      const parts = [];
      r.on('data', (c) => parts.push(c));
      r.on('end', () => resolve({ enc: r.headers['content-encoding'] || 'identity', body: Buffer.concat(parts) }));
    }).on('error', reject);
  });
  let raw = body.length;
  let gz = zlib.gzipSync(body, { level: 9 }).length;
  let br = zlib.brotliCompressSync(body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  if (viaProxy) {
    const [id, g, b] = await Promise.all([served('identity'), served('gzip'), served('br')]);
    ok(id.enc === 'identity' && id.body.equals(body), `the proxy serves web/beacon.js minus its leading comment (${id.body.length} bytes)`);
    ok(g.enc === 'gzip' && b.enc === 'br', `the proxy serves beacon.js precompressed (${g.enc}, ${b.enc})`);
    [raw, gz, br] = [id.body.length, g.body.length, b.body.length];
  }
  console.log(`# beacon.js as served: ${raw} bytes raw, ${gz} gzip -9, ${br} brotli q11 (source ${src.length} bytes)`);
  ok(br <= 4000, `beacon.js is at most 4,000 bytes brotli (${br})`);
}

const t0 = Date.now();
for (const [name, fn] of Object.entries(tests)) {
  if (only && name !== only) continue;
  try {
    await fn();
  } catch (e) {
    ok(false, `${name}: threw ${e.message.split('\n')[0]}`);
  }
}
await browser.close();
// TAP_STATE=file: more TAP lines follow (run.sh prints the plan): leave the count there
if (process.env.TAP_STATE) writeFileSync(process.env.TAP_STATE, String(n));
else console.log(`1..${n}`);
console.log(`# ${n - failed}/${n} passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
