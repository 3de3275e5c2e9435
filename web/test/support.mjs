// Shared helpers for the browser tests: the native harness (relay + lnd-sim + node), a
// static file server for the repo, and Chromium via playwright-core.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(import.meta.dirname, '../..');
/** Cargo's target dir: CARGO_TARGET_DIR (as .ci/run sets it) or the repo's target/. */
export const TARGET = process.env.CARGO_TARGET_DIR
  ? path.resolve(process.env.CARGO_TARGET_DIR)
  : path.join(ROOT, 'target');

/**
 * Starts crates/lnc-wasm/examples/web_harness (built by .ci/run / `cargo build -p lnc-wasm
 * --example web_harness`; override with LNC_WEB_HARNESS). Resolves with its ready line.
 */
export async function startHarness(env = {}) {
  const bin = process.env.LNC_WEB_HARNESS ?? path.join(TARGET, 'debug/examples/web_harness');
  const child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const lines = createInterface({ input: child.stdout });
  const events = [];
  const waiters = [];
  let info;
  let readyResolve;
  const ready = new Promise((resolve, reject) => {
    readyResolve = resolve;
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`web_harness exited early (code ${code})`)));
  });
  lines.on('line', (line) => {
    let v;
    try {
      v = JSON.parse(line);
    } catch {
      return;
    }
    if (!info && v.mailbox) {
      info = v;
      readyResolve(v);
      return;
    }
    events.push(v);
    for (const w of [...waiters]) {
      if (w.pred(v)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(v);
      }
    }
  });
  const timer = setTimeout(() => child.kill(), 120_000);
  let notReady;
  await Promise.race([ready, new Promise((_, rej) => (notReady = setTimeout(() => rej(new Error('web_harness not ready in 60 s')), 60_000)))]);
  // Neither timer may keep the test process alive once the tests are done.
  clearTimeout(notReady);
  clearTimeout(timer);
  return {
    info,
    events,
    send(cmd) {
      child.stdin.write(cmd + '\n');
    },
    /** Resolves with the first event (past or future) matching `pred`, or rejects after `ms`. */
    waitEvent(pred, ms = 30_000) {
      const past = events.find(pred);
      if (past) return Promise.resolve(past);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.push(w);
        setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) {
            waiters.splice(i, 1);
            reject(new Error('harness event not seen in time'));
          }
        }, ms).unref();
      });
    },
    stop() {
      child.stdin.end();
      child.kill();
    },
  };
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.json': 'application/json' };

/** Serves on 127.0.0.1:0 the file `fileFor(urlPath)` names (404 when it names none). */
async function serveWith(fileFor) {
  const server = createServer(async (req, res) => {
    const file = fileFor(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (!file) return res.writeHead(404).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

/** Serves `root` read-only on 127.0.0.1:0 (only files under web/ and examples/). */
export function serveStatic(root = ROOT) {
  return serveWith((pathname) => {
    const rel = path.normalize(pathname).replace(/^\/+/, '');
    const allowed = (rel.startsWith('web/') || rel.startsWith('examples/')) && !rel.includes('..');
    return allowed ? path.join(root, rel) : null;
  });
}

/** Debian's chromium, headless, with nothing talking to Google. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    // Playwright gives every launch a fresh temporary --user-data-dir.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Records every WebSocket the page opens (window.__ws), to count relay attempts. */
export function countSockets() {
  const Orig = window.WebSocket;
  window.__ws = [];
  window.WebSocket = class extends Orig {
    constructor(...args) {
      super(...args);
      window.__ws.push(this);
    }
  };
}

/**
 * Runs the `lnc` CLI (target/debug/lnc, or LNC_BIN) with a private LNC_HOME; resolves with
 * { code, stdout, stderr }. Killed after `ms`.
 */
export function runLnc(args, { input = '', env = {}, ms = 60_000 } = {}) {
  const bin = process.env.LNC_BIN ?? path.join(TARGET, 'debug/lnc');
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill(), ms);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/**
 * Starts `bin args` with both output streams read line by line (ANSI colours stripped):
 * `waitLine(pred)` resolves with the first line, from the start, that `pred` accepts.
 */
export function startProc(bin, args, env = {}) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', ...env } });
  const lines = [];
  const waiters = new Set();
  let exited = null;
  for (const out of [child.stdout, child.stderr]) {
    createInterface({ input: out }).on('line', (raw) => {
      const l = raw.replace(/\x1b\[[0-9;]*m/g, '');
      lines.push(l);
      for (const w of [...waiters]) w.check();
    });
  }
  child.once('exit', (code) => {
    exited = code;
    for (const w of [...waiters]) w.fail(new Error(`${bin} exited (${code}); output: ${lines.slice(-20).join(' | ')}`));
  });
  return {
    lines,
    waitLine(pred, ms = 60_000) {
      return new Promise((resolve, reject) => {
        const w = {
          check: () => {
            const l = lines.find(pred);
            if (l === undefined) return;
            waiters.delete(w);
            resolve(l);
          },
          fail: (e) => {
            waiters.delete(w);
            reject(e);
          },
        };
        waiters.add(w);
        w.check();
        if (exited !== null) w.fail(new Error(`${bin} exited (${exited})`));
        setTimeout(() => w.fail(new Error(`${bin}: no awaited line within ${ms} ms; output: ${lines.slice(-20).join(' | ')}`)), ms).unref();
      });
    },
    stop() {
      child.kill();
    },
  };
}

/** A free loopback TCP port (for programs that need one named up front). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Where interop/build.sh puts the Go LNC stack's programs (as the Rust tests find them). */
export const GOBIN = process.env.LNC_GOBIN ?? path.join(os.homedir(), '.cache/lnc-rs/gobin');

/** `key=value` / `key="quoted"` pairs of a Go harness line. */
export function fields(line) {
  const kv = {};
  for (const m of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) kv[m[1]] = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2];
  return kv;
}

/**
 * Starts a Go harness program from GOBIN; its stdout lines are events to wait on
 * (`READY …`, `PAIRED`, `STATUS status=idle`). Killed by `stop()`.
 */
export function startGo(program, args) {
  const child = spawn(path.join(GOBIN, program), args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = [];
  let exited = null;
  createInterface({ input: child.stdout }).on('line', (l) => {
    lines.push(l);
    for (const w of [...waiters]) if (w.check()) waiters.splice(waiters.indexOf(w), 1);
  });
  child.once('exit', (code) => {
    exited = code;
    for (const w of [...waiters]) w.fail(new Error(`${program} exited (${code}); stdout: ${lines.join(' | ')}`));
  });
  return {
    lines,
    /** Resolves with the first line at index >= `from` starting with `prefix`. */
    waitLine(prefix, { from = 0, ms = 60_000 } = {}) {
      return new Promise((resolve, reject) => {
        const w = {
          check: () => {
            const l = lines.slice(from).find((x) => x.startsWith(prefix));
            if (l !== undefined) resolve(l);
            return l !== undefined;
          },
          fail: reject,
        };
        if (w.check()) return;
        if (exited !== null) return reject(new Error(`${program} exited (${exited}) before "${prefix}"`));
        waiters.push(w);
        setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) {
            waiters.splice(i, 1);
            reject(new Error(`${program}: no "${prefix}" within ${ms} ms; stdout: ${lines.join(' | ')}`));
          }
        }, ms).unref();
      });
    },
    stop() {
      child.kill();
    },
  };
}

/** Serves exactly `files` ({ '/url': '/abs/path' }) on 127.0.0.1:0. */
export function serveFiles(files) {
  return serveWith((pathname) => files[pathname] ?? null);
}
