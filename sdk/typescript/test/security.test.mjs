// Receipts bound to the transaction asked for, receipts of chains whose validator keys are public,
// message signatures that can never sign a transaction, and subscriptions beyond the node's
// per-connection limit or on a node that stops sending.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import WebSocket, { WebSocketServer } from 'ws';

import {
  accountPath,
  Client,
  decodeSignedTransaction,
  DEV_MNEMONIC,
  devGenesis,
  encodeHeader,
  fromHex,
  genesisHash,
  governanceKey,
  headerHash,
  Keypair,
  messageSigningBytes,
  parseGenesis,
  publicKeysQuorum,
  ReceiptError,
  RpcError,
  sha256,
  signingBytes,
  signTransaction,
  TESTNET_MNEMONIC,
  toHex0x,
  transaction,
  treeRoot,
  txRoot,
  validatorPath,
  validatorSetHash,
  verifyMessage,
  verifyReceipt,
  verifyTransactionSignature,
  voteBytes,
  withSignature,
  Writer,
} from '../dist/index.js';
import { take } from './helpers/stream.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const vector = JSON.parse(readFileSync(fileURLToPath(new URL('../../../docs/receipt-vector.json', import.meta.url)), 'utf8'));
const dev100 = devGenesis(100);
const vectorHash = toHex0x(sha256(fromHex(vector.tx)));

function failsWith(f, check) {
  assert.throws(f, (e) => {
    assert.ok(e instanceof ReceiptError, `a ReceiptError, got ${e}`);
    assert.equal(e.check, check, e.message);
    return true;
  });
}

// ---- 1. a receipt for the transaction asked for ---------------------------------------------------

test('client.receipt(hash) refuses a receipt for another transaction; verifyReceipt checks expectedHash', async () => {
  assert.equal(vectorHash, decodeSignedTransaction(vector.tx).hash, 'the tx hash is the SHA-256 of the tx bytes');
  const asked = [];
  const fetch = async (_url, init) => {
    const { id, method, params } = JSON.parse(init.body);
    asked.push([method, params]);
    return new Response(JSON.stringify({ jsonrpc: '2.0', id, result: vector }));
  };
  const client = new Client('http://127.0.0.1:1', { fetch });
  assert.deepEqual(await client.receipt(vectorHash), vector);
  assert.deepEqual(await client.receipt(vectorHash.slice(2).toUpperCase()), vector, 'any case, with or without 0x');
  const other = `0x${'ab'.repeat(32)}`;
  await assert.rejects(client.receipt(other), (e) => e instanceof ReceiptError && e.check === 'wrong_tx' && e.message.includes(vectorHash));
  assert.deepEqual(asked.at(-1), ['tx_getProof', [other]]);

  assert.equal(verifyReceipt(vector, dev100, { expectedHash: vectorHash }).hash, vectorHash);
  failsWith(() => verifyReceipt(vector, dev100, { expectedHash: other }), 'wrong_tx');
  failsWith(() => verifyReceipt(JSON.stringify(vector), dev100, { expectedHash: other }), 'wrong_tx');
  assert.throws(() => verifyReceipt(vector, dev100, { expectedHash: '0x12' }), TypeError);
});

// ---- 2. receipts anyone could forge ------------------------------------------------------------------

/**
 * A receipt of a chain of 2-block epochs whose set moves from `first` to `second` at the end of
 * epoch 0 (as in receipt.test.mjs), so that both the genesis set and the set that finalized the
 * block can be chosen.
 */
