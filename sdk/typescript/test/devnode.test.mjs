// Against a real `taksa dev --instant` started here (TAKSA_BIN): a transfer signed in TypeScript
// from a dev account to a fresh mnemonic's address, its effect on the balances (amount and fee),
// the history of both addresses, its receipt checked with no node, a validator's vote, typed
// errors, and every call method of rpc/openrpc.json.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import WebSocket from 'ws';

import {
  changeId,
  Client,
  DEV_MNEMONIC,
  decodeAddress,
  devGenesis,
  generateMnemonic,
  genesisHash,
  Keypair,
  parseAmount,
  parseBaseUnits,
  RPC_SUBSCRIPTIONS,
  RpcError,
  clientMethodName,
  signTransaction,
  toHex0x,
  transaction,
  validatorPath,
  verifyReceipt,
  voteTransaction,
} from '../dist/index.js';
import { DevNode } from './helpers/node.mjs';

const spec = JSON.parse(readFileSync(fileURLToPath(new URL('../../../rpc/openrpc.json', import.meta.url)), 'utf8'));
let node;
let client;
let info;
const dev0 = Keypair.fromMnemonic(DEV_MNEMONIC, { account: 0 });
const alice = Keypair.fromMnemonic(generateMnemonic());
let first; // the first transfer's final status

before(async () => {
  node = await DevNode.start({ label: 'devnode', instant: true });
  client = new Client(node.url, { WebSocket });
  info = await client.info();
});

after(async () => {
  await client?.close();
  await node?.destroy();
});

test('the node serves exactly the committed rpc/openrpc.json, and its genesis is the SDK dev genesis', async () => {
  assert.deepEqual(await client.rpcDiscover(), spec);
  assert.equal(info.chainId, 'taksa-dev');
  assert.equal(info.genesisHash, genesisHash(devGenesis(info.blockTimeMs)));
  assert.equal(dev0.address(info.addressHrp), 'tdev1ze6m3239k9ns3faxvzjjehyr0nam2fml7xhe9ujfmyqt9v2nfn4q8yqjuj');
});

test('a transfer to a fresh address moves exactly the amount, pays the fee to the proposer, and shows in both histories', async () => {
  const hrp = info.addressHrp;
  const from = dev0.address(hrp);
  const to = alice.address(hrp);
  const proposer = info.validators[0].address;
  const [fromBefore, toBefore, proposerBefore] = await Promise.all([client.balance(from), client.balance(to), client.balance(proposer)]);
  assert.equal(toBefore, 0n);

  const amount = parseAmount('2.5');
  const signed = await client.transfer(dev0, { to, amount, memo: 'from the TypeScript SDK ☕' });
  // A new account: the fee defaults to the account-creation fee, which the node requires.
  assert.equal(signed.tx.fee, parseBaseUnits(info.accountCreationFee));
  // Submitting the same bytes again is idempotent.
  assert.equal(await client.submit(signed), signed.hash);
  first = await client.waitForTransaction(signed.hash);
  assert.equal(first.status, 'finalized');
  assert.equal(first.tx.memo, 'from the TypeScript SDK ☕');
  assert.equal(first.tx.amount, amount.toString());

  const block = await client.chainGetBlock(first.height);
  assert.equal(block.proposer, proposer);
  assert.deepEqual(block.txs.map((t) => t.hash), [signed.hash], 'the block holds this transfer alone');
  const [fromAfter, toAfter, proposerAfter] = await Promise.all([client.balance(from), client.balance(to), client.balance(proposer)]);
  assert.equal(toAfter - toBefore, amount, 'the recipient gained the amount');
  assert.equal(fromBefore - fromAfter, amount + signed.tx.fee, 'the sender paid amount + fee');
  assert.equal(proposerAfter - proposerBefore, signed.tx.fee, 'the proposer collected the fee');
  assert.equal(BigInt(block.fees ?? signed.tx.fee), signed.tx.fee);

  const sent = await client.accountGetHistory(from, { direction: 'sent', limit: 5 });
  const got = await client.accountGetHistory(to);
  const mine = sent.items.find((i) => i.hash === signed.hash);
  assert.ok(mine, 'in the sender history');
  assert.equal(mine.direction, 'sent');
  assert.equal(mine.amount, amount.toString());
  assert.equal(got.items.length, 1);
  assert.equal(got.items[0].hash, signed.hash);
  assert.equal(got.items[0].direction, 'received');
  assert.equal(got.items[0].fee, signed.tx.fee.toString());
});

