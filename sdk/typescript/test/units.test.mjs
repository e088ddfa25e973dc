// Amounts, addresses, mnemonics and paths, ZIP-215 verification, the state tree vector of
// docs/state-tree.md, the encoding of validator votes, and the decoder's refusals.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  AddressError,
  AmountError,
  changeId,
  CodecError,
  decodeAddress,
  decodeSignedTransaction,
  encodeAction,
  encodeAddress,
  formatAmount,
  generateMnemonic,
  innerHash,
  isAccountKey,
  Keypair,
  KeyError,
  leafHash,
  parseAddress,
  parseAmount,
  parseBaseUnits,
  parsePath,
  signTransaction,
  toHex,
  treeRoot,
  validateMnemonic,
  verify,
  verifyTreeProof,
  voteTransaction,
  U128_MAX,
} from '../dist/index.js';

test('decimal TKS amounts convert exactly to base units and back', () => {
  assert.equal(parseAmount('1.5'), 1_500_000_000n);
  assert.equal(parseAmount('0.000000001'), 1n);
  assert.equal(parseAmount('42'), 42_000_000_000n);
  assert.equal(parseAmount('.25'), 250_000_000n);
  assert.equal(parseAmount('0'), 0n);
  assert.equal(parseAmount('007.000000010'), 7_000_000_010n);
  assert.equal(formatAmount(1_500_000_000n), '1.5');
  assert.equal(formatAmount(1n), '0.000000001');
  assert.equal(formatAmount(1000n), '0.000001');
  assert.equal(formatAmount(3_000_000_000n), '3');
  assert.equal(formatAmount('2500'), '0.0000025');
  for (const v of [0n, 1n, 999n, 1_000_000_001n, 10n ** 15n, U128_MAX]) assert.equal(parseAmount(formatAmount(v)), v);
  assert.equal(parseAmount('12.5', 2), 1250n, 'another number of decimals');
});

test('ambiguous or oversized amounts are refused', () => {
  for (const bad of ['', '.', '1.', '-1', '+1', '1e9', '1,5', '1.2.3', ' 1', '1 ', '0x10', '١', '0.0000000001']) {
    assert.throws(() => parseAmount(bad), AmountError, JSON.stringify(bad));
  }
  const maxWhole = U128_MAX / 10n ** 9n;
  assert.equal(parseAmount(maxWhole.toString()), maxWhole * 10n ** 9n);
  assert.throws(() => parseAmount((maxWhole + 1n).toString()), AmountError);
  assert.throws(() => parseAmount('9'.repeat(60)), AmountError);
  assert.equal(parseBaseUnits('340282366920938463463374607431768211455'), U128_MAX);
  assert.throws(() => parseBaseUnits('340282366920938463463374607431768211456'), AmountError);
  assert.throws(() => parseBaseUnits('1.5'), AmountError);
});

test('addresses: bech32m only, the network prefix, lower or upper case but never mixed', () => {
  const key = Keypair.fromMnemonic('test test test test test test test test test test test junk');
  const a = encodeAddress(key.publicKey, 'tks');
  assert.equal(a.length, 62, 'a tks address has 62 characters');
  assert.deepEqual(decodeAddress(a, 'tks'), key.publicKey);
  assert.deepEqual(decodeAddress(a.toUpperCase(), 'tks'), key.publicKey);
  assert.throws(() => decodeAddress(`T${a.slice(1)}`, 'tks'), AddressError, 'mixed case');
  assert.throws(
    () => decodeAddress(key.address('tdev'), 'tks'),
    (e) => e instanceof AddressError && e.got === 'tdev',
  );
  assert.throws(() => decodeAddress(`${a.slice(0, -1)}${a.endsWith('q') ? 'p' : 'q'}`, 'tks'), AddressError, 'checksum');
  assert.equal(parseAddress(a).hrp, 'tks');
});

