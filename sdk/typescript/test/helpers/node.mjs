// Starts and stops `taksa dev` for the tests: the binary comes from TAKSA_BIN, each node gets a
// fresh temporary data folder and a free loopback port, and everything is killed (by pid) and
// deleted at the end, even when a test fails.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOG_LINES_MAX = 400;
const START_TIMEOUT_MS = 30_000;
const live = new Set();

// A test process that dies still takes its nodes with it.
process.on('exit', () => {
  for (const child of live) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {}
  }
});

/** The node binary: TAKSA_BIN, which must name an executable file. */
export function taksaBin() {
  const bin = process.env.TAKSA_BIN;
  if (!bin) {
    throw new Error(
      'TAKSA_BIN is not set: set it to the path of a built taksa binary (e.g. TAKSA_BIN=/path/to/target/debug/taksa npm test)',
    );
  }
  if (!existsSync(bin) || !statSync(bin).isFile()) throw new Error(`TAKSA_BIN=${bin} does not exist or is not a file`);
  return bin;
}

/** A loopback port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A new temporary folder for a node's data. */
export function tempDir(label) {
  return mkdtempSync(join(tmpdir(), `taksa-sdk-${label}-`));
}

/** `taksa bench-chain`: a dev chain of `blocks` empty finalized blocks in `dataDir`. */
export function benchChain(dataDir, blocks, blockTimeMs = 200) {
  const r = spawnSync(taksaBin(), ['bench-chain', '--data-dir', dataDir, '--blocks', String(blocks), '--block-time-ms', String(blockTimeMs)], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`taksa bench-chain failed (${r.status}): ${r.stderr}${r.stdout}`);
}

async function rpc(url, method, params = []) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

/** A running `taksa dev`; `url` is its RPC. Restart it on the same folder and port with `restart()`. */
export class DevNode {
  constructor({ dataDir, port, instant = true, blockTimeMs, extraArgs = [], label = 'node' }) {
    this.dataDir = dataDir;
    this.port = port;
    this.instant = instant;
    this.blockTimeMs = blockTimeMs;
    this.extraArgs = extraArgs;
    this.label = label;
    this.url = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}`;
    this.log = [];
    this.child = null;
  }

  /** Starts a node in a new temporary folder on a free port and waits until its RPC answers. */
  static async start(options = {}) {
    taksaBin(); // before anything is made, so a missing binary leaves nothing behind
    const port = options.port ?? (await freePort());
    const dataDir = options.dataDir ?? tempDir(options.label ?? 'node');
    const node = new DevNode({ ...options, dataDir, port });
    node.ownsDir = !options.dataDir;
    try {
      await node.spawn();
    } catch (e) {
      await node.destroy();
      throw e;
    }
    return node;
  }

  args() {
    const a = ['dev', '--data-dir', this.dataDir, '--rpc-addr', `127.0.0.1:${this.port}`];
    if (this.instant) a.push('--instant');
    if (this.blockTimeMs !== undefined) a.push('--block-time-ms', String(this.blockTimeMs));
    return [...a, ...this.extraArgs];
  }

  async spawn() {
    const bin = taksaBin();
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('TAKSA_') && k !== 'TAKSA_BIN') delete env[k];
    const child = spawn(bin, this.args(), { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.child = child;
    live.add(child);
    const keep = (chunk) => {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        this.log.push(line);
        if (this.log.length > LOG_LINES_MAX) this.log.shift();
      }
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        live.delete(child);
        resolve({ code, signal });
      });
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    let exitedEarly = null;
    this.exited.then((e) => {
      exitedEarly = e;
    });
    for (;;) {
      if (exitedEarly) throw new Error(`${this.label} exited at start (${JSON.stringify(exitedEarly)}):\n${this.tail()}`);
      try {
        this.info = await rpc(this.url, 'chain_getInfo');
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`${this.label} did not answer within ${START_TIMEOUT_MS} ms:\n${this.tail()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** The last lines the node printed. */
  tail(lines = 40) {
    return this.log.slice(-lines).join('\n');
  }

  /** Stops the node (by its pid) and waits until it exited. */
  async stop(signal = 'SIGTERM') {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const child = this.child;
    try {
      process.kill(child.pid, signal);
    } catch {}
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {}
    }, 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Starts the node again on the same folder, port and flags. */
  async restart() {
    await this.stop();
    await this.spawn();
  }

  /** Stops the node and deletes its folder if the test made it. */
  async destroy() {
    await this.stop('SIGKILL');
    if (this.ownsDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
