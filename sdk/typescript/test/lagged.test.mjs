// The `lagged` notice: a real node (a 1200-block dev chain, a small --rpc-send-buffer-bytes)
// tells a subscriber whose socket stopped reading that it lagged, and the subscription resumes
// from the notice's cursor with every event once. Then a fake node on 127.0.0.1, in this
// process, checks each resume path exactly: the parameters of every resubscription, lagged
// with and without a cursor, a dropped connection with backoff, a replayed duplicate, a
// transient error, and a transaction status stream resumed after a drop.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import WebSocket, { WebSocketServer } from 'ws';

import { Client, RpcError } from '../dist/index.js';
import { benchChain, DevNode, tempDir } from './helpers/node.mjs';
import { take } from './helpers/stream.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('a real node sends lagged to a subscriber that stops reading, and the subscription resumes with no gap', async () => {
  const BLOCKS = 1200;
  const dataDir = tempDir('lagged');
  const { rmSync } = await import('node:fs');
  cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
  benchChain(dataDir, BLOCKS);
  const node = await DevNode.start({ label: 'lagged', dataDir, instant: true, extraArgs: ['--rpc-send-buffer-bytes', '4096'] });
  cleanups.push(() => node.destroy());

  const sockets = [];
  class RecordingWebSocket extends WebSocket {
    constructor(url) {
      super(url);
      sockets.push(this);
    }
  }
  const client = new Client(node.url, { WebSocket: RecordingWebSocket });
  cleanups.push(() => client.close());
  const sub = client.subscribeEvents({ fromHeight: 1 });
  const notices = [];
  sub.onLagged = (n) => notices.push(n);

  const heights = [];
  const firstEvent = await sub.next();
  heights.push(firstEvent.value.block.height);
  // Stop reading: the node's buffer and the socket buffers fill, and after 5 s of a full
  // buffer the node gives up on the subscriber and says so in its log.
  sockets[0].pause();
  const deadline = Date.now() + 30_000;
  while (!node.log.some((l) => l.includes('subscriber lagged'))) {
    assert.ok(Date.now() < deadline, `the node never cut the subscriber off:\n${node.tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  sockets[0].resume();
  while (heights.at(-1) < BLOCKS) {
    const { value } = await sub.next();
    assert.equal(value.type, 'block', 'an empty chain has only block events');
    heights.push(value.block.height);
  }
  await sub.close();

  assert.equal(notices.length, 1, `one lagged notice: ${JSON.stringify(sub.stats)}`);
  assert.match(notices[0].resumeCursor, /^[0-9a-f]+$/);
  assert.equal(sub.stats.lagged, 1);
  assert.equal(sub.stats.subscribes, 2, 'subscribed again after the notice');
  assert.equal(sockets.length, 1, 'on the same connection');
  assert.deepEqual(heights, Array.from({ length: BLOCKS }, (_, i) => i + 1), 'every block once, in order');
});

/** Cursors as the node writes them: version 1, height (u64 BE), index (u32 BE). */
function cursor(height, index) {
  return `01${height.toString(16).padStart(16, '0')}${index.toString(16).padStart(8, '0')}`;
}

function blockEvent(height) {
  const c = cursor(height, 0);
  return {
    type: 'block',
    cursor: c,
    block: { hash: `0x${'00'.repeat(32)}`, height, view: height, parentHash: `0x${'00'.repeat(32)}`, proposer: 'tdev1x', timestampMs: 0, txCount: 0, fees: '0', stateRoot: `0x${'00'.repeat(32)}`, cursor: c },
  };
}

/**
 * A fake node: `script(ctx)` runs per subscribe call and decides what to send. It records
 * every subscribe call's parameters.
 */
async function fakeNode(onSubscribe) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.on('listening', r));
  const calls = [];
  let connections = 0;
  wss.on('connection', (ws) => {
    connections++;
    let nextSub = 1;
    ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw));
      if (msg.method === 'explorer_recentBlocks') {
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { blocks: [blockEvent(2).block], nextBeforeHeight: 2 } }));
        return;
      }
      if (msg.method.endsWith('nsubscribe') || msg.method.endsWith('nsubscribeStatus')) {
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: true }));
        return;
      }
      calls.push({ method: msg.method, params: msg.params, connection: connections });
      const sub = nextSub++;
      const notify = (result) =>
        ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'events_event', params: { subscription: sub, result } }));
      const ctx = {
        call: calls.length,
        params: msg.params,
        accept: () => ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: sub })),
        reject: (code, reason) =>
          ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code, message: reason, data: { reason } } })),
        notify,
        drop: () => ws.terminate(),
      };
      onSubscribe(ctx);
    });
  });
  const { port } = wss.address();
  return {
    url: `ws://127.0.0.1:${port}`,
    calls,
    connections: () => connections,
    close: () => new Promise((r) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => r());
    }),
  };
}