test('a plain bech32 (not bech32m) checksum is refused', async () => {
  const { bech32 } = await import('@scure/base');
  const key = Keypair.fromMnemonic('test test test test test test test test test test test junk');
  const old = bech32.encode('tks', bech32.toWords(key.publicKey));
  assert.throws(() => decodeAddress(old, 'tks'), AddressError);
});

test('mnemonics: 12 to 24 words with a valid checksum, any case and spacing; paths hardened only', () => {
  const m = generateMnemonic();
  assert.equal(m.split(' ').length, 24);
  assert.ok(validateMnemonic(m));
  assert.ok(validateMnemonic(`  ${m.toUpperCase().replace(/ /g, '\n ')} `));
  assert.equal(generateMnemonic(12).split(' ').length, 12);
  assert.ok(!validateMnemonic('test test test test test test test test test test test test'), 'bad checksum');
  assert.throws(() => Keypair.fromMnemonic('not a mnemonic'), KeyError);
  const a = Keypair.fromMnemonic('test test test test test test test test test test test junk', { account: 3 });
  const b = Keypair.fromMnemonic('TEST test  test test test test test test test test test junk', { path: "m/44H/7331h/3'/0'" });
  assert.deepEqual(a.publicKey, b.publicKey);
  assert.deepEqual(parsePath("m/44'/7331'/0'/1'"), [44, 7331, 0, 1]);
  for (const bad of ["m/44'/7331'/0", "44'/0'", "m/2147483648'", "m/x'"]) assert.throws(() => parsePath(bad), KeyError, bad);
  assert.doesNotMatch(String(a), /[0-9a-f]{64}/, 'a key pair never prints its secret');
});

test('ZIP-215: the identity key with R = identity and S = 0 verifies for every message; S >= l does not', () => {
  const identity = new Uint8Array(32);
  identity[0] = 1;
  const sig = new Uint8Array(64);
  sig[0] = 1;
  assert.ok(verify(identity, new TextEncoder().encode('any message'), sig));
  assert.ok(!isAccountKey(identity), 'but the identity can never be an account key');
  const key = Keypair.fromMnemonic('test test test test test test test test test test test junk');
  const msg = new TextEncoder().encode('hello');
  const good = key.sign(msg);
  assert.ok(verify(key.publicKey, msg, good));
  // S + l is the same scalar, non-canonical: refused.
  const l = 2n ** 252n + 27742317777372353535851937790883648493n;
  let s = 0n;
  for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(good[32 + i]);
  s += l;
  const bad = Uint8Array.from(good);
  for (let i = 0; i < 32; i++) bad[32 + i] = Number((s >> (8n * BigInt(i))) & 0xffn);
  assert.ok(!verify(key.publicKey, msg, bad));
  assert.ok(isAccountKey(key.publicKey));
});

test('the state tree vector of docs/state-tree.md: root and proofs', () => {
  const k = (b) => Uint8Array.from([b, ...new Array(31).fill(0)]);
  const v = (b) => new Uint8Array(32).fill(b);
  assert.equal(toHex(leafHash(k(0x00), v(1))), '4fbcd862232fc131a874fd29d738e5d318318d799b44da38ac397fc3e2f89d5f');
  assert.equal(toHex(leafHash(k(0xc0), v(3))), '7f49a387991db6ed44ed8d54a85daa30bb8371cd949790f3d9e13fca40ebaf6e');
  assert.equal(
    toHex(innerHash(leafHash(k(0x80), v(2)), leafHash(k(0xc0), v(3)))),
    'a56cf7ad924e17a27f879f3e7a97074e3ffd93b8c67893be88f83834512ef3e2',
  );
  const root = treeRoot([
    [k(0x00), v(1)],
    [k(0x80), v(2)],
    [k(0xc0), v(3)],
  ]);
  assert.equal(toHex(root), '6db5349e21fdf0ab71ae513ab5c910c2b635f7e27ed3a16b48d58f4ff658a623');
  const siblings = [leafHash(k(0x00), v(1)), leafHash(k(0xc0), v(3))];
  const leaf = { kind: 'leaf', key: k(0x80), valueHash: v(2) };
  assert.ok(verifyTreeProof(root, k(0x80), v(2), { siblings, terminal: leaf }));
  assert.ok(!verifyTreeProof(root, k(0x80), v(9), { siblings, terminal: leaf }));
  const absent = { siblings: [innerHash(leafHash(k(0x80), v(2)), leafHash(k(0xc0), v(3)))], terminal: { kind: 'leaf', key: k(0x00), valueHash: v(1) } };
  assert.ok(verifyTreeProof(root, k(0x40), null, absent), '0x40… is absent');
  assert.ok(!verifyTreeProof(root, k(0x00), null, absent), 'a present key is not proven absent');
});