function receiptAcrossSets(first, second) {
  const payer = Keypair.fromMnemonic(DEV_MNEMONIC, { path: accountPath(0) });
  const payee = Keypair.fromMnemonic(DEV_MNEMONIC, { path: accountPath(1) });
  const g = {
    chainId: 'taksa-private', addressHrp: 'tdev', genesisTimeMs: 0n, blockTimeMs: 100n, feeFloor: 1000n, epochLength: 2n,
    validators: [first.publicKey], validatorNames: ['v0'], allocations: [[payer.publicKey, 10n ** 15n]],
  };
  const gHash = fromHex(genesisHash(g), 32);
  const zero = new Uint8Array(32);
  const governance = new Writer().vec([[second.publicKey, 'v1']], (w, [k, n]) => w.fixed(k, 32).string(n)).u64(0).u64(0).u64(0).finish();
  const govKey = governanceKey();
  const boundary = {
    chainId: g.chainId, height: 2n, view: 2n, parentHash: zero, proposer: first.publicKey, timestampMs: 2n,
    txRoot: txRoot([]), evidenceRoot: txRoot([]), stateRoot: treeRoot([[govKey, sha256(governance)]]),
    validatorSetHash: validatorSetHash([first.publicKey]), parentCert: null,
  };
  const cert = (header, epoch, signer) => {
    const hash = headerHash(header);
    const sig = signer.sign(voteBytes(g.chainId, gHash, epoch, 'finalize', header.view, hash));
    return new Writer().u64(epoch).u32(2).u64(header.view).option(hash, (w, h) => w.fixed(h, 32)).bytes(Uint8Array.of(1)).vec([sig], (w, s) => w.fixed(s, 64)).finish();
  };
  const proof = new Writer().u64(0).u32(1).fixed(govKey, 32).fixed(sha256(governance), 32).finish();
  const tx = signTransaction(transaction({ chainId: g.chainId, from: payer.publicKey, to: payee.publicKey, amount: 5n, fee: 100_000n, nonce: 0 }), payer, gHash);
  const block = {
    ...boundary, height: 3n, view: 1n, parentHash: headerHash(boundary), proposer: second.publicKey,
    txRoot: txRoot([fromHex(tx.hash, 32)]), stateRoot: zero, validatorSetHash: validatorSetHash([second.publicKey]),
  };
  const link = { header: toHex0x(encodeHeader(boundary)), finalization: toHex0x(cert(boundary, 0n, first)), governance: toHex0x(governance), proof: toHex0x(proof) };
  const receipt = {
    format: 'taksa-receipt/v3', chainId: g.chainId, genesisHash: toHex0x(gHash), tx: tx.hex, index: 0, txCount: 1, txPath: [],
    header: toHex0x(encodeHeader(block)), headersToFinal: [], finalization: toHex0x(cert(block, 1n, second)), epochs: [link],
  };
  return { g, receipt };
}

test('verifyReceipt reports receipts of chains whose validator keys are public (publicValidatorKeys)', () => {
  assert.equal(verifyReceipt(vector, dev100).publicValidatorKeys, 'dev', 'the dev chain');

  const testnet = parseGenesis(readFileSync(fileURLToPath(new URL('../../../genesis.json', import.meta.url)), 'utf8'));
  assert.equal(testnet.validators.length, 4);
  const testnetKeys = [0, 1, 2, 3].map((i) => Keypair.fromMnemonic(TESTNET_MNEMONIC, { path: validatorPath(i) }).publicKey);
  assert.deepEqual(testnet.validators, testnetKeys, "the testnet's validators are validator keys 0..3 of the test mnemonic");
  assert.equal(publicKeysQuorum(testnet.validators), 'testnet');
  assert.equal(publicKeysQuorum(devGenesis(200).validators), 'dev');

  const secret = (n) => Keypair.fromSecretKey(sha256(new TextEncoder().encode(`private validator ${n}`)));
  const priv = [1, 2, 3, 4].map((n) => secret(n).publicKey);
  assert.equal(publicKeysQuorum(priv), null);
  assert.equal(publicKeysQuorum([...testnetKeys.slice(0, 3), priv[0]]), 'testnet', '3 public keys of 4 make a quorum');
  assert.equal(publicKeysQuorum([...testnetKeys.slice(0, 2), ...priv.slice(0, 2)]), null, '2 of 4 do not');
  assert.equal(publicKeysQuorum([devGenesis().validators[0], priv[0]]), null, '1 of 2 is no quorum');
  assert.equal(publicKeysQuorum([devGenesis().validators[0], testnetKeys[0], testnetKeys[1], priv[0]]), 'testnet', 'dev and testnet keys together');

  const devKey = Keypair.fromMnemonic(DEV_MNEMONIC, { path: validatorPath(0) });
  const testnetKey = Keypair.fromMnemonic(TESTNET_MNEMONIC, { path: validatorPath(2) });
  const cases = [
    [secret(1), secret(2), null],
    [devKey, secret(2), 'dev'],
    [testnetKey, secret(2), 'testnet'],
    [secret(1), devKey, 'dev'], // a private genesis whose set moved to a public key
  ];
  for (const [first, second, want] of cases) {
    const { g, receipt } = receiptAcrossSets(first, second);
    const paid = verifyReceipt(receipt, g);
    assert.equal(paid.tx.tx.amount, 5n);
    assert.equal(paid.publicValidatorKeys, want);
  }
});

