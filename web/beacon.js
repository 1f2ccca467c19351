/* vitals-proxy beacon: Web Vitals (web-vitals v6 semantics, see beacon-spec.md) with attribution,
 * the resource waterfall, soft navigations and bfcache restores; wire format in beacon-protocol.md.
 * A hard navigation, a History API path change or a bfcache restore is a "view"; an entry belongs
 * to the newest view started at or before its startTime. A flush sends only changed metrics and
 * unsent resources (never twice), in POSTs under 48 KiB. Compact by design: served as is. */
((w, d, P, N, M) => {
  let tag = d.currentScript || d.querySelector('script[src*="/__vitals/beacon.js"]'),
    ds = tag && tag.dataset, smp = ds && parseFloat(ds.sample), INF = 1 / 0, max = M.max, min = M.min,
    sup = w.PerformanceObserver && PerformanceObserver.supportedEntryTypes || [], enc = new TextEncoder(),
    TH = {LCP: [2500, 4000], CLS: [.1, .25], INP: [200, 500], FCP: [1800, 3000], TTFB: [800, 1800]},
    V = [], A = 0, hid = INF, H, EP, lcpDone, lastIn = -INF, lcp, cls, inp, ie = [], lf = [];
  if (!tag || !sup[0] || w.__vpb || smp >= 0 && M.random() >= smp) return; // unsampled: measure nothing
  w.__vpb = EP = new URL('/__vitals/beacon', tag.src).href;

  let now = () => P.now(),
    on = (t, f, o = w) => o.addEventListener(t, f, {capture: true, passive: true}),
    hex = () => [...crypto.getRandomValues(new Uint8Array(12))].map(b => (b | 256).toString(16).slice(1)).join(''),
    mid = () => `v1-${Date.now()}-${M.floor(M.random() * 9e12) + 1e12}`,
    key = () => location.pathname + (ds.keepQuery != null ? location.search : ''),
    hidden = () => d.visibilityState == 'hidden',
    // f once, when idle (1 s cap) or as soon as the page is hidden
    idle = (f, done) => {
      let g = () => done || (done = 1, f());
      hidden() ? g() : ((w.requestIdleCallback || setTimeout)(g, {timeout: 1e3}), on('visibilitychange', g));
    },
    // buffered observer, callback deferred a microtask; take() drains it synchronously
    obs = (type, cb, o) => {
      try {
        if (sup.includes(type)) {
          let ob = new PerformanceObserver(l => queueMicrotask(() => cb(l.getEntries())));
          ob.observe({type, buffered: true, ...o});
          return ob.cb = cb, ob;
        }
      } catch (e) {}
    },
    take = ob => ob && ob.cb(ob.takeRecords()),
    navE = (e = P.getEntriesByType('navigation')[0]) => e && e.responseStart > 0 && e.responseStart < now() && e,
    ttfb0 = (e = navE()) => e ? max(e.responseStart - A, 0) : 0,
    loadState = (t, e = navE()) => d.readyState == 'loading' || e && t < e.domInteractive ? 'loading'
      : e && (!e.domContentLoadedEventStart || t < e.domContentLoadedEventStart) ? 'dom-interactive'
      : e && (!e.domComplete || t < e.domComplete) ? 'dom-content-loaded' : 'complete',
    // #id ends the walk, else tag + sorted classes, joined by '>', at most 100 chars
    sel = (n, s = '') => {
      try {
        for (; n && n.nodeType != 9; n = n.parentNode) {
          let p = n.id ? '#' + n.id : [n.nodeType == 1 ? n.nodeName.toLowerCase()
            : n.nodeName.toUpperCase().replace(/^#/, ''), ...[...n.classList || []].sort()].join('.');
          if (s.length + p.length > 99) return s || p;
          s = s ? p + '>' + s : p;
          if (n.id) break;
        }
      } catch (e) {}
      return s;
    },
    view = (vid, nav, t, pvid) => {
      let v = {vid, nav, t, pvid, url: key(), m: {}, ri: 0, res: [], cls: 0, sv: 0, se: [], il: [], im: new Map(),
        ic: P.interactionCount || 0};
      V.push(v) > 20 && V.shift();
      return v;
    },
    vat = t => V.findLast(v => v.t <= t) || V[0],
    // a metric value; a() gives its attribution when sent; f = final before hide
    set = (v, n, val, a, f) => Object.assign(v.m[n] || (v.m[n] = {n, id: mid()}), {v: val, a, f}),
    rel = u => (u.startsWith(location.origin + '/') ? u.slice(location.origin.length) : u).slice(0, 2048),
    r1 = x => M.round(x * 10) / 10,
    renc = (e, t0) => {
      let o = {u: rel(e.name), i: e.initiatorType, d: r1(e.duration), ts: e.transferSize, eb: e.encodedBodySize,
        db: e.decodedBodySize, p: e.nextHopProtocol, rb: e.renderBlockingStatus, st: e.responseStatus,
        dt: e.deliveryType, ty: e.type, rc: e.redirectCount};
      ('s startTime rds redirectStart rde redirectEnd fs fetchStart dls domainLookupStart dle domainLookupEnd ' +
        'cs connectStart ce connectEnd scs secureConnectionStart rqs requestStart rps responseStart rpe responseEnd ' +
        'di domInteractive dcl domContentLoadedEventStart dcle domContentLoadedEventEnd dc domComplete ' +
        'ls loadEventStart le loadEventEnd').replace(/(\w+) (\w+)/g, (_, k, f) => { e[f] > 0 && (o[k] = max(r1(e[f] - t0), 0)); });
      if (e.serverTiming && e.serverTiming[0])
        o.sv = e.serverTiming.slice(0, 16).map(x => ({n: x.name.slice(0, 200), d: max(x.duration, 0), de: x.description.slice(0, 200)}));
      return o;
    },
    post = b => {
      try { if (N.sendBeacon(EP, b)) return; } catch (e) {}
      fetch(EP, {method: 'POST', body: b, keepalive: true}).catch(() => fetch(EP, {method: 'POST', body: b}).catch(() => 0));
    },
    ctx = (v, c = N.connection, iw = innerWidth) => ({v: 1, vid: v.vid, pvid: v.pvid, url: v.url, nav: v.nav,
      t0: P.timeOrigin + v.t, dev: iw < 768 ? 'mobile' : iw < 1024 ? 'tablet' : 'desktop',
      ect: c && c.effectiveType || undefined, mem: N.deviceMemory}),
    len = o => enc.encode(JSON.stringify(o)).length,
    // sends what changed in view v: every metric (all) or only the final ones
    flush = (v, all) => {
      let o = ctx(v), q = [], e, m = [], size, out = () => {
        let s = JSON.stringify(o);
        if (q[0]) s = s.slice(0, -1) + ',"ri":' + o.ri + ',"res":[' + q + ']}';
        if (o.m || o.nt || q[0]) post(s);
        o = ctx(v); q = [];
        return len(o) + 32;
      };
      for (let x of Object.values(v.m)) if ((all || x.f) && x.v >= 0 && x.v !== x.s) {
        let t = TH[x.n], r = {n: x.n, id: x.id, v: x.v, d: x.v - (x.s || 0), r: x.v > t[1] ? 'poor' : x.v > t[0] ? 'needs-improvement' : 'good'};
        try { r.a = x.a && x.a(); } catch (err) {}
        x.s = x.v; m.push(r);
      }
      if (m[0]) o.m = m;
      if (v == H && !v.nt && (e = navE()) && (all || e.loadEventEnd)) o.nt = renc(e, 0), v.nt = 1;
      size = len(o) + 32; o.ri = v.ri;
      for (; v.ri < v.res.length; v.ri++) {
        let s = JSON.stringify(renc(v.res[v.ri], v.t)), n = enc.encode(s).length + 1;
        if (size + n > 49152 && (q[0] || o.m || o.nt)) size = out(), o.ri = v.ri;
        q.push(s); size += n;
      }
      out();
    },
    clsSet = v => v.m.CLS && set(v, 'CLS', v.cls, v.m.CLS.a),
    inpSet = (v, n = (P.interactionCount || 0) - v.ic, x = v.il[min(v.il.length - 1, M.floor(n / 50))]) =>
      x ? set(v, 'INP', x.l, () => {
        let f = x.e[0], rt = f.startTime + f.duration, g = ie.filter(y => M.abs(y.startTime + y.duration - rt) <= 8),
          ps = max(f.startTime, min(...g.map(y => y.processingStart))), np = max(rt, ps),
          pe = min(np, max(...g.map(y => y.processingEnd))), sc = {};
        for (let l of lf) if (l.startTime < pe && l.startTime + l.duration > f.startTime)
          for (let s of l.scripts || []) if (s.duration > (sc.duration || 0)) sc = s;
        return {target: x.s, type: f.name.startsWith('key') ? 'keyboard' : 'pointer', time: f.startTime,
          inputDelay: ps - f.startTime, processing: pe - ps, presentation: np - pe, loadState: loadState(f.startTime),
          scriptUrl: sc.sourceURL && rel(sc.sourceURL), scriptDuration: sc.duration};
      }) : n && v != H && set(v, 'INP', 8),
    lcpFin = () => {
      if (lcpDone) return;
      take(lcp); lcpDone = 1;
      lcp && lcp.disconnect();
      if (H.m.LCP) H.m.LCP.f = 1;
    },
    drain = () => { lcpFin(); take(cls); take(inp); },
    hide = () => { drain(); V.forEach(v => { clsSet(v); inpSet(v); flush(v, 1); }); },
    // a path change through the History API starts a soft-navigation view at the user input that
    // led to it (within 3 s), so the route's fetches and that interaction belong to the new view
    soft = (c = V[V.length - 1]) => {
      if (key() == c.url) return;
      drain();
      let t = now();
      set(view(hex(), 'soft-navigation', t - lastIn < 3e3 && lastIn > c.t ? lastIn : t, H.vid), 'CLS', 0);
      clsSet(c); inpSet(c); flush(c, 1);
    },
    start = (ne = navE()) => {
      A = ne && ne.activationStart || 0;
      hid = (!d.prerendering && P.getEntriesByType('visibility-state').find(e => e.name == 'hidden' && e.startTime >= A) || {}).startTime;
      if (hid == null) hid = hidden() && !d.prerendering ? 0 : INF;

      // FCP; CLS is observed only once FCP was reported (as CrUX does)
      let fcp = obs('paint', es => es.forEach(e => {
        if (e.name != 'first-contentful-paint') return;
        fcp.disconnect();
        if (e.startTime >= hid) return;
        let v = max(e.startTime - A, 0), t = ttfb0();
        set(H, 'FCP', v, () => ({ttfb: t, firstByteToFCP: v - t, loadState: loadState(e.startTime)}), 1);
        set(H, 'CLS', 0);
        // session windows: gap < 1 s, span < 5 s; CLS = the largest window of the view
        cls = obs('layout-shift', es2 => es2.forEach(s => {
          if (s.hadRecentInput) return;
          let v2 = vat(s.startTime), f = v2.se[0], l = v2.se[v2.se.length - 1];
          if (v2.sv && s.startTime - l.startTime < 1e3 && s.startTime - f.startTime < 5e3) v2.sv += s.value, v2.se.push(s);
          else v2.sv = s.value, v2.se = [s];
          if (v2.sv > v2.cls) {
            let ce = v2.se;
            set(v2, 'CLS', v2.cls = v2.sv, () => {
              let L = ce.reduce((a, b) => a.value > b.value ? a : b),
                src = L.sources.find(x => x.node && x.node.nodeType == 1) || L.sources[0];
              return {target: src && sel(src.node) || undefined, time: L.startTime, value: L.value, loadState: loadState(L.startTime)};
            });
          }
        }));
      }));

      // LCP: the last entry of each batch, final at the first trusted key/click or at hide
      lcp = obs('largest-contentful-paint', es => {
        let e = es[es.length - 1], lt;
        if (lcpDone || !e || e.startTime >= hid) return;
        lt = e.element ? sel(e.element) : e.id ? '#' + e.id : undefined;
        set(H, 'LCP', max(e.startTime - A, 0), () => {
          let T = ttfb0(), val = H.m.LCP.v, ok = r => r.name == e.url && (r.requestStart || r.startTime) <= e.startTime,
            r = e.url && (H.res.findLast(ok) || P.getEntriesByType('resource').findLast(ok)),
            rs = max(T, r ? (r.requestStart || r.startTime) - A : 0), re = min(val, max(rs, r ? r.responseEnd - A : 0));
          return {target: lt, url: e.url && rel(e.url), ttfb: T, loadDelay: rs - T, loadDuration: re - rs, renderDelay: val - re};
        });
      });
      for (let t of ['keydown', 'click', 'visibilitychange']) on(t, e => e.isTrusted && idle(lcpFin));

      // INP: Event Timing entries grouped by interactionId; the 10 longest kept per view
      inp = w.PerformanceEventTiming && 'interactionId' in PerformanceEventTiming.prototype &&
        obs('event', es => es.sort((a, b) => a.startTime + a.duration - b.startTime - b.duration).forEach(e => {
          ie.push(e) > 100 && ie.shift();
          let v = vat(e.startTime), L = v.il, x = v.im.get(e.interactionId), tg;
          if (e.interactionId && (x || !L[9] || e.duration > L[9].l)) {
            if (!x) v.im.set(e.interactionId, x = {id: e.interactionId, l: e.duration, e: [e]}), L.push(x);
            else if (e.duration > x.l) x.e = [e], x.l = e.duration;
            else if (e.duration == x.l && e.startTime == x.e[0].startTime) x.e.push(e);
            L.sort((a, b) => b.l - a.l);
            L.splice(10).forEach(y => v.im.delete(y.id));
            tg = x.e.find(y => y.target);
            x.s = x.s || (tg ? sel(tg.target) : (x.e.find(y => y.targetSelector) || {}).targetSelector);
          }
        }), {durationThreshold: 40});
      inp && inp.observe({type: 'first-input', buffered: true});
      obs('long-animation-frame', es => { lf.push(...es); lf.splice(0, lf.length - 20); });

      // TTFB once the navigation entry is complete; the waterfall soon after load
      let loaded = () => setTimeout(() => {
        let e = navE(), c = x => max(x - A, 0), T, ws, dl, cs, ce;
        if (e) T = c(e.responseStart), ws = c(e.workerStart || e.fetchStart), dl = c(e.domainLookupStart),
          cs = c(e.connectStart), ce = c(e.connectEnd),
          set(H, 'TTFB', T, () => ({waiting: ws, cache: dl - ws, dns: cs - dl, connection: ce - cs, request: T - ce}), 1);
        setTimeout(() => idle(() => flush(H)), 1e3);
      });
      d.readyState == 'complete' ? loaded() : on('load', loaded);

      on('visibilitychange', e => hidden() && (hid == INF && (hid = e.timeStamp), hide()));
      on('pagehide', hide);
      // bfcache restore: a new view; FCP/LCP = restore to the next frame
      on('pageshow', e => {
        if (!e.persisted) return;
        let v = view(hex(), 'back-forward-cache', e.timeStamp, H.vid);
        setTimeout(() => hid = hidden() ? 0 : INF);
        set(v, 'CLS', 0); set(v, 'TTFB', 0, 0, 1);
        requestAnimationFrame(() => requestAnimationFrame(() => {
          let x = now() - e.timeStamp;
          set(v, 'FCP', x, 0, 1); set(v, 'LCP', x, 0, 1);
        }));
      });
      for (let f of ['pushState', 'replaceState']) {
        let o = history[f];
        history[f] = function (...a) { let r = o.apply(this, a); try { soft(); } catch (e) {} return r; };
      }
      on('popstate', () => soft());
      for (let t of ['pointerdown', 'keydown']) on(t, e => { if (e.isTrusted) lastIn = e.timeStamp; });
    };

  // resources are observed from the start, metrics once a prerendered page is activated
  try { P.setResourceTimingBufferSize(1e3); } catch (e) {}
  let n0 = P.getEntriesByType('navigation')[0] || {};
  H = view(/^[\w-]{8,64}$/.test(ds.vid || '') ? ds.vid : hex(), d.prerendering || n0.activationStart > 0 ? 'prerender'
    : d.wasDiscarded ? 'restore' : (n0.type || 'navigate').replace('_', '-'), 0);
  obs('resource', es => es.forEach(e => { let v = vat(e.startTime); v.res.length < 2e3 && v.res.push(e); }));
  d.prerendering ? on('prerenderingchange', () => start(), d) : start();
})(window, document, performance, navigator, Math);
