/* vitals-proxy beacon: LCP, CLS, INP, FCP, TTFB with attribution, the resource waterfall, soft
 * navigations and bfcache restores, POSTed to /__vitals/beacon (wire format:
 * web/beacon-protocol.md; metric semantics: beacon-spec.md, i.e. those of Chrome field data).
 * Invariants: every hard navigation, soft navigation (history change of path) and bfcache
 * restore is a "view"; an entry belongs to the newest view that started at or before its
 * startTime. A flush sends only what changed since the previous one (metrics whose value
 * changed, resources not yet sent), so repeated hide/pagehide events never send data twice.
 * Each POST stays under 48 KiB (resources are chunked, `ri` = index of the first one).
 * Plain ES2020, no build step; every browser API is feature-checked and errors are swallowed. */
((w, d, P, N, M) => {
  const tag = d.currentScript || d.querySelector('script[src*="/__vitals/beacon.js"]');
  if (!tag || w.__vpb || !w.PerformanceObserver) return;
  w.__vpb = 1;
  const ds = tag.dataset, smp = parseFloat(ds.sample);
  if (smp >= 0 && M.random() >= smp) return; /* unsampled view: measure nothing */

  const EP = new URL('/__vitals/beacon', tag.src || location.href).href;
  const LIM = 49152, enc = new TextEncoder(), INF = 1 / 0, max = M.max;
  const TH = {LCP: [2500, 4000], CLS: [0.1, 0.25], INP: [200, 500], FCP: [1800, 3000], TTFB: [800, 1800]};
  const sup = PerformanceObserver.supportedEntryTypes || [];
  const now = () => P.now();
  const on = (t, f, o = w) => o.addEventListener(t, f, {capture: true, passive: true});
  const hex = n => [...crypto.getRandomValues(new Uint8Array(n))].map(b => (b | 256).toString(16).slice(1)).join('');
  const mid = () => `v1-${Date.now()}-${M.floor(M.random() * 9e12) + 1e12}`;
  const key = () => location.pathname + (ds.keepQuery != null ? location.search : '');
  const hidden = () => d.visibilityState == 'hidden';
  const raf2 = f => requestAnimationFrame(() => requestAnimationFrame(f));
  /* Runs f once, in an idle callback (1 s cap) or at once when the page is/gets hidden. */
  const idle = f => {
    let done;
    const g = () => done || (done = 1, f());
    hidden() ? g() : ((w.requestIdleCallback || setTimeout)(g, {timeout: 1000}), on('visibilitychange', g));
  };
  /* One buffered observer per type; callbacks deferred a microtask, drained by take(). */
  const obs = (type, cb, o) => {
    if (!sup.includes(type)) return;
    try {
      const ob = new PerformanceObserver(l => queueMicrotask(() => cb(l.getEntries())));
      ob.observe({type, buffered: true, ...o});
      ob.cb = cb;
      return ob;
    } catch (e) {}
  };
  const take = ob => ob && ob.cb(ob.takeRecords());
  const navE = () => {
    const e = P.getEntriesByType('navigation')[0];
    return e && e.responseStart > 0 && e.responseStart < now() ? e : 0;
  };
  const loadState = t => {
    const e = navE();
    return d.readyState == 'loading' ? 'loading' : !e ? 'complete' : t < e.domInteractive ? 'loading'
      : !e.domContentLoadedEventStart || t < e.domContentLoadedEventStart ? 'dom-interactive'
      : !e.domComplete || t < e.domComplete ? 'dom-content-loaded' : 'complete';
  };
  /* CSS-ish selector: #id stops the walk, else tag plus sorted classes; at most 100 chars. */
  const sel = n => {
    let s = '';
    try {
      while (n && n.nodeType != 9) {
        const p = n.id ? '#' + n.id : [n.nodeType == 1 ? n.nodeName.toLowerCase()
          : n.nodeName.toUpperCase().replace(/^#/, ''), ...[...(n.classList || [])].sort()].join('.');
        if (s.length + p.length > 99) return s || p;
        s = s ? p + '>' + s : p;
        if (n.id) break;
        n = n.parentNode;
      }
    } catch (e) {}
    return s;
  };
  const ttfb0 = () => { const e = navE(); return e ? max(e.responseStart - A, 0) : 0; };

  /* ---- views ---- */
  const V = [];
  let A = 0, hid, H, lcpDone, lastIn = -INF;
  const icount = () => P.interactionCount || 0;
  const view = (vid, nav, t, pvid) => {
    const v = {vid, nav, t, pvid, url: key(), m: {}, ri: 0, res: [], cls: 0, sv: 0, se: [], ce: [],
      il: [], im: new Map(), ic: icount()};
    if (V.push(v) > 20) V.shift();
    return v;
  };
  const vat = t => V.findLast(v => v.t <= t) || V[0];
  /* Records a metric value; a is its attribution (a function: computed when sent). */
  const set = (v, n, val, a, fin) => {
    const o = v.m[n] || (v.m[n] = {n, id: mid()});
    o.v = val; o.a = a; o.f = fin;
  };

  /* ---- encoding and sending ---- */
  const rel = u => (u.startsWith(location.origin + '/') ? u.slice(location.origin.length) : u).slice(0, 2048);
  const RK = 's:startTime rds:redirectStart rde:redirectEnd fs:fetchStart dls:domainLookupStart dle:domainLookupEnd ' +
    'cs:connectStart ce:connectEnd scs:secureConnectionStart rqs:requestStart rps:responseStart rpe:responseEnd ' +
    'di:domInteractive dcl:domContentLoadedEventStart dcle:domContentLoadedEventEnd dc:domComplete ' +
    'ls:loadEventStart le:loadEventEnd';
  const r1 = x => M.round(x * 10) / 10;
  const renc = (e, t0) => {
    const o = {u: rel(e.name), i: e.initiatorType, d: r1(e.duration), ts: e.transferSize, eb: e.encodedBodySize,
      db: e.decodedBodySize, p: e.nextHopProtocol, rb: e.renderBlockingStatus, st: e.responseStatus,
      dt: e.deliveryType};
    for (const kv of RK.split(' ')) {
      const [k, f] = kv.split(':');
      if (f in e) o[k] = e[f] > 0 || k == 's' ? r1(e[f] - t0) : 0;
    }
    if (e.serverTiming && e.serverTiming.length)
      o.sv = e.serverTiming.slice(0, 16).map(x => ({n: x.name.slice(0, 64), d: x.duration, de: x.description.slice(0, 128)}));
    if (e.type) { o.ty = e.type; o.rc = e.redirectCount; }
    return o;
  };
  const post = b => {
    try { if (N.sendBeacon && N.sendBeacon(EP, b)) return; } catch (e) {}
    try {
      fetch(EP, {method: 'POST', body: b, keepalive: true})
        .catch(() => fetch(EP, {method: 'POST', body: b}).catch(() => 0));
    } catch (e) {}
  };
  const ctx = v => {
    const c = N.connection, iw = innerWidth,
      o = {v: 1, vid: v.vid, url: v.url, nav: v.nav, t0: P.timeOrigin + v.t,
        dev: iw < 768 ? 'mobile' : iw < 1024 ? 'tablet' : 'desktop'};
    if (v.pvid) o.pvid = v.pvid;
    if (c && c.effectiveType) o.ect = c.effectiveType;
    if (N.deviceMemory) o.mem = N.deviceMemory;
    return o;
  };
  /* Sends what changed in view v: all metrics (hide) or only final ones (after load). */
  const flush = (v, all) => {
    let o = ctx(v), q = [], e, has;
    const m = Object.values(v.m).filter(x => (all || x.f) && x.v >= 0 && x.v !== x.s).map(x => {
      const t = TH[x.n], r = {n: x.n, id: x.id, v: x.v, d: x.v - (x.s || 0),
        r: x.v > t[1] ? 'poor' : x.v > t[0] ? 'needs-improvement' : 'good'};
      x.s = x.v;
      try { if (x.a) r.a = x.a(); } catch (err) {}
      return r;
    });
    if (m.length) o.m = m, has = 1;
    if (v == H && !v.nt && (e = navE()) && (all || e.loadEventEnd)) o.nt = renc(e, 0), v.nt = has = 1;
    const out = () => {
      let s = JSON.stringify(o);
      if (q.length) s = s.slice(0, -1) + ',"ri":' + o.ri + ',"res":[' + q.join() + ']}';
      if (has || q.length) post(s);
      o = ctx(v); q = []; has = 0;
      return enc.encode(JSON.stringify(o)).length + 32;
    };
    let size = enc.encode(JSON.stringify(o)).length + 32;
    o.ri = v.ri;
    for (; v.ri < v.res.length; v.ri++) {
      const s = JSON.stringify(renc(v.res[v.ri], v.t)), n = enc.encode(s).length + 1;
      if (size + n > LIM && (q.length || has)) size = out(), o.ri = v.ri;
      q.push(s); size += n;
    }
    out();
  };

  /* ---- metrics ---- */
  const start = () => {
    const ne = navE();
    A = ne && ne.activationStart || 0;
    hid = (!d.prerendering && (P.getEntriesByType('visibility-state').find(e => e.name == 'hidden' && e.startTime >= A) || {}).startTime);
    if (hid == null) hid = hidden() && !d.prerendering ? 0 : INF;

    /* FCP, then CLS (CLS is observed only once FCP was reported, as in CrUX) */
    let cls;
    const fcp = obs('paint', es => es.forEach(e => {
      if (e.name != 'first-contentful-paint') return;
      fcp.disconnect();
      if (e.startTime >= hid) return;
      const v = max(e.startTime - A, 0), t = ttfb0();
      set(H, 'FCP', v, () => ({ttfb: t, firstByteToFCP: v - t, loadState: loadState(e.startTime)}), 1);
      set(H, 'CLS', 0);
      cls = obs('layout-shift', es2 => es2.forEach(s => {
        if (s.hadRecentInput) return;
        const v2 = vat(s.startTime), f = v2.se[0], l = v2.se[v2.se.length - 1];
        if (v2.sv && s.startTime - l.startTime < 1000 && s.startTime - f.startTime < 5000) v2.sv += s.value, v2.se.push(s);
        else v2.sv = s.value, v2.se = [s];
        if (v2.sv > v2.cls) {
          v2.cls = v2.sv; v2.ce = v2.se;
          set(v2, 'CLS', v2.cls, () => {
            let L;
            for (const x of v2.ce) if (!L || x.value >= L.value) L = x;
            const src = L.sources.find(x => x.node && x.node.nodeType == 1) || L.sources[0];
            return {target: src && sel(src.node) || undefined, time: L.startTime, value: L.value, loadState: loadState(L.startTime)};
          });
        }
      }));
    }));

    /* LCP: last entry of each batch; final on the first trusted key/click or when hidden */
    let le, lt;
    const lcp = obs('largest-contentful-paint', es => {
      const e = es[es.length - 1];
      if (lcpDone || !e || e.startTime >= hid) return;
      le = e; lt = e.element ? sel(e.element) : e.id ? '#' + e.id : undefined;
      set(H, 'LCP', max(e.startTime - A, 0), () => {
        const T = ttfb0(), val = H.m.LCP.v, ok = r => r.name == le.url && (r.requestStart || r.startTime) <= le.startTime;
        const r = le.url && (H.res.findLast(ok) || P.getEntriesByType('resource').findLast(ok));
        const rs = max(T, r ? (r.requestStart || r.startTime) - A : 0), re = M.min(val, max(rs, r ? r.responseEnd - A : 0));
        return {target: lt, url: le.url ? rel(le.url) : undefined, ttfb: T, loadDelay: rs - T, loadDuration: re - rs, renderDelay: val - re};
      });
    });
    const lcpFin = () => {
      if (lcpDone) return;
      take(lcp); lcpDone = 1;
      lcp && lcp.disconnect();
      if (H.m.LCP) H.m.LCP.f = 1;
    };
    for (const t of ['keydown', 'click', 'visibilitychange']) on(t, e => e.isTrusted && idle(lcpFin));

    /* INP: Event Timing grouped by interactionId, the 10 longest kept per view */
    const ie = [], lf = [];
    const inp = 'PerformanceEventTiming' in w && 'interactionId' in PerformanceEventTiming.prototype &&
      obs('event', es => es.sort((a, b) => a.startTime + a.duration - b.startTime - b.duration).forEach(e => {
        ie.push(e); ie.length > 100 && ie.shift();
        if (!e.interactionId) return;
        const v = vat(e.startTime), L = v.il;
        let x = v.im.get(e.interactionId);
        if (x || L.length < 10 || e.duration > L[9].l) {
          if (!x) v.im.set(e.interactionId, x = {id: e.interactionId, l: e.duration, e: [e]}), L.push(x);
          else if (e.duration > x.l) x.e = [e], x.l = e.duration;
          else if (e.duration == x.l && e.startTime == x.e[0].startTime) x.e.push(e);
          L.sort((a, b) => b.l - a.l);
          L.splice(10).forEach(y => v.im.delete(y.id));
          const tg = x.e.find(y => y.target);
          if (!x.s) x.s = tg ? sel(tg.target) : (x.e.find(y => y.targetSelector) || {}).targetSelector;
        }
      }), {durationThreshold: 40});
    inp && inp.observe({type: 'first-input', buffered: true});
    obs('long-animation-frame', es => { lf.push(...es); lf.splice(0, lf.length - 20); });
    const inpSet = v => {
      const n = icount() - v.ic, x = v.il[M.min(v.il.length - 1, M.floor(n / 50))];
      if (!x) return n && v != H && set(v, 'INP', 8);
      set(v, 'INP', x.l, () => {
        const f = x.e[0], rt = f.startTime + f.duration, g = ie.filter(y => M.abs(y.startTime + y.duration - rt) <= 8);
        const ps = max(f.startTime, M.min(...g.map(y => y.processingStart))), np = max(rt, ps),
          pe = M.min(np, max(...g.map(y => y.processingEnd)));
        let sc;
        for (const l of lf) if (l.startTime < pe && l.startTime + l.duration > f.startTime)
          for (const s of l.scripts || []) if (!sc || s.duration > sc.duration) sc = s;
        return {target: x.s, type: f.name.startsWith('key') ? 'keyboard' : 'pointer', time: f.startTime,
          inputDelay: ps - f.startTime, processing: pe - ps, presentation: np - pe, loadState: loadState(f.startTime),
          scriptUrl: sc ? rel(sc.sourceURL || '') || undefined : undefined, scriptDuration: sc ? sc.duration : undefined};
      });
    };

    /* TTFB once the navigation entry is complete */
    const ttfb = () => {
      const e = navE();
      if (!e) return;
      const c = x => max(x - A, 0), T = c(e.responseStart), ws = c(e.workerStart || e.fetchStart),
        dl = c(e.domainLookupStart), cs = c(e.connectStart), ce = c(e.connectEnd);
      set(H, 'TTFB', T, () => ({waiting: ws, cache: dl - ws, dns: cs - dl, connection: ce - cs, request: T - ce}), 1);
    };
    const loaded = () => setTimeout(() => { ttfb(); setTimeout(() => idle(() => flush(H)), 1000); });
    d.readyState == 'complete' ? loaded() : on('load', loaded);

    /* hide: drain every observer, finalise, send every view */
    const hide = () => {
      lcpFin(); take(cls); take(inp);
      V.forEach(v => { v.m.CLS && set(v, 'CLS', v.cls, v.m.CLS.a); inpSet(v); flush(v, 1); });
    };
    on('visibilitychange', () => {
      if (hidden()) { if (hid == INF) hid = now(); hide(); }
    });
    on('pagehide', hide);

    /* bfcache restore: a new view; paint metrics from the restore to the next frame */
    on('pageshow', e => {
      if (!e.persisted) return;
      const v = view(hex(12), 'back-forward-cache', e.timeStamp, H.vid);
      setTimeout(() => { hid = hidden() ? 0 : INF; });
      set(v, 'CLS', 0); set(v, 'TTFB', 0, 0, 1);
      raf2(() => { const x = now() - e.timeStamp; set(v, 'FCP', x, 0, 1); set(v, 'LCP', x, 0, 1); });
    });

    /* soft navigation: a path change through the History API starts a new view at the user
     * input that led to it (if within 3 s), so the route's fetches and the interaction belong to it */
    const soft = () => {
      const cur = V[V.length - 1];
      if (key() == cur.url) return;
      lcpFin(); take(cls); take(inp);
      const t = now(), s = t - lastIn < 3000 && lastIn > cur.t ? lastIn : t;
      view(hex(12), 'soft-navigation', s, H.vid).m.CLS = {n: 'CLS', id: mid(), v: 0};
      cur.m.CLS && set(cur, 'CLS', cur.cls, cur.m.CLS.a); inpSet(cur); flush(cur, 1);
    };
    for (const f of ['pushState', 'replaceState']) {
      const o = history[f];
      history[f] = function (...a) { const r = o.apply(this, a); try { soft(); } catch (e) {} return r; };
    }
    on('popstate', soft);
    for (const t of ['pointerdown', 'keydown']) on(t, e => { if (e.isTrusted) lastIn = e.timeStamp; });
  };

  /* ---- boot: resources from the start, metrics once the page is activated ---- */
  try { P.setResourceTimingBufferSize(1000); } catch (e) {}
  const ne0 = P.getEntriesByType('navigation')[0];
  const vid = /^[\w-]{8,64}$/.test(ds.vid || '') ? ds.vid : hex(12);
  H = view(vid, d.prerendering || ne0 && ne0.activationStart > 0 ? 'prerender' : d.wasDiscarded ? 'restore'
    : (ne0 && ne0.type || 'navigate').replace(/_/g, '-'), 0);
  obs('resource', es => es.forEach(e => { const v = vat(e.startTime); v.res.length < 2000 && v.res.push(e); }));
  d.prerendering ? on('prerenderingchange', start, d) : start();
})(window, document, performance, navigator, Math);