// ---- 3. message signatures ------------------------------------------------------------------------------

test('signMessage can never sign a transaction: domain-separated, length-prefixed, and verifyMessage checks it', () => {
  const key = Keypair.fromMnemonic(DEV_MNEMONIC);
  const bob = Keypair.fromMnemonic(DEV_MNEMONIC, { account: 1 });
  const genesis = `0x${'11'.repeat(32)}`;
  const tx = transaction({ chainId: 'taksa-dev', from: key.publicKey, to: bob.publicKey, amount: 10n ** 15n, fee: 1000n, nonce: 0 });
  const txBytes = signingBytes(tx, genesis);

  // A dapp asks to "sign a message" that is the signing bytes of a spend (as bytes, or as text).
  for (const asked of [txBytes, new TextDecoder('latin1').decode(txBytes)]) {
    const sig = key.signMessage(asked);
    assert.equal(verifyTransactionSignature(withSignature(tx, sig), genesis), false, 'not a signature of the transaction');
    assert.equal(verifyMessage(key.publicKey, asked, sig), true);
  }
  // The raw sign() of the same bytes is a valid transaction signature: why it is documented as low-level.
  assert.equal(verifyTransactionSignature(withSignature(tx, key.sign(txBytes)), genesis), true);

  const m = messageSigningBytes('hi');
  assert.equal(new TextDecoder().decode(m.slice(0, 16)), 'taksa/message/v1');
  assert.deepEqual([...m.slice(16)], [2, 0, 0, 0, 0, 0, 0, 0, 0x68, 0x69]);
  assert.notDeepEqual(m.slice(0, 11), txBytes.slice(0, 11), 'another domain tag than taksa/tx/v1');
  // Length prefix: message boundaries cannot be moved.
  assert.notDeepEqual(messageSigningBytes('ab'), messageSigningBytes(Uint8Array.of(0x61)));

  const sig = key.signMessage('log in to example.org, nonce 42');
  assert.equal(verifyMessage(key.address('tdev'), 'log in to example.org, nonce 42', sig), true, 'by address');
  assert.equal(verifyMessage(key.publicKey, 'log in to example.org, nonce 43', sig), false);
  assert.equal(verifyMessage(bob.publicKey, 'log in to example.org, nonce 42', sig), false);
  assert.equal(verifyMessage('not an address', 'x', sig), false);
  assert.equal(verifyMessage(key.publicKey, 'log in to example.org, nonce 42', key.sign(utf8Bytes('log in to example.org, nonce 42'))), false);
});

function utf8Bytes(s) {
  return new TextEncoder().encode(s);
}

// ---- fake WebSocket nodes -------------------------------------------------------------------------------

function cursor(height, index = 0) {
  return `01${height.toString(16).padStart(16, '0')}${index.toString(16).padStart(8, '0')}`;
}