test('fake node: lagged before any event, lagged with and without a cursor, a drop, a busy answer and a duplicate resume exactly once', async () => {
  const fake = await fakeNode((ctx) => {
    switch (ctx.call) {
      case 1: // Lagged before any event (no cursor): the client starts again where it started.
        ctx.accept();
        ctx.notify({ type: 'lagged', resumeCursor: null, message: 'slow' });
        return;
      case 2: // Heights 3..5 live (anchored after block 2), then lagged with resume cursor (5, 0).
        ctx.accept();
        for (const h of [3, 4, 5]) ctx.notify(blockEvent(h));
        ctx.notify({ type: 'lagged', resumeCursor: cursor(5, 0), message: 'slow' });
        return;
      case 3: // Resumed after 5: deliver 6, then the connection drops.
        ctx.accept();
        ctx.notify(blockEvent(6));
        setTimeout(() => ctx.drop(), 20);
        return;
      case 4: // After the drop: busy, try again.
        ctx.reject(1104, 'busy');
        return;
      case 5: // Resumed after 6 on the new connection: a replayed 6 (dropped by the client), then 7, 8.
        ctx.accept();
        for (const h of [6, 7, 8]) ctx.notify(blockEvent(h));
        ctx.notify({ type: 'lagged', resumeCursor: null, message: 'slow again' });
        return;
      default: // Lagged without a cursor: the client keeps its own (8, 0).
        ctx.accept();
        ctx.notify(blockEvent(9));
    }
  });
  cleanups.push(fake.close);
  const client = new Client(fake.url, { WebSocket, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
  cleanups.push(() => client.close());
  const sub = client.subscribeEvents();
  const events = await take(sub, 7);
  await sub.close();

  assert.deepEqual(events.map((e) => e.block.height), [3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(
    fake.calls.map((c) => c.params),
    [
      [{ after: cursor(2, 0) }],
      [{ after: cursor(2, 0) }],
      [{ after: cursor(5, 0) }],
      [{ after: cursor(6, 0) }],
      [{ after: cursor(6, 0) }],
      [{ after: cursor(8, 0) }],
    ],
    'anchored at the head, then each resume after the last event taken',
  );
  assert.deepEqual(fake.calls.map((c) => c.connection), [1, 1, 1, 2, 2, 2], 'lagged resumes on the same connection; a drop opens a new one');
  assert.equal(sub.stats.lagged, 3);
  assert.equal(sub.stats.duplicates, 1);
  assert.ok(sub.stats.reconnects >= 1);
  assert.equal(sub.cursor, cursor(9, 0));
});

test('fake node: a refused subscription fails the iterator with the typed error; maxAttempts bounds reconnection', async () => {
  const fake = await fakeNode((ctx) => ctx.reject(3005, 'cursor_ahead'));
  cleanups.push(fake.close);
  const client = new Client(fake.url, { WebSocket });
  cleanups.push(() => client.close());
  const sub = client.subscribeEvents({ after: cursor(99, 0) });
  await assert.rejects(sub.next(), (e) => e instanceof RpcError && e.code === 3005 && e.reason === 'cursor_ahead');

  const dead = new Client('ws://127.0.0.1:9', { WebSocket, reconnect: { initialDelayMs: 5, maxDelayMs: 10, maxAttempts: 3 } });
  cleanups.push(() => dead.close());
  const delays = [];
  const never = dead.subscribeEvents({ fromHeight: 1 });
  never.onReconnect = (d) => delays.push(d);
  await assert.rejects(never.next(), (e) => e.name === 'TransportError');
  assert.equal(delays.length, 3, 'three attempts with backoff, then it gives up');
});

test('fake node: a slow consumer pauses the node subscription and resumes it from its cursor when it catches up', async () => {
  const fake = await fakeNode((ctx) => {
    ctx.accept();
    const after = ctx.params[0]?.after;
    const from = after ? parseInt(after.slice(2, 18), 16) + 1 : 1;
    for (let h = from; h < from + 10; h++) ctx.notify(blockEvent(h));
  });
  cleanups.push(fake.close);
  const client = new Client(fake.url, { WebSocket });
  cleanups.push(() => client.close());
  const sub = client.subscription('events_subscribe', [{ fromHeight: 1 }], { maxQueued: 4 });
  await new Promise((r) => setTimeout(r, 100)); // let the queue fill while nobody reads
  const events = await take(sub, 25);
  await sub.close();
  assert.deepEqual(events.map((e) => e.block.height), Array.from({ length: 25 }, (_, i) => i + 1));
  assert.ok(sub.stats.pauses >= 1, JSON.stringify(sub.stats));
  assert.deepEqual(fake.calls[0].params, [{ fromHeight: 1 }]);
  assert.ok(fake.calls.slice(1).every((c) => c.params[0].after), 'every resumption starts after a cursor');
});

test('fake node: a transaction status stream resumed after a drop skips the repeated status and ends when final', async () => {
  const hash = `0x${'ab'.repeat(32)}`;
  const fake = await fakeNode((ctx) => {
    ctx.accept();
    const status = (s, extra = {}) => ctx.notify({ type: 'status', hash, status: s, ...extra });
    if (ctx.call === 1) {
      status('pending');
      setTimeout(() => ctx.drop(), 20);
    } else {
      status('pending');
      status('finalized', { height: 7, index: 0 });
    }
  });
  cleanups.push(fake.close);
  const client = new Client(fake.url, { WebSocket, reconnect: { initialDelayMs: 10 } });
  cleanups.push(() => client.close());
  const seen = [];
  for await (const s of client.txSubscribeStatus(hash)) seen.push(s.status);
  assert.deepEqual(seen, ['pending', 'finalized']);
  assert.deepEqual(fake.calls.map((c) => c.params), [[hash], [hash]]);
});