test('the fresh account sends back with the fee floor; the receipt of the first transfer verifies with no node', async () => {
  assert.ok(first, 'the first transfer is final');
  const hrp = info.addressHrp;
  const back = await client.transfer(alice, { to: dev0.address(hrp), amount: parseAmount('1') });
  assert.equal(back.tx.fee, parseBaseUnits(info.feeFloor), 'an existing recipient needs only the fee floor');
  assert.equal(back.tx.nonce, 0n);
  await client.waitForTransaction(back.hash);
  assert.equal(await client.balance(alice.address(hrp)), parseAmount('2.5') - parseAmount('1') - 1000n);
  const history = await client.accountGetHistory(alice.address(hrp), { order: 'oldest' });
  assert.deepEqual(history.items.map((i) => i.direction), ['received', 'sent']);

  const receipt = await client.receipt(first.hash);
  assert.equal(receipt.format, 'taksa-receipt/v3', 'the node answers taksa-receipt/v3');
  const paid = verifyReceipt(receipt, devGenesis(info.blockTimeMs));
  assert.equal(paid.hash, first.hash);
  assert.equal(paid.height, BigInt(first.height));
  assert.equal(paid.blockHash, first.blockHash);
});

test("a validator's vote to add a validator, signed in TypeScript, passes with the node computing the same change id", async () => {
  const validator = Keypair.fromMnemonic(DEV_MNEMONIC, { path: validatorPath(0) });
  const candidate = Keypair.fromMnemonic(DEV_MNEMONIC, { path: validatorPath(1) });
  assert.equal(validator.address(info.addressHrp), info.validators[0].address);
  const change = { kind: 'add', key: candidate.publicKey, name: 'ts-sdk' };
  const nonce = await client.accountGetNonce(validator.address(info.addressHrp));
  const tx = voteTransaction({ chainId: info.chainId, validator: validator.publicKey, nonce, action: { kind: 'vote', change } });
  const signed = signTransaction(tx, validator, info.genesisHash);
  await client.submit(signed);
  await client.waitForTransaction(signed.hash);
  const votes = await client.validatorsGetPendingVotes();
  const passed = votes.passed.find((p) => p.id === toHex0x(changeId(change)));
  assert.ok(passed, `the change passed with id ${toHex0x(changeId(change))}: ${JSON.stringify(votes)}`);
  assert.deepEqual(passed.change, { kind: 'add', key: candidate.address(info.addressHrp), name: 'ts-sdk' });
});

test('refusals are typed RpcErrors with code, reason and data', async () => {
  const hrp = info.addressHrp;
  const nonce = await client.accountGetNonce(dev0.address(hrp));
  const base = { chainId: info.chainId, from: dev0.publicKey, to: alice.publicKey, amount: 1n, fee: 1000n };
  const gap = signTransaction(transaction({ ...base, nonce: nonce + 100 }), dev0, info.genesisHash);
  await assert.rejects(client.submit(gap), (e) => {
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, 1005);
    assert.equal(e.reason, 'nonce_gap');
    assert.ok(e.is('nonce_gap'));
    assert.equal(e.data.expected, nonce);
    return true;
  });
  const identity = new Uint8Array(32);
  identity[0] = 1;
  const burn = signTransaction(transaction({ ...base, to: identity, nonce }), dev0, info.genesisHash);
  await assert.rejects(client.submit(burn), (e) => e instanceof RpcError && e.code === 1012 && e.reason === 'bad_recipient');
  const otherNet = signTransaction(transaction({ ...base, nonce }), dev0, new Uint8Array(32));
  await assert.rejects(client.submit(otherNet), (e) => e instanceof RpcError && e.reason === 'bad_signature');
  await assert.rejects(client.accountGet('tks1qqqq'), (e) => e instanceof RpcError && e.code === 3001);
  await assert.rejects(client.call('events_subscribe', []), (e) => e instanceof RpcError && e.reason === 'websocket_required');
  await assert.rejects(client.txGet(`0x${'00'.repeat(32)}`), (e) => e instanceof RpcError && e.is('tx_not_found'));
});