function blockEvent(height) {
  const c = cursor(height, 0);
  const z = `0x${'00'.repeat(32)}`;
  return { type: 'block', cursor: c, block: { hash: z, height, view: height, parentHash: z, proposer: 'tdev1x', timestampMs: 0, txCount: 0, fees: '0', stateRoot: z, cursor: c } };
}

/**
 * A fake node that holds at most `limit` subscriptions per connection (one more is refused with
 * too_many_subscriptions, -32006, as docs/rpc.md says); `onSubscribe(ctx)` runs for each accepted
 * one; `finalizedHeight()` is what chain_getInfo reports.
 */
async function limitedNode({ limit = 16, onSubscribe = () => {}, finalizedHeight = () => 0 } = {}) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.on('listening', r));
  const stats = { connections: 0, refused: 0, subscribes: [], infos: 0 };
  wss.on('connection', (ws) => {
    const connection = ++stats.connections;
    const live = new Set();
    let next = 1;
    ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw));
      const answer = (result) => ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
      if (msg.method === 'chain_getInfo') {
        stats.infos++;
        answer({ chainId: 'taksa-dev', genesisHash: `0x${'11'.repeat(32)}`, addressHrp: 'tdev', headHeight: finalizedHeight(), finalizedHeight: finalizedHeight(), feeFloor: '1000', accountCreationFee: '100000' });
        return;
      }
      if (msg.method === 'explorer_recentBlocks') {
        answer({ blocks: [blockEvent(1).block], nextBeforeHeight: 1 });
        return;
      }
      if (/unsubscribe/i.test(msg.method)) {
        live.delete(msg.params[0]);
        answer(true);
        return;
      }
      if (live.size >= limit) {
        stats.refused++;
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32006, message: 'too many subscriptions', data: { reason: 'too_many_subscriptions', subscriptionsMax: limit } } }));
        return;
      }
      const sub = next++;
      live.add(sub);
      stats.subscribes.push({ connection, params: msg.params });
      answer(sub);
      onSubscribe({
        params: msg.params,
        connection,
        notify: (result) => ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'events_event', params: { subscription: sub, result } })),
      });
    });
  });
  const { port } = wss.address();
  const close = () =>
    new Promise((r) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => r());
    });
  cleanups.push(close);
  return { url: `ws://127.0.0.1:${port}`, stats, close };
}

function within(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
    }),
  ]);
}

// ---- 4. more subscriptions than a connection holds ---------------------------------------------------------

test('40 subscriptions on one client: 16 per connection, each gets its events, no refusal', async () => {
  const node = await limitedNode({ onSubscribe: (ctx) => ctx.notify(blockEvent(ctx.params[0].fromHeight)) });
  const client = new Client(node.url, { WebSocket, reconnect: { initialDelayMs: 5, maxDelayMs: 20 } });
  cleanups.push(() => client.close());
  const subs = Array.from({ length: 40 }, (_, i) => client.subscribeEvents({ fromHeight: i + 1 }));
  const firsts = await within(Promise.all(subs.map((s) => s.next())), 5000, '40 subscriptions');
  assert.deepEqual(firsts.map((r) => r.value.block.height), subs.map((_, i) => i + 1));
  assert.equal(node.stats.refused, 0, 'the client never asked a full connection');
  assert.equal(node.stats.connections, 3, '16 + 16 + 8');
  // Closing subscriptions frees their slots: the first connection has room again; an extra
  // connection left with none is closed.
  await Promise.all(subs.slice(0, 8).map((s) => s.close()));
  await Promise.all(subs.slice(32).map((s) => s.close()));
  const again = client.subscribeEvents({ fromHeight: 100 });
  assert.equal((await within(again.next(), 5000, 'a subscription after closing')).value.block.height, 100);
  assert.equal(node.stats.connections, 3, 'a freed slot is used again');
  await client.close();
});

