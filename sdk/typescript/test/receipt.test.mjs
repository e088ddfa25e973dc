// docs/receipt-vector.json (read from the repository at test time) verifies with the dev genesis
// of 100 ms blocks and no node, as docs/receipts.md says; tampered copies fail, each at the rule
// that catches it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  decodeCertificate,
  decodeHeader,
  decodeSignedTransaction,
  devGenesis,
  encodeHeader,
  finalizationProblem,
  fromHex,
  genesisHash,
  Keypair,
  ReceiptError,
  signTransaction,
  toHex0x,
  transaction,
  validatorPath,
  DEV_MNEMONIC,
  verifyReceipt,
} from '../dist/index.js';

const vectorPath = fileURLToPath(new URL('../../../docs/receipt-vector.json', import.meta.url));
const vector = JSON.parse(readFileSync(vectorPath, 'utf8'));
const genesis = devGenesis(100);

function fails(receipt, check, g = genesis) {
  assert.throws(
    () => verifyReceipt(receipt, g),
    (e) => {
      assert.ok(e instanceof ReceiptError, `a ReceiptError, got ${e}`);
      assert.equal(e.check, check, e.message);
      return true;
    },
  );
}

/** Flips one hex digit at `at` (0 <-> 1), as the node's own test does. */
function flip(s, at) {
  const c = s[at] === '0' ? '1' : '0';
  return s.slice(0, at) + c + s.slice(at + 1);
}

test('the dev genesis of 100 ms blocks has the vector genesis hash', () => {
  assert.equal(genesisHash(genesis), vector.genesisHash);
});

test('the receipt vector verifies with no node: a transfer at height 1023 of epoch 1', () => {
  const paid = verifyReceipt(vector, genesis);
  assert.equal(paid.height, 1023n);
  assert.equal(paid.epoch, 1n);
  assert.equal(paid.finalHeight, 1023n);
  assert.equal(paid.hash, decodeSignedTransaction(vector.tx).hash);
  assert.equal(paid.tx.tx.amount, 1_000_000_000n);
  assert.equal(paid.tx.tx.fee, 1000n);
  assert.equal(paid.blockHash, toHex0x(decodeCertificate(vector.finalization).blockHash), 'the certificate finalizes the block');
  assert.deepEqual(vector.epochs, []);
  // The same receipt as JSON text verifies too.
  assert.equal(verifyReceipt(JSON.stringify(vector), genesis).height, 1023n);
});

test('a receipt whose transfer amount was changed fails (the signature no longer verifies)', () => {
  const tx = decodeSignedTransaction(vector.tx);
  const bytes = Uint8Array.from(tx.bytes);
  // The amount is the u128 after chain id (8 + 9), from and to (64): offset 81.
  bytes[81] ^= 0x01;
  const changed = decodeSignedTransaction(bytes);
  assert.equal(changed.tx.amount, tx.tx.amount ^ 1n);
  fails({ ...vector, tx: toHex0x(bytes) }, 'tx');
});

test('a receipt whose transfer was re-signed by its sender for a larger amount fails (not in the block)', () => {
  const tx = decodeSignedTransaction(vector.tx).tx;
  const key = Keypair.fromMnemonic(DEV_MNEMONIC);
  assert.equal(toHex0x(key.publicKey), toHex0x(tx.from), 'the vector is a transfer of dev account 0');
  const forged = signTransaction(transaction({ ...tx, amount: tx.amount * 1000n }), key, vector.genesisHash);
  fails({ ...vector, tx: forged.hex }, 'not_included');
});

test('a receipt with a changed transaction signature fails', () => {
  fails({ ...vector, tx: flip(vector.tx, vector.tx.length - 10) }, 'tx');
});

test('a receipt with a changed finalization signature fails', () => {
  const f = vector.finalization;
  fails({ ...vector, finalization: flip(f, f.length - 20) }, 'not_final');
});

test('a receipt checked against another validator set fails', () => {
  // The genesis with another validator has another hash: the receipt is for another chain.
  const other = { ...genesis, validators: [Keypair.fromMnemonic(DEV_MNEMONIC, { path: validatorPath(1) }).publicKey] };
  fails(vector, 'other_chain', other);
  // And the certificate itself does not finalize the block under another set, even with the
  // right domain: the signature is the dev validator's, not the other key's.
  const header = decodeHeader(vector.header);
  const cert = decodeCertificate(vector.finalization);
  const domain = { chainId: 'taksa-dev', genesisHash: fromHex(vector.genesisHash, 32), epoch: 1n };
  assert.equal(finalizationProblem(cert, header, domain, genesis.validators), null);
  assert.match(finalizationProblem(cert, header, domain, other.validators), /does not verify/);
  assert.match(finalizationProblem(cert, header, domain, [...genesis.validators, ...other.validators]), /bitmap|quorum/);
  assert.match(finalizationProblem(cert, header, { ...domain, epoch: 0n }, genesis.validators), /epoch/);
});

test('every byte string of the receipt guards it: flips in tx, header and finalization, an extra path hash, another genesis hash', () => {
  for (const at of [2, 40, 120]) {
    assert.throws(() => verifyReceipt({ ...vector, tx: flip(vector.tx, at) }, genesis), ReceiptError, `tx at ${at}`);
    assert.throws(() => verifyReceipt({ ...vector, header: flip(vector.header, at) }, genesis), ReceiptError, `header at ${at}`);
    assert.throws(
      () => verifyReceipt({ ...vector, finalization: flip(vector.finalization, at) }, genesis),
      ReceiptError,
      `finalization at ${at}`,
    );
  }
  fails({ ...vector, txPath: [flip(vector.genesisHash, 10)] }, 'not_included');
  fails({ ...vector, genesisHash: flip(vector.genesisHash, 10) }, 'other_chain');
  fails({ ...vector, format: 'taksa-receipt/v1' }, 'malformed');
  fails({ ...vector, index: 1 }, 'not_included');
});

