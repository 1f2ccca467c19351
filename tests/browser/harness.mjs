// Test front server for the browser tests: a small HTTP reverse proxy in front of either the
// Next.js app (--inject: it plays the proxy's part — injects the beacon tag into HTML, serves
// web/beacon.js, answers beacon POSTs with 204) or the real vitals-proxy (pure pass-through).
// In both modes it records every body POSTed to /__vitals/beacon and to /__test/ref (the
// reference library's reports, never forwarded) and returns them at GET /__test/beacons and
// GET /__test/ref. Test-only; never shipped.
//
// usage: node harness.mjs --listen PORT --upstream http://127.0.0.1:PORT [--inject] [--sample X]
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const port = Number(opt('--listen', '0'));
const upstream = new URL(opt('--upstream', 'http://127.0.0.1:3000'));
const inject = args.includes('--inject');
const sample = opt('--sample', null);
const beaconPath = new URL('../../web/beacon.js', import.meta.url);
const MAX_BODY = 1 << 20;

const beacons = []; // {t, status, body, len}
const refs = [];
// POST /__test/head: a script the harness then puts first in the <head> of every page under
// /pre/ (the reference library for prerendered pages, which no DevTools init script reaches)
let headScript = '';
const headPath = (path) => Boolean(headScript) && path.startsWith('/pre/');

const readBody = (req) =>
  new Promise((resolve, reject) => {
    const parts = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
      } else parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });

const forward = (req, res, body) => {
  const headers = { ...req.headers };
  const edit = inject || headPath(req.url);
  if (edit) delete headers['accept-encoding']; // HTML arrives as identity: easy to edit
  const up = http.request(
    { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
    (ur) => {
      const type = ur.headers['content-type'] || '';
      if (!edit || !type.startsWith('text/html') || req.method !== 'GET') {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
        return;
      }
      const h = { ...ur.headers };
      delete h['content-length'];
      delete h.etag;
      res.writeHead(ur.statusCode, h);
      const vid = randomBytes(12).toString('hex');
      // like the proxy: a script nonce in the page's CSP is copied onto the tag
      const nonce = /'nonce-([^']+)'/.exec(ur.headers['content-security-policy'] || '');
      const tag = (headPath(req.url) ? `<script>${headScript}</script>` : '') + (!inject ? ''
        : `<script src="/__vitals/beacon.js?v=test" data-vid="${vid}"${nonce ? ` nonce="${nonce[1]}"` : ''}${
          sample != null ? ` data-sample="${sample}"` : ''} async></script>`);
      let pending = '';
      let done = false;
      ur.setEncoding('utf8');
      ur.on('data', (chunk) => {
        if (done) return res.write(chunk);
        pending += chunk;
        const m = /<head[^>]*>/i.exec(pending);
        if (m) {
          const at = m.index + m[0].length;
          res.write(pending.slice(0, at) + tag + pending.slice(at));
          done = true;
          pending = '';
        } else if (pending.length > 65536) {
          res.write(pending);
          done = true;
        }
      });
      ur.on('end', () => res.end(pending));
    },
  );
  up.on('error', (e) => {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`upstream error: ${e.message}\n`);
  });
  up.end(body);
};

const server = http.createServer(async (req, res) => {
  const path = req.url.split('?')[0];
  try {
    if (req.method === 'GET' && (path === '/__test/beacons' || path === '/__test/ref')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(path === '/__test/ref' ? refs : beacons));
      return;
    }
    if (req.method === 'POST' && path === '/__test/head') {
      headScript = (await readBody(req)).toString('utf8');
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && path === '/__test/ref') {
      refs.push(JSON.parse((await readBody(req)).toString('utf8')));
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && path === '/__vitals/beacon') {
      const body = await readBody(req);
      const rec = { t: Date.now(), len: body.length, type: req.headers['content-type'], body: body.toString('utf8') };
      beacons.push(rec);
      if (inject) {
        rec.status = 204;
        res.writeHead(204).end();
        return;
      }
      // tee: forward to the real proxy and record its answer
      const headers = { ...req.headers, 'content-length': String(body.length) };
      const up = http.request(
        { host: upstream.hostname, port: upstream.port, method: 'POST', path: req.url, headers },
        async (ur) => {
          rec.status = ur.statusCode;
          rec.reply = (await readBody(ur)).toString('utf8');
          res.writeHead(ur.statusCode, ur.headers);
          res.end(rec.reply);
        },
      );
      up.on('error', (e) => {
        rec.status = 502;
        res.writeHead(502).end(e.message);
      });
      up.end(body);
      return;
    }
    if (inject && req.method === 'GET' && path === '/__vitals/beacon.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      res.end(readFileSync(beaconPath));
      return;
    }
    const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readBody(req);
    forward(req, res, body);
  } catch (e) {
    if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`${e.message}\n`);
  }
});
// Upgrade requests (the dev server's HMR WebSocket) are tunnelled byte for byte.
server.on('upgrade', (req, sock, head) => {
  const up = net.connect(Number(upstream.port), upstream.hostname, () => {
    up.write(`${req.method} ${req.url} HTTP/1.1\r\n`);
    for (let i = 0; i < req.rawHeaders.length; i += 2) up.write(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`);
    up.write('\r\n');
    up.write(head);
    up.pipe(sock);
    sock.pipe(up);
  });
  up.on('error', () => sock.destroy());
  sock.on('error', () => up.destroy());
});
server.listen(port, '127.0.0.1', () => {
  console.log(`harness listening on ${server.address().port} (${inject ? 'inject' : 'tee'} -> ${upstream.href})`);
});