test('validator votes encode as the doc lays out Action and Change, and decode back', () => {
  const validator = Keypair.fromMnemonic('test test test test test test test test test test test junk', { path: "m/44'/7331'/0'/1'" });
  const newKey = Keypair.fromMnemonic('test test test test test test test test test test test junk', { path: "m/44'/7331'/1'/1'" });
  const add = { kind: 'add', key: newKey.publicKey, name: 'bank-5' };
  assert.equal(toHex(encodeAction({ kind: 'vote', change: add })), `00000000` + `00000000` + toHex(newKey.publicKey) + '0600000000000000' + toHex(new TextEncoder().encode('bank-5')));
  assert.equal(toHex(encodeAction({ kind: 'vote', change: { kind: 'remove', key: newKey.publicKey } })), '00000000' + '01000000' + toHex(newKey.publicKey));
  const id = changeId(add);
  assert.equal(toHex(encodeAction({ kind: 'withdraw', changeId: id })), '01000000' + toHex(id));
  const proof = new Uint8Array(64).fill(7);
  const rotate = { kind: 'rotate', old: validator.publicKey, new: newKey.publicKey, proof };
  assert.equal(toHex(encodeAction({ kind: 'vote', change: rotate })).slice(0, 16), '0000000002000000');
  const tx = voteTransaction({ chainId: 'taksa-dev', validator: validator.publicKey, nonce: 0, action: { kind: 'vote', change: rotate } });
  const signed = signTransaction(tx, validator, new Uint8Array(32));
  const back = decodeSignedTransaction(signed.bytes);
  assert.equal(back.tx.action.kind, 'vote');
  assert.equal(back.tx.action.change.kind, 'rotate');
  assert.deepEqual(back.tx.action.change.proof, proof);
  assert.equal(back.hash, signed.hash);
});

test('the decoder refuses trailing bytes, truncation, bad tags, oversized input and invalid UTF-8', () => {
  const key = Keypair.fromMnemonic('test test test test test test test test test test test junk');
  const tx = voteTransaction({ chainId: 'taksa-dev', validator: key.publicKey, nonce: 1, action: { kind: 'withdraw', changeId: new Uint8Array(32) } });
  const bytes = signTransaction(tx, key, new Uint8Array(32)).bytes;
  assert.throws(() => decodeSignedTransaction(Uint8Array.from([...bytes, 0])), CodecError, 'trailing');
  assert.throws(() => decodeSignedTransaction(bytes.slice(0, -1)), CodecError, 'truncated');
  const badTag = Uint8Array.from(bytes);
  badTag[8 + 9 + 64 + 32 + 8] = 2; // the valid_until_height option tag
  assert.throws(() => decodeSignedTransaction(badTag), CodecError, 'option tag 2');
  assert.throws(() => decodeSignedTransaction(new Uint8Array(1025)), CodecError, 'over 1024 bytes');
  const badUtf8 = Uint8Array.from(bytes);
  badUtf8[8] = 0xff; // first byte of the chain id
  assert.throws(() => decodeSignedTransaction(badUtf8), CodecError, 'invalid UTF-8');
  const hugeLength = Uint8Array.from(bytes);
  hugeLength.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], 0);
  assert.throws(() => decodeSignedTransaction(hugeLength), CodecError, 'a forged length');
});