test('a header in headersToFinal that does not follow the block fails', () => {
  const header = decodeHeader(vector.header);
  const next = encodeHeader({ ...header, height: header.height + 1n, parentHash: new Uint8Array(32) });
  fails({ ...vector, headersToFinal: [toHex0x(next)] }, 'broken_link');
});

test('a receipt of another network (the 200 ms dev genesis) fails', () => {
  fails(vector, 'other_chain', devGenesis(200));
});

// The vector's validator set never changed, so it carries no link. This receipt is built here,
// with the public dev keys, for a chain of 2-block epochs whose set moves from validator key 0
// to validator key 1 at the end of epoch 0: the link (the boundary header, its finalization by
// the old set, the governance entry and its state proof) must carry the verifier to the new set.
test('a receipt across a change of the validator set verifies through its epoch link, and a forged link fails', async () => {
  const { Writer, governanceKey, treeRoot, validatorSetHash, txRoot, headerHash, voteBytes, sha256, accountPath } = await import('../dist/index.js');
  const v0 = Keypair.fromMnemonic(DEV_MNEMONIC, { path: validatorPath(0) });
  const v1 = Keypair.fromMnemonic(DEV_MNEMONIC, { path: validatorPath(1) });
  const payer = Keypair.fromMnemonic(DEV_MNEMONIC, { path: accountPath(0) });
  const payee = Keypair.fromMnemonic(DEV_MNEMONIC, { path: accountPath(1) });
  const g = {
    chainId: 'taksa-links',
    addressHrp: 'tdev',
    genesisTimeMs: 0n,
    blockTimeMs: 100n,
    feeFloor: 1000n,
    epochLength: 2n,
    validators: [v0.publicKey],
    validatorNames: ['v0'],
    allocations: [[payer.publicKey, 10n ** 15n]],
  };
  const gHash = fromHex(genesisHash(g), 32);
  const zero = new Uint8Array(32);
  const governance = new Writer()
    .vec([[v1.publicKey, 'v1']], (w, [k, n]) => w.fixed(k, 32).string(n))
    .u64(0).u64(0).u64(0)
    .finish();
  const govKey = governanceKey();
  const boundary = {
    chainId: g.chainId, height: 2n, view: 2n, parentHash: zero, proposer: v0.publicKey, timestampMs: 2n,
    txRoot: txRoot([]), evidenceRoot: txRoot([]), stateRoot: treeRoot([[govKey, sha256(governance)]]),
    validatorSetHash: validatorSetHash([v0.publicKey]), parentCert: null,
  };
  const cert = (header, epoch, signer) => {
    const hash = headerHash(header);
    const sig = signer.sign(voteBytes(g.chainId, gHash, epoch, 'finalize', header.view, hash));
    return new Writer().u64(epoch).u32(2).u64(header.view).option(hash, (w, h) => w.fixed(h, 32)).bytes(Uint8Array.of(1)).vec([sig], (w, s) => w.fixed(s, 64)).finish();
  };
  const proof = new Writer().u64(0).u32(1).fixed(govKey, 32).fixed(sha256(governance), 32).finish();
  const tx = signTransaction(
    transaction({ chainId: g.chainId, from: payer.publicKey, to: payee.publicKey, amount: 5n, fee: 100_000n, nonce: 0 }),
    payer,
    gHash,
  );
  const block = {
    ...boundary, height: 3n, view: 1n, parentHash: headerHash(boundary), proposer: v1.publicKey,
    txRoot: txRoot([fromHex(tx.hash, 32)]), stateRoot: zero, validatorSetHash: validatorSetHash([v1.publicKey]),
  };
  const link = { header: toHex0x(encodeHeader(boundary)), finalization: toHex0x(cert(boundary, 0n, v0)), governance: toHex0x(governance), proof: toHex0x(proof) };
  const receipt = {
    format: 'taksa-receipt/v3', chainId: g.chainId, genesisHash: toHex0x(gHash), tx: tx.hex, index: 0, txCount: 1, txPath: [],
    header: toHex0x(encodeHeader(block)), headersToFinal: [], finalization: toHex0x(cert(block, 1n, v1)), epochs: [link],
  };
  const paid = verifyReceipt(receipt, g);
  assert.equal(paid.epoch, 1n);
  assert.equal(paid.tx.tx.amount, 5n);

  fails({ ...receipt, epochs: [] }, 'not_final', g); // without the link, the genesis set did not sign
  fails({ ...receipt, epochs: [{ ...link, finalization: toHex0x(cert(boundary, 0n, v1)) }] }, 'not_final', g); // the new set cannot vouch for itself
  const otherGov = new Writer().vec([[payee.publicKey, 'x']], (w, [k, n]) => w.fixed(k, 32).string(n)).u64(0).u64(0).u64(0).finish();
  fails({ ...receipt, epochs: [{ ...link, governance: toHex0x(otherGov) }] }, 'not_final', g); // not the entry the state holds
  fails({ ...receipt, epochs: [link, link] }, 'not_final', g); // links in increasing order only
});
