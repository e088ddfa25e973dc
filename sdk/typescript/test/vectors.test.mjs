// Every vector of docs/test-vectors.json (read from the repository at test time, never copied):
// keys, addresses, signing bytes, signatures, encodings and hashes, plus the worked example of
// docs/transaction-format.md section 4 and the SLIP-0010 / Solana cross-checks it cites.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  decodeAddress,
  decodeSignedTransaction,
  deriveSlip10,
  encodeAddress,
  encodeTransaction,
  isAccountKey,
  Keypair,
  checkTransaction,
  mnemonicToSeed,
  signingBytes,
  signTransaction,
  toHex,
  transaction,
  transactionHash,
  TransactionRuleError,
  verifyTransactionSignature,
} from '../dist/index.js';

const vectorsPath = fileURLToPath(new URL('../../../docs/test-vectors.json', import.meta.url));
const { vectors } = JSON.parse(readFileSync(vectorsPath, 'utf8'));

test('the vector file has vectors', () => {
  assert.ok(vectors.length >= 5, `${vectors.length} vectors in ${vectorsPath}`);
});

for (const v of vectors) {
  test(`vector ${v.name}: every derived field matches`, () => {
    const key = Keypair.fromMnemonic(v.mnemonic, { path: v.path });
    assert.equal(toHex(key.secretKey()), v.secretKeyHex, 'secretKeyHex');
    assert.equal(toHex(key.publicKey), v.publicKeyHex, 'publicKeyHex');
    assert.equal(key.address(v.hrp), v.address, 'address');
    assert.equal(v.tx.from, v.address, 'tx.from is the address');

    const tx = transaction({
      chainId: v.tx.chainId,
      from: key.publicKey,
      to: v.tx.to,
      hrp: v.hrp,
      amount: BigInt(v.tx.amount),
      fee: BigInt(v.tx.fee),
      nonce: BigInt(v.tx.nonce),
      validUntilHeight: v.tx.validUntilHeight === null ? null : BigInt(v.tx.validUntilHeight),
      memo: v.tx.memo,
    });
    assert.equal(toHex(signingBytes(tx, v.genesisHash)), v.signingBytesHex, 'signingBytesHex');
    const signed = signTransaction(tx, key, v.genesisHash);
    assert.equal(toHex(signed.signature), v.signatureHex, 'signatureHex');
    assert.equal(toHex(signed.bytes), v.encodedHex, 'encodedHex');
    assert.equal(signed.hash, v.hash, 'hash');
    assert.equal(transactionHash(signed.bytes), v.hash, 'hash of the bytes');
    assert.ok(verifyTransactionSignature(signed, v.genesisHash), 'the signature verifies');

    // Decoding the bytes gives back the same transaction, and re-encodes to the same bytes.
    const decoded = decodeSignedTransaction(`0x${v.encodedHex}`);
    assert.equal(toHex(encodeTransaction(decoded.tx)), toHex(encodeTransaction(tx)));
    assert.equal(decoded.hash, v.hash);
    assert.equal(encodeAddress(decoded.tx.to, v.hrp), v.tx.to);
    assert.equal(decoded.tx.memo, v.tx.memo);

    // Valid vectors pass the node's stateless rules; a refused one fails with the node's reason.
    if (v.refused === undefined) {
      checkTransaction(tx, { chainId: v.tx.chainId });
    } else {
      assert.throws(
        () => checkTransaction(tx, { chainId: v.tx.chainId }),
        (e) => e instanceof TransactionRuleError && e.reason === v.refused,
      );
      assert.equal(isAccountKey(decodeAddress(v.tx.to, v.hrp)), false);
    }
  });
}

