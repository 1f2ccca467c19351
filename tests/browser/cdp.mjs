// A minimal Chrome DevTools Protocol client over --remote-debugging-pipe, for the one test
// playwright-core cannot drive: prerendering. Chromium refuses to prerender while a DevTools
// session is attached to the page without tab-target support (final status
// "PrerenderingDisabledByDevTools"), and playwright attaches to pages directly. Here the
// browser session auto-attaches to tab targets only, and each tab session then attaches to its
// pages (the prerendered page arrives as a page target of subtype "prerender"). Test-only.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// launch(executablePath, args) -> {send(method, params, sessionId), on(fn), close()}
export const launch = async (exe, args) => {
  const dir = mkdtempSync(join(tmpdir(), 'vp-cdp-'));
  const proc = spawn(exe, [...args, '--remote-debugging-pipe', `--user-data-dir=${dir}`, 'about:blank'],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'], detached: true });
  let buf = '';
  let id = 0;
  const pending = new Map();
  const listeners = [];
  proc.stdio[4].on('data', (d) => {
    buf += d.toString('utf8');
    for (let i; (i = buf.indexOf('\0')) >= 0; buf = buf.slice(i + 1)) {
      const msg = JSON.parse(buf.slice(0, i));
      const p = msg.id !== undefined && pending.get(msg.id);
      if (p) {
        pending.delete(msg.id);
        if (msg.error) p[1](new Error(`${p[2]}: ${msg.error.message}`));
        else p[0](msg.result);
      } else for (const f of listeners) f(msg);
    }
  });
  const closed = new Promise((r) => proc.on('exit', r));
  // Its own process group (so close() reaches the helpers too); never outlives this process.
  process.once('exit', () => { try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } });
  return {
    send: (method, params = {}, sessionId) => new Promise((resolve, reject) => {
      const m = { id: ++id, method, params, ...(sessionId ? { sessionId } : {}) };
      pending.set(m.id, [resolve, reject, method]);
      proc.stdio[3].write(JSON.stringify(m) + '\0');
    }),
    on: (f) => listeners.push(f),
    close: async () => {
      // Chromium's helpers (renderers, crashpad) may still write into the profile after the
      // browser exits: end the whole process group, then remove the profile with retries.
      const group = (sig) => { try { process.kill(-proc.pid, sig); } catch { /* gone */ } };
      group('SIGTERM');
      await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
      group('SIGKILL');
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
      rmSync(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    },
  };
};
