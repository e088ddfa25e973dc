// What a wrong, broken or hostile node (or socket) cannot make the SDK do, with fake fetch and
// WebSocket objects and fake nodes on 127.0.0.1 in this process:
// - a socket that is CLOSING or CLOSED without a close event: calls fail at once and the client
//   opens a new connection (instead of an endless microtask loop);
// - transfer(): the expected network, the fee cap and the nonce window, checked before signing;
// - malformed notifications: a protocol error that closes the connection and resumes from the
//   SDK's own cursor, never an uncaught exception;
// - `sub.cursor` is the cursor of the last event handed over, not the last one received;
// - a memo or chain id starting with U+FEFF decodes to itself, and decoding keeps the input bytes;
// - backoff for a node that lags or drops right after every subscribe, and resuming from the
//   SDK's own cursor on `lagged`;
// - an HTTP answer larger than the node's response limit is abandoned.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, test } from 'node:test';

import WebSocket, { WebSocketServer } from 'ws';

import {
  ChainMismatchError,
  Client,
  DEFAULT_MAX_FEE,
  decodeHeader,
  decodeSignedTransaction,
  encodeHeader,
  fromUtf8,
  headerHash,
  Keypair,
  MAX_RESPONSE_BYTES,
  ProtocolError,
  sha256,
  signTransaction,
  toHex,
  transaction,
  TransferCheckError,
  TransportError,
  utf8,
} from '../dist/index.js';
import { take } from './helpers/stream.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// ---- 1. a socket that is closing --------------------------------------------------------------

