// A subscription to every event survives a node killed with SIGKILL and restarted on the same
// data folder and port: it reconnects with backoff, resumes after its last cursor, and hands
// over every event exactly once, in cursor order, with no gap across the restart. The node runs
// with blocks every 100 ms (not --instant), so empty blocks keep coming around the transfers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import WebSocket from 'ws';

import { Client, DEV_MNEMONIC, generateMnemonic, Keypair, parseAmount, signTransaction, transaction } from '../dist/index.js';
import { DevNode } from './helpers/node.mjs';

let node;
let client;

before(async () => {
  node = await DevNode.start({ label: 'restart', instant: false, blockTimeMs: 100 });
  client = new Client(node.url, { WebSocket, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
});

after(async () => {
  await client?.close();
  await node?.destroy();
});

/** Signs and submits `count` transfers from `from` with consecutive nonces; returns their hashes. */
async function sendTransfers(from, count) {
  const info = await client.info();
  const nonce = BigInt(await client.accountGetNonce(from.address(info.addressHrp)));
  const hashes = [];
  for (let i = 0; i < count; i++) {
    const to = Keypair.fromMnemonic(generateMnemonic(12)).publicKey;
    const tx = transaction({
      chainId: info.chainId,
      from: from.publicKey,
      to,
      amount: parseAmount('0.001'),
      fee: BigInt(info.accountCreationFee),
      nonce: nonce + BigInt(i),
    });
    hashes.push(await client.submit(signTransaction(tx, from, info.genesisHash)));
  }
  return hashes;
}

/** Consumes `sub` into `events` until every hash in `hashes` was seen. */
async function until(sub, events, hashes, timeoutMs = 30_000) {
  const want = new Set(hashes);
  for (const e of events) if (e.type === 'transfer') want.delete(e.transfer.hash);
  const deadline = Date.now() + timeoutMs;
  while (want.size > 0) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${[...want]}`)), deadline - Date.now());
    });
    const r = await Promise.race([sub.next(), timeout]).finally(() => clearTimeout(timer));
    assert.equal(r.done, false, 'the subscription ended');
    events.push(r.value);
    if (r.value.type === 'transfer') want.delete(r.value.transfer.hash);
  }
}

function position(e) {
  return e.type === 'transfer' ? [e.height, e.index] : [e.block.height, e.block.txCount];
}

test('events_subscribe resumes across a SIGKILL and restart with no gap and no duplicate', async () => {
  const sender = Keypair.fromMnemonic(DEV_MNEMONIC, { account: 1 });
  const sub = client.subscribeEvents({ fromHeight: 1 });
  const reconnects = [];
  sub.onReconnect = (delayMs) => reconnects.push(delayMs);
  const events = [];

  const before = await sendTransfers(sender, 3);
  await until(sub, events, before);

  await node.stop('SIGKILL');
  // Let the subscription notice and back off against a closed port for a while.
  await new Promise((r) => setTimeout(r, 300));
  await node.spawn();

  const afterRestart = await sendTransfers(sender, 3);
  await until(sub, events, afterRestart);
  // And a few empty blocks more, live.
  const lastHeight = position(events.at(-1))[0];
  while (position(events.at(-1))[0] < lastHeight + 3) events.push((await sub.next()).value);
  await sub.close();

  assert.ok(sub.stats.reconnects >= 1, `the subscription reconnected: ${JSON.stringify(sub.stats)}`);
  assert.ok(reconnects.length >= 1, 'with a backoff delay');

  // Exactly once, in cursor order, no gap: event k+1 follows event k directly.
  const cursors = new Set(events.map((e) => e.cursor));
  assert.equal(cursors.size, events.length, 'no duplicate cursor');
  assert.deepEqual(position(events[0]), [1, 0], 'from the first event of height 1');
  const txsAt = new Map();
  for (let k = 0; k < events.length; k++) {
    const e = events[k];
    if (e.type === 'transfer') txsAt.set(e.height, (txsAt.get(e.height) ?? 0) + 1);
    if (k === 0) continue;
    const [h0, i0] = position(events[k - 1]);
    const [h1, i1] = position(e);
    const prevIsBlock = events[k - 1].type === 'block';
    if (prevIsBlock) assert.deepEqual([h1, i1], [h0 + 1, 0], `after block ${h0} comes the first event of ${h0 + 1}`);
    else assert.deepEqual([h1, i1], [h0, i0 + 1], `after (${h0}, ${i0}) comes (${h0}, ${i0 + 1})`);
    if (e.type === 'block') assert.equal(e.block.txCount, txsAt.get(h1) ?? 0, `block ${h1} lists the transfers seen before it`);
  }
  const transfers = events.filter((e) => e.type === 'transfer').map((e) => e.transfer.hash);
  assert.deepEqual(transfers, [...before, ...afterRestart], 'all six transfers, in order');

  // A fresh subscription from height 1 on the restarted node replays the same events.
  const replay = client.subscribeEvents({ fromHeight: 1 });
  const again = [];
  for await (const e of replay) {
    again.push(e.cursor);
    if (again.length === events.length) break;
  }
  assert.deepEqual(again, events.map((e) => e.cursor));
});