test('a node that allows fewer per connection than 16 is taken at its word; one that allows none fails fast', async () => {
  const node = await limitedNode({ limit: 3, onSubscribe: (ctx) => ctx.notify(blockEvent(ctx.params[0].fromHeight)) });
  const client = new Client(node.url, { WebSocket, reconnect: { initialDelayMs: 5, maxDelayMs: 20 } });
  cleanups.push(() => client.close());
  const subs = Array.from({ length: 7 }, (_, i) => client.subscribeEvents({ fromHeight: i + 1 }));
  const firsts = await within(Promise.all(subs.map((s) => s.next())), 5000, '7 subscriptions, 3 per connection');
  assert.deepEqual(firsts.map((r) => r.value.block.height), [1, 2, 3, 4, 5, 6, 7]);
  // 3 accepted and 4 refused on the first, which then counts as full; the 4 move on (one more refusal).
  assert.ok(node.stats.refused >= 4 && node.stats.refused <= 7, `refusals: ${node.stats.refused}`);
  assert.equal(node.stats.connections, 3, '3 + 3 + 1');
  await client.close();

  const none = await limitedNode({ limit: 0 });
  const other = new Client(none.url, { WebSocket, reconnect: { initialDelayMs: 5, maxDelayMs: 20 } });
  cleanups.push(() => other.close());
  const sub = other.subscribeEvents({ fromHeight: 1 });
  await within(
    assert.rejects(sub.next(), (e) => e instanceof RpcError && e.is('too_many_subscriptions')),
    3000,
    'a subscription the node always refuses',
  );
  assert.equal(none.stats.refused, 1, 'refused once, not retried forever');
  await other.close();
});

// ---- 5. a node that stops sending ---------------------------------------------------------------------------------

test('the idle check: a node that finalizes past the last event but sends nothing is left, and the subscription resumes', async () => {
  let finalized = 3;
  const node = await limitedNode({
    finalizedHeight: () => finalized,
    onSubscribe: (ctx) => {
      const after = ctx.params[0].after;
      const from = after ? parseInt(after.slice(2, 18), 16) + 1 : ctx.params[0].fromHeight;
      // The first connection withholds everything after height 3.
      const last = ctx.connection === 1 ? 3 : finalized;
      for (let h = from; h <= last; h++) ctx.notify(blockEvent(h));
    },
  });
  const client = new Client(node.url, { WebSocket, reconnect: { initialDelayMs: 5, maxDelayMs: 20 }, idleTimeoutMs: 150 });
  cleanups.push(() => client.close());
  const sub = client.subscribeEvents({ fromHeight: 1 });
  assert.deepEqual((await take(sub, 3)).map((e) => e.block.height), [1, 2, 3]);
  await new Promise((r) => setTimeout(r, 400)); // idle, but nothing finalized past 3: stays
  assert.equal(sub.stats.stalls, 0);
  assert.ok(node.stats.infos >= 1, 'it asked chain_getInfo');
  assert.equal(node.stats.connections, 1);
  finalized = 6;
  const more = await within(take(sub, 3), 3000, 'events after the stall');
  assert.deepEqual(more.map((e) => e.block.height), [4, 5, 6]);
  assert.equal(sub.stats.stalls, 1);
  assert.deepEqual(node.stats.subscribes.map((s) => s.params), [[{ fromHeight: 1 }], [{ after: cursor(3) }]]);
  await client.close();

  // Off with 0; and never for account subscriptions, which are quiet by nature.
  const quiet = await limitedNode({ finalizedHeight: () => 50 });
  const off = new Client(quiet.url, { WebSocket, idleTimeoutMs: 0 });
  cleanups.push(() => off.close());
  const s1 = off.subscribeEvents({ fromHeight: 1 });
  const onAccount = new Client(quiet.url, { WebSocket, idleTimeoutMs: 50 });
  cleanups.push(() => onAccount.close());
  const s2 = onAccount.accountSubscribe(Keypair.fromMnemonic(DEV_MNEMONIC).address('tdev'), { fromHeight: 1 });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(quiet.stats.infos, 0);
  assert.equal(s1.stats.stalls + s2.stats.stalls, 0);
  await off.close();
  await onAccount.close();
});