test('a socket CLOSING or CLOSED without a close event: calls fail at once and the client reconnects', () => {
  // In a child process with a time and memory limit: without the fix, send() recurses in
  // microtasks forever, which no timer in this process could interrupt.
  const script = `
    import { Client, WsConnection } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
    const sockets = [];
    class FakeSocket {
      constructor(url) {
        this.url = url; this.readyState = 0; this.sent = [];
        this.onopen = this.onmessage = this.onclose = this.onerror = null;
        this.n = sockets.push(this);
        setTimeout(() => { this.readyState = 1; this.onopen?.({}); }, 1);
      }
      send(data) {
        const { id } = JSON.parse(data);
        this.sent.push(data);
        setTimeout(() => this.onmessage?.({ data: JSON.stringify({ jsonrpc: '2.0', id, result: 'socket ' + this.n }) }), 1);
      }
      close() { this.readyState = 3; } // and no close event
    }
    const out = {};
    for (const state of [2, 3]) {
      const conn = new WsConnection('ws://fake', FakeSocket, 2000);
      await conn.ready;
      sockets.at(-1).readyState = state;
      try { await conn.request('chain_getInfo', []); out['state' + state] = 'answered'; }
      catch (e) { out['state' + state] = e.name + ': ' + e.message; }
      out['closed' + state] = conn.isClosed;
    }
    const client = new Client('ws://127.0.0.1:1', { WebSocket: FakeSocket, timeoutMs: 2000 });
    out.first = await client.call('chain_getInfo', []);
    sockets.at(-1).readyState = 2;
    out.second = await client.call('chain_getInfo', []);
    sockets.at(-1).readyState = 3;
    out.third = await client.call('chain_getInfo', []);
    out.sockets = sockets.length;
    await client.close();
    console.log(JSON.stringify(out));
  `;
  const r = spawnSync(process.execPath, ['--max-old-space-size=256', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  assert.equal(r.status, 0, `the probe hung or crashed (status ${r.status}, signal ${r.signal}): ${r.stderr.slice(0, 2000)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1));
  assert.match(out.state2, /^TransportError: .*closing/);
  assert.match(out.state3, /^TransportError: .*closing/);
  assert.equal(out.closed2, true);
  assert.equal(out.closed3, true);
  assert.equal(out.first, 'socket 3');
  assert.equal(out.second, 'socket 4', 'a CLOSING socket is replaced by a new connection');
  assert.equal(out.third, 'socket 5', 'a CLOSED socket is replaced by a new connection');
  assert.equal(out.sockets, 5);
});

// ---- 2. transfer(): what the node is trusted for ------------------------------------------------

const GENESIS = `0x${'11'.repeat(32)}`;
const dev = Keypair.fromMnemonic('test test test test test test test test test test test junk');
const bob = Keypair.fromMnemonic('test test test test test test test test test test test junk', { account: 1 });

/** A fake node over HTTP: `fetch` answers from `state`, and records what was submitted. */
function fakeHttpNode(overrides = {}) {
  const state = {
    info: { chainId: 'taksa-dev', genesisHash: GENESIS, addressHrp: 'tdev', feeFloor: '1000', accountCreationFee: '100000' },
    committed: 3,
    next: 5,
    recipientExists: false,
    submitted: [],
    ...overrides,
  };
  const answers = {
    chain_getInfo: () => state.info,
    account_getNonce: () => state.next,
    account_get: ([address]) =>
      address === dev.address('tdev')
        ? { address, balance: '5000000000', nonce: state.committed, nextNonce: state.next, pending: state.next - state.committed }
        : { address, balance: state.recipientExists ? '10' : '0', nonce: 0, nextNonce: 0, pending: 0 },
    tx_submit: ([hex]) => {
      state.submitted.push(hex);
      return decodeSignedTransaction(hex).hash;
    },
  };
  const fetch = async (_url, init) => {
    const { id, method, params } = JSON.parse(init.body);
    return new Response(JSON.stringify({ jsonrpc: '2.0', id, result: answers[method](params) }));
  };
  return { state, fetch };
}

test('transfer() refuses a node on another network than `expect` names, before signing anything', async () => {
  const to = bob.address('tdev');
  const ok = fakeHttpNode();
  const pinned = new Client('http://127.0.0.1:1', { fetch: ok.fetch, expect: { chainId: 'taksa-dev', genesisHash: GENESIS.slice(2).toUpperCase() } });
  const signed = await pinned.transfer(dev, { to, amount: 5n });
  assert.equal(ok.state.submitted.length, 1, 'the expected network: signed and submitted');
  assert.equal(signed.tx.chainId, 'taksa-dev');

  for (const info of [
    { chainId: 'taksa-dev', genesisHash: `0x${'22'.repeat(32)}` },
    { chainId: 'taksa-testnet', genesisHash: GENESIS },
  ]) {
    const other = fakeHttpNode();
    Object.assign(other.state.info, info);
    const client = new Client('http://127.0.0.1:1', { fetch: other.fetch, expect: { chainId: 'taksa-dev', genesisHash: GENESIS } });
    await assert.rejects(client.transfer(dev, { to, amount: 5n }), (e) => {
      assert.ok(e instanceof ChainMismatchError, String(e));
      assert.match(e.message, /expected chain `taksa-dev`/);
      assert.deepEqual(e.got, info);
      return true;
    });
    await assert.rejects(client.info(), ChainMismatchError, 'info() checks it too');
    assert.equal(other.state.submitted.length, 0, 'nothing was signed for the other network');
  }
  assert.throws(() => new Client('http://127.0.0.1:1', { expect: { chainId: 'taksa-dev', genesisHash: '0x12' } }), /32 bytes/);
});

test('transfer() signs no fee above maxFee (default 0.01 TKS), whether the node or the caller chose it', async () => {
  const to = bob.address('tdev');
  assert.equal(DEFAULT_MAX_FEE, 10_000_000n);
  // chain_getInfo is read once per client: one client per fee schedule.
  const creation = fakeHttpNode();
  creation.state.info.accountCreationFee = '5000000000'; // 5 TKS to "create" the recipient
  const c1 = new Client('http://127.0.0.1:1', { fetch: creation.fetch });
  await assert.rejects(c1.transfer(dev, { to, amount: 5n }), (e) => e instanceof TransferCheckError && e.check === 'fee' && /maxFee/.test(e.message));
  assert.equal(creation.state.submitted.length, 0);

  const greedy = fakeHttpNode({ recipientExists: true });
  greedy.state.info.feeFloor = '10000001';
  const client = new Client('http://127.0.0.1:1', { fetch: greedy.fetch });
  await assert.rejects(client.transfer(dev, { to, amount: 5n }), (e) => e instanceof TransferCheckError && e.check === 'fee');
  await assert.rejects(client.transfer(dev, { to, amount: 5n, fee: 20_000_000n }), (e) => e instanceof TransferCheckError && e.check === 'fee');
  assert.equal(greedy.state.submitted.length, 0);
  const paid = await client.transfer(dev, { to, amount: 5n, maxFee: 10_000_001n });
  assert.equal(paid.tx.fee, 10_000_001n, 'a higher maxFee allows it');
  assert.equal(greedy.state.submitted.length, 1);
  const plain = fakeHttpNode();
  const exact = await new Client('http://127.0.0.1:1', { fetch: plain.fetch }).transfer(dev, { to, amount: 5n, fee: DEFAULT_MAX_FEE });
  assert.equal(exact.tx.fee, DEFAULT_MAX_FEE, 'the cap itself is allowed');
});

test("transfer() uses the node's next nonce only within [committed, committed + 64]", async () => {
  const to = bob.address('tdev');
  const node = fakeHttpNode({ committed: 10 });
  const client = new Client('http://127.0.0.1:1', { fetch: node.fetch });
  for (const next of [9, 75, 1_000_000, -1, 1.5]) {
    node.state.next = next;
    await assert.rejects(client.transfer(dev, { to, amount: 5n }), (e) => e instanceof TransferCheckError && e.check === 'nonce', String(next));
  }
  assert.equal(node.state.submitted.length, 0);
  for (const next of [10, 74]) {
    node.state.next = next;
    assert.equal((await client.transfer(dev, { to, amount: 5n })).tx.nonce, BigInt(next));
  }
  node.state.next = 1_000_000;
  assert.equal((await client.transfer(dev, { to, amount: 5n, nonce: 500 })).tx.nonce, 500n, 'a nonce the caller gives is used as given');
});

// ---- fake WebSocket nodes -----------------------------------------------------------------------

/** Cursors as the node writes them: version 1, height (u64 BE), index (u32 BE). */
function cursor(height, index = 0) {
  return `01${height.toString(16).padStart(16, '0')}${index.toString(16).padStart(8, '0')}`;
}

function blockEvent(height) {
  const c = cursor(height, 0);
  const z = `0x${'00'.repeat(32)}`;
  return { type: 'block', cursor: c, block: { hash: z, height, view: height, parentHash: z, proposer: 'tdev1x', timestampMs: 0, txCount: 0, fees: '0', stateRoot: z, cursor: c } };
}

/** A fake node: `onSubscribe(ctx)` runs per subscribe call; every call's parameters are recorded. */
async function fakeNode(onSubscribe) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.on('listening', r));
  const calls = [];
  let connections = 0;
  wss.on('connection', (ws) => {
    const connection = ++connections;
    let nextSub = 1;
    ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw));
      if (msg.method === 'explorer_recentBlocks') {
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { blocks: [blockEvent(2).block], nextBeforeHeight: 2 } }));
        return;
      }
      if (/unsubscribe/i.test(msg.method)) {
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: true }));
        return;
      }
      calls.push({ params: msg.params, connection, at: Date.now() });
      const sub = nextSub++;
      onSubscribe({
        call: calls.length,
        params: msg.params,
        accept: () => ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: sub })),
        notify: (result) => ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'events_event', params: { subscription: sub, result } })),
        raw: (text) => ws.send(text),
        drop: () => ws.terminate(),
      });
    });
  });
  const { port } = wss.address();
  const node = {
    url: `ws://127.0.0.1:${port}`,
    calls,
    connections: () => connections,
    close: () =>
      new Promise((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
  cleanups.push(node.close);
  return node;
}


function wsClient(url, reconnect = { initialDelayMs: 5, maxDelayMs: 50 }) {
  const client = new Client(url, { WebSocket, reconnect });
  cleanups.push(() => client.close());
  return client;
}

// ---- 3. malformed notifications ---------------------------------------------------------------

test('malformed notifications close the connection and resume from the SDK cursor, never an uncaught exception', async () => {
  const fake = await fakeNode((ctx) => {
    ctx.accept();
    switch (ctx.call) {
      case 1: // params that are a string, not an object
        ctx.notify(blockEvent(1));
        ctx.notify(blockEvent(2));
        ctx.raw(JSON.stringify({ jsonrpc: '2.0', method: 'events_event', params: 'oops' }));
        ctx.notify(blockEvent(3)); // after the violation: not taken
        return;
      case 2: // a block event without its block
        ctx.notify(blockEvent(3));
        ctx.notify({ type: 'block', cursor: cursor(4) });
        return;
      case 3: // a transfer whose height is a string
        ctx.notify({ type: 'transfer', cursor: cursor(4), height: '4', index: 0, transfer: {} });
        return;
      case 4: // not JSON at all
        ctx.raw('{"jsonrpc":"2.0","method":"events_event","params":{');
        return;
      case 5: // a lagged notice whose cursor is a number
        ctx.notify({ type: 'lagged', resumeCursor: 7, message: 'x' });
        return;
      default:
        ctx.notify(blockEvent(4));
        ctx.notify(blockEvent(5));
    }
  });
  const client = wsClient(fake.url);
  const sub = client.subscribeEvents({ fromHeight: 1 });
  const reasons = [];
  sub.onReconnect = (_delay, error) => reasons.push(error);
  const events = await take(sub, 5);
  await sub.close();
  assert.deepEqual(events.map((e) => e.block.height), [1, 2, 3, 4, 5], 'every block once, in order');
  assert.equal(sub.stats.protocolErrors, 5, JSON.stringify(sub.stats));
  assert.ok(reasons.every((e) => e instanceof ProtocolError), reasons.map(String).join('\n'));
  assert.deepEqual(
    fake.calls.map((c) => c.params),
    [[{ fromHeight: 1 }], [{ after: cursor(2) }], [{ after: cursor(3) }], [{ after: cursor(3) }], [{ after: cursor(3) }], [{ after: cursor(3) }]],
    'each resumption after the last event received',
  );
  assert.deepEqual(fake.calls.map((c) => c.connection), [1, 2, 3, 4, 5, 6], 'a protocol error closes the connection');
});

// ---- 4. the handed-over cursor ----------------------------------------------------------------

test('sub.cursor is the cursor of the last event handed over, not of the last one received', async () => {
  const fake = await fakeNode((ctx) => {
    ctx.accept();
    for (let h = 1; h <= 5; h++) ctx.notify(blockEvent(h));
  });
  const client = wsClient(fake.url);
  const sub = client.subscribeEvents({ fromHeight: 1 });
  assert.equal(sub.cursor, null, 'nothing handed over yet');
  const first = await sub.next(); // waiting: handed over straight away
  assert.equal(first.value.block.height, 1);
  assert.equal(sub.cursor, cursor(1));
  await new Promise((r) => setTimeout(r, 100)); // 2..5 arrive and wait in the queue
  assert.equal(sub.cursor, cursor(1), 'queued events do not move the cursor');
  await take(sub, 2);
  assert.equal(sub.cursor, cursor(3));
  await sub.close();
  assert.equal(sub.cursor, cursor(3), 'events dropped by close() were never handed over');

  const resumed = client.subscribeEvents({ after: cursor(3) });
  assert.equal(resumed.cursor, cursor(3), 'a subscription started after a cursor reports it until it hands over more');
  await resumed.close();
});

// ---- 5. U+FEFF ---------------------------------------------------------------------------------

test('a memo or chain id that starts with U+FEFF decodes to itself; decoding keeps the input bytes and hash', () => {
  assert.equal(fromUtf8(utf8('\uFEFFhi')), '\uFEFFhi');
  assert.equal(fromUtf8(utf8('\uFEFF\uFEFF')), '\uFEFF\uFEFF');
  const memo = '\uFEFFinvoice 42';
  const tx = transaction({ chainId: 'taksa-dev', from: dev.publicKey, to: bob.publicKey, amount: 1n, fee: 1000n, nonce: 0, memo });
  const signed = signTransaction(tx, dev, GENESIS);
  const back = decodeSignedTransaction(signed.hex);
  assert.equal(back.tx.memo, memo);
  assert.equal(back.hash, signed.hash);
  assert.equal(back.hash, `0x${toHex(sha256(signed.bytes))}`);
  assert.deepEqual(back.bytes, signed.bytes);
  assert.equal(back.hex, signed.hex);

  const z = new Uint8Array(32);
  const header = { chainId: '\uFEFFtaksa', height: 5n, view: 5n, parentHash: z, proposer: z, timestampMs: 1n, txRoot: z, evidenceRoot: z, stateRoot: z, validatorSetHash: z, parentCert: null };
  const bytes = encodeHeader(header);
  const decoded = decodeHeader(bytes);
  assert.equal(decoded.chainId, '\uFEFFtaksa');
  assert.deepEqual(headerHash(decoded), sha256(bytes), 'the block hash is that of the input bytes');
});

// ---- 6 and 7. backoff without progress, resuming from the SDK cursor on lagged --------------------

test('a node that says lagged right after every subscribe gets a growing backoff, not a resubscribe storm', async () => {
  const fake = await fakeNode((ctx) => {
    ctx.accept();
    ctx.notify({ type: 'lagged', resumeCursor: null, message: 'slow' });
  });
  const client = wsClient(fake.url, { initialDelayMs: 5, maxDelayMs: 5000 });
  const sub = client.subscribeEvents({ fromHeight: 1 });
  const delays = [];
  sub.onReconnect = (d) => delays.push(d);
  await new Promise((r) => setTimeout(r, 600));
  await sub.close();
  assert.ok(fake.calls.length >= 3 && fake.calls.length <= 12, `${fake.calls.length} subscribes in 600 ms`);
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i] > delays[i - 1], `growing delays: ${delays}`);
  assert.equal(sub.stats.lagged, fake.calls.length);
});

test('a node that drops the connection right after every subscribe gets a growing backoff; an event resets it', async () => {
  let deliver = false;
  const fake = await fakeNode((ctx) => {
    ctx.accept();
    if (deliver) {
      const after = ctx.params[0].after;
      ctx.notify(blockEvent(after ? parseInt(after.slice(2, 18), 16) + 1 : 1));
    }
    setTimeout(() => ctx.drop(), 5);
  });
  // maxAttempts bounds failures in a row; each subscribe here succeeds, so it never gives up.
  const client = wsClient(fake.url, { initialDelayMs: 5, maxDelayMs: 5000, maxAttempts: 2 });
  const sub = client.subscribeEvents({ fromHeight: 1 });
  const delays = [];
  sub.onReconnect = (d) => delays.push(d);
  await new Promise((r) => setTimeout(r, 600));
  assert.ok(!sub.done, 'still subscribed');
  assert.ok(fake.calls.length >= 3 && fake.calls.length <= 15, `${fake.calls.length} subscribes in 600 ms`);
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i] > delays[i - 1], `growing delays: ${delays}`);
  deliver = true;
  const events = await take(sub, 3);
  await sub.close();
  assert.deepEqual(events.map((e) => e.block.height), [1, 2, 3]);
  assert.ok(delays.at(-1) <= 6, `after an event the backoff starts over: ${delays}`);
});

test('on lagged the subscription resumes from its own cursor; the notice cursor only when it has none', async () => {
  const fake = await fakeNode((ctx) => {
    ctx.accept();
    if (ctx.call === 1) {
      for (const h of [1, 2, 3]) ctx.notify(blockEvent(h));
      ctx.notify({ type: 'lagged', resumeCursor: cursor(9), message: 'a resume cursor past what was sent' });
    } else {
      ctx.notify(blockEvent(4));
    }
  });
  const client = wsClient(fake.url);
  const sub = client.subscribeEvents({ fromHeight: 1 });
  assert.deepEqual((await take(sub, 4)).map((e) => e.block.height), [1, 2, 3, 4]);
  await sub.close();
  assert.deepEqual(fake.calls.map((c) => c.params), [[{ fromHeight: 1 }], [{ after: cursor(3) }]]);

  const empty = await fakeNode((ctx) => {
    ctx.accept();
    if (ctx.call === 1) ctx.notify({ type: 'lagged', resumeCursor: cursor(7), message: 'slow' });
    else ctx.notify(blockEvent(8));
  });
  const other = wsClient(empty.url);
  const fresh = other.subscribeEvents({ fromHeight: 1 });
  assert.equal((await fresh.next()).value.block.height, 8);
  await fresh.close();
  assert.deepEqual(empty.calls.map((c) => c.params), [[{ fromHeight: 1 }], [{ after: cursor(7) }]]);
});

// ---- 8. the size of an HTTP answer ----------------------------------------------------------------

test('an HTTP answer larger than the response limit is abandoned, not read to the end', async () => {
  const MiB = 1024 * 1024;
  let produced = 0;
  let cancelled = false;
  const chunk = new Uint8Array(MiB).fill(0x20);
  const fetch = async () =>
    new Response(
      new ReadableStream({
        pull(controller) {
          if (produced >= 64 * MiB) {
            controller.close();
            return;
          }
          produced += chunk.length;
          controller.enqueue(chunk);
        },
        cancel() {
          cancelled = true;
        },
      }),
    );
  const client = new Client('http://127.0.0.1:1', { fetch });
  await assert.rejects(client.chainGetInfo(), (e) => e instanceof TransportError && /larger than/.test(e.message));
  assert.ok(produced <= MAX_RESPONSE_BYTES + 4 * MiB, `read ${produced} bytes`);
  assert.ok(cancelled, 'the body was cancelled');

  const declared = new Client('http://127.0.0.1:1', {
    fetch: async () => new Response('{}', { headers: { 'content-length': String(MAX_RESPONSE_BYTES + 1) } }),
  });
  await assert.rejects(declared.chainGetInfo(), (e) => e instanceof TransportError && /larger than/.test(e.message));
});