test('every method of rpc/openrpc.json has a typed client method, and every call method answers', async () => {
  const hrp = info.addressHrp;
  const addr = dev0.address(hrp);
  const unsubscribes = new Set(Object.values(RPC_SUBSCRIPTIONS).map((s) => s.unsubscribe));
  for (const m of spec.methods) {
    if (unsubscribes.has(m.name)) continue; // Subscription.close() sends them
    assert.equal(typeof client[clientMethodName(m.name)], 'function', `client.${clientMethodName(m.name)} for ${m.name}`);
  }
  const bytes = signTransaction(
    transaction({ chainId: info.chainId, from: dev0.publicKey, to: alice.publicKey, amount: 1n, fee: 1000n, nonce: await client.accountGetNonce(addr) }),
    dev0,
    info.genesisHash,
  );
  const calls = {
    chain_getInfo: () => client.chainGetInfo(),
    chain_getBlock: () => client.chainGetBlock(1),
    account_get: () => client.accountGet(addr),
    account_getBalance: () => client.accountGetBalance(addr),
    account_getNonce: () => client.accountGetNonce(addr),
    account_getProof: () => client.accountGetProof(addr),
    account_getHistory: () => client.accountGetHistory(addr, { limit: 1 }),
    tx_submit: () => client.txSubmit(bytes.hex),
    tx_submitBatch: () => client.txSubmitBatch([bytes.hex, '0xzz']),
    tx_getProof: () => client.txGetProof(first.hash),
    tx_get: () => client.txGet(first.hash),
    node_health: () => client.nodeHealth(),
    node_info: () => client.nodeInfo(),
    node_peers: () => client.nodePeers(),
    validators_getSet: () => client.validatorsGetSet(),
    validators_getPendingVotes: () => client.validatorsGetPendingVotes(),
    consensus_getStatus: () => client.consensusGetStatus(),
    consensus_getEvidence: () => client.consensusGetEvidence(10),
    explorer_search: () => client.explorerSearch('1'),
    explorer_recentBlocks: () => client.explorerRecentBlocks({ limit: 2 }),
    explorer_getStats: () => client.explorerGetStats({ window: 10 }),
    explorer_getValidators: () => client.explorerGetValidators(),
    'rpc.discover': () => client.rpcDiscover(),
  };
  const callMethods = spec.methods.map((m) => m.name).filter((n) => !(n in RPC_SUBSCRIPTIONS) && !unsubscribes.has(n));
  assert.deepEqual(Object.keys(calls).sort(), callMethods.sort(), 'this test calls every call method');
  const results = {};
  for (const [name, call] of Object.entries(calls)) results[name] = await call();
  assert.equal(results.tx_submit, bytes.hash);
  assert.deepEqual(results.tx_submitBatch[0], { hash: bytes.hash });
  assert.equal(results.tx_submitBatch[1].error.code, 1001);
  assert.equal(results.account_getProof.address, addr);
  assert.equal(results.explorer_search.kind, 'block');
  assert.equal(results.node_info.role, 'validator');
  assert.equal(results.validators_getSet.validators[0].address, info.validators[0].address);
  assert.deepEqual(decodeAddress(results.account_get.address, hrp), dev0.publicKey);

  // The same calls over the WebSocket transport.
  const wsClient = new Client(node.wsUrl, { WebSocket });
  try {
    assert.equal((await wsClient.chainGetInfo()).genesisHash, info.genesisHash);
    assert.equal(await wsClient.accountGetBalance(addr), await client.accountGetBalance(addr));
    await assert.rejects(wsClient.accountGet('nope'), (e) => e instanceof RpcError && e.code === 3001);
  } finally {
    await wsClient.close();
  }
});

test('a transaction status subscription ends with the final status; an account subscription replays from a height', async () => {
  const hrp = info.addressHrp;
  const statuses = client.txSubscribeStatus(first.hash);
  const seen = [];
  for await (const s of statuses) seen.push(s);
  assert.deepEqual(seen.map((s) => [s.type, s.status]), [['status', 'finalized']]);

  const activity = client.subscribeAccount(alice.address(hrp), { fromHeight: 1 });
  const got = [];
  for await (const a of activity) {
    got.push(a);
    if (got.length === 2) break;
  }
  assert.deepEqual(got.map((a) => a.direction), ['received', 'sent']);
  assert.equal(got[0].hash, first.hash);
  assert.equal(got[0].balanceAfter, parseAmount('2.5').toString());
});

test('a live subscription (no start) is anchored at the head: it gets the next transfer and nothing older', async () => {
  const hrp = info.addressHrp;
  const live = client.accountSubscribe(alice.address(hrp));
  const events = client.eventsSubscribe();
  // Let both subscribe before the transfer is sent.
  await new Promise((r) => setTimeout(r, 200));
  const signed = await client.transfer(dev0, { to: alice.address(hrp), amount: 7n });
  const activity = (await live.next()).value;
  assert.equal(activity.hash, signed.hash, 'the first activity is the new transfer, not the older ones');
  assert.equal(activity.direction, 'received');
  const first = (await events.next()).value;
  assert.equal(first.type, 'transfer');
  assert.equal(first.transfer.hash, signed.hash);
  assert.equal((await events.next()).value.type, 'block', 'then its block');
  await live.close();
  await events.close();
});

test('new heads announce a block notarized, then finalized with its cursor; the finalized stream has the same block', async () => {
  const heads = client.chainSubscribeNewHeads();
  const finalized = client.chainSubscribeFinalized();
  await new Promise((r) => setTimeout(r, 200));
  const signed = await client.transfer(dev0, { to: alice.address(info.addressHrp), amount: 3n });
  const status = await client.waitForTransaction(signed.hash);
  const seen = [];
  while (!seen.some((h) => h.status === 'finalized')) seen.push((await heads.next()).value);
  const final = seen.at(-1);
  assert.equal(final.block.height, status.height);
  assert.equal(final.block.hash, status.blockHash);
  assert.match(final.cursor, /^[0-9a-f]+$/);
  for (const h of seen.slice(0, -1)) assert.equal(h.status, 'notarized');
  const block = (await finalized.next()).value;
  assert.equal(block.type, 'block');
  assert.equal(block.block.hash, status.blockHash);
  assert.equal(block.cursor, final.cursor);
  await heads.close();
  await finalized.close();
});