// docs/transaction-format.md section 4 still shows this transaction as 227 bytes (163 + 64)
// with signature 3b1f48… and hash 0x49f686…: the bytes from before `action` was added. The
// vector file, which the node's tests regenerate, has the `action` tag (00) at offset 163, so
// 164 + 64 = 228 bytes. This test pins both facts: every field the doc lists up to offset 163
// is in the vector's bytes, the doc's old signature is the signature of those 163 bytes without
// the tag, and the node's encoding (the vector) has the tag.
test('the worked example of transaction-format.md section 4: its fields match; the vector adds the action tag', () => {
  const v = vectors.find((x) => x.name === 'testnet-account-0-memo-and-expiry');
  const key = Keypair.fromMnemonic(v.mnemonic);
  assert.equal(toHex(key.secretKey()), '9be7e4a4c5ba7a60838d4991ba7f1890018995d8b221e74b2562fce020c78403');
  assert.equal(toHex(key.publicKey), 'ea4553bc67167e67237b4c246e1ec23d3c7ac39af8bc49b09cbacbc122775ff0');
  assert.equal(key.address('tks'), 'tks1afz480r8zelxwgmmfsjxu8kz85784su6lz7ynvyuht9uzgnhtlcqeefcjf');
  const docRows = [
    [0, '0f00000000000000'],
    [8, '74616b73612d746573746e65742d31'],
    [23, 'ea4553bc67167e67237b4c246e1ec23d3c7ac39af8bc49b09cbacbc122775ff0'],
    [55, 'bcf80e49fa37f8aafe3a8c9344464b80ed94bde37ade8e59fdd6cb4431943d06'],
    [87, '2a000000000000000000000000000000'],
    [103, 'c4090000000000000000000000000000'],
    [119, '0700000000000000'],
    [127, '01'],
    [128, 'e803000000000000'],
    [136, '01'],
    [137, '1200000000000000'],
    [145, '636f6666656520e2989520666f722074776f'],
  ];
  for (const [offset, hex] of docRows) assert.equal(v.encodedHex.slice(2 * offset, 2 * offset + hex.length), hex, `offset ${offset}`);
  assert.equal(v.encodedHex.slice(2 * 163, 2 * 164), '00', 'the action tag (none) at offset 163');
  assert.equal(v.encodedHex.length / 2, 228);
  const withoutAction = Uint8Array.from(Buffer.from(v.encodedHex.slice(0, 2 * 163), 'hex'));
  const genesis = Buffer.from(v.genesisHash.slice(2), 'hex');
  const oldSigning = Buffer.concat([Buffer.from('taksa/tx/v1'), genesis, withoutAction]);
  assert.equal(oldSigning.length, 206, "the doc's 206 signing bytes");
  const oldSignature = key.sign(oldSigning);
  assert.equal(
    toHex(oldSignature),
    '3b1f4811d93480ff4cfad3839796166d1e6dc6e467764f30dba1ed363307f80fa6d1a4765c566c400569315a2a233fc4e56fae42ff3d02e9a3c860166c1e3207',
    "the doc's signature is over the bytes without the action tag",
  );
  assert.equal(
    transactionHash(Buffer.concat([withoutAction, oldSignature])),
    '0x49f686ff67019226c70b72088b639883d37419d8fa93d048d93db80eb880587d',
  );
});

test('a plain dev transfer is 124 bytes before its signature, as the doc computes', () => {
  const v = vectors.find((x) => x.name === 'dev-account-0-plain-transfer');
  assert.equal(v.encodedHex.length / 2 - 64, 124);
});

test('SLIP-0010 test vector 1 for ed25519 (chain m/0H/1H/2H/2H/1000000000H)', () => {
  const seed = Uint8Array.from(Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'));
  const m = deriveSlip10(seed, 'm');
  assert.equal(toHex(m.chainCode), '90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb');
  assert.equal(toHex(m.privateKey), '2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7');
  const leaf = deriveSlip10(seed, "m/0'/1'/2'/2'/1000000000'");
  assert.equal(toHex(leaf.chainCode), '68789923a0cac2cd5a29172a475fe9e0fb14cd6adb5ad98a3fa70333e7afa230');
  assert.equal(toHex(leaf.privateKey), '8f94d394a8e8fd6b1bc2f3f49f5c47e385281d5c17e65324b0f62483e37e8793');
  assert.equal(
    toHex(Keypair.fromSecretKey(leaf.privateKey).publicKey),
    '3c24da049451555d51a7014a37337aa4e12d41e485abccfa46b47dfb2af54b7a',
  );
});

test("the abandon…about mnemonic at Solana's path gives Solana's published address", async () => {
  const { base58 } = await import('@scure/base');
  const key = Keypair.fromMnemonic(
    'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about',
    { path: "m/44'/501'/0'/0'" },
  );
  assert.equal(base58.encode(key.publicKey), 'HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk');
});

test('the BIP39 seed is PBKDF2 of the mnemonic with the empty passphrase (reference vector)', () => {
  // BIP39 reference: "abandon ... about" with passphrase TREZOR.
  const seed = mnemonicToSeed(
    'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about',
    'TREZOR',
  );
  assert.equal(
    toHex(seed),
    'c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04',
  );
});
