/**
 * Transactions (docs/transaction-format.md sections 3 and 4): the canonical bytes, what is
 * signed, the signed transaction and its hash, for transfers and for validators' votes on the
 * validator set (docs/validator-changes.md).
 *
 * ```
 * encode(Transaction) = chain_id (String) ‖ from (32) ‖ to (32) ‖ amount (u128) ‖ fee (u128)
 *                       ‖ nonce (u64) ‖ valid_until_height (Option<u64>) ‖ memo (Option<String>)
 *                       ‖ action (Option<Action>)
 * signing_bytes       = "taksa/tx/v1" ‖ genesis_hash (32) ‖ encode(Transaction)
 * encode(Signed)      = encode(Transaction) ‖ signature (64)
 * hash                = SHA-256(encode(Signed))
 * ```
 */
import { decodeAddress, encodeAddress } from './address.js';
import { asBytes, bytesEqual, concatBytes, fromHex, toHex0x, utf8 } from './bytes.js';
import { CodecError, decodeExact, Reader, U128_MAX, U64_MAX, Writer } from './codec.js';
import { isAccountKey, sha256, verify } from './crypto.js';
import type { Keypair } from './keys.js';

/** The domain tag that starts every transaction's signed bytes. */
export const TX_DOMAIN = utf8('taksa/tx/v1');
/** The longest encoded signed transaction, in bytes. */
export const TX_BYTES_MAX = 1024;
/** The longest memo, in bytes of UTF-8. */
export const MEMO_BYTES_MAX = 256;
/** The longest chain id, in bytes. */
export const CHAIN_ID_BYTES_MAX = 64;
/** The longest encoded action, in bytes. */
export const ACTION_BYTES_MAX = 256;
/** The longest validator name, in bytes of UTF-8. */
export const VALIDATOR_NAME_BYTES_MAX = 32;
/** The domain tag of a key rotation's consent. */
export const ROTATION_DOMAIN = utf8('taksa/validator/rotate/v1');
const CHANGE_ID_DOMAIN = utf8('taksa/validator/change');

/** A change to the validator set (`Change` in consensus/src/governance.rs). */
export type SetChange =
  | { kind: 'add'; key: Uint8Array; name: string }
  | { kind: 'remove'; key: Uint8Array }
  | { kind: 'rotate'; old: Uint8Array; new: Uint8Array; proof: Uint8Array };

/** What a validator's vote transaction does (`Action`). */
export type Action = { kind: 'vote'; change: SetChange } | { kind: 'withdraw'; changeId: Uint8Array };

/** A transaction, with keys as raw 32-byte public keys and integers as bigint. */
export interface Transaction {
  chainId: string;
  from: Uint8Array;
  to: Uint8Array;
  amount: bigint;
  fee: bigint;
  nonce: bigint;
  validUntilHeight: bigint | null;
  memo: string | null;
  action: Action | null;
}

/** A transaction with its sender's signature, its canonical bytes and hash. */
export interface SignedTransaction {
  tx: Transaction;
  signature: Uint8Array;
  /** The canonical bytes of the signed transaction (what `tx_submit` takes). */
  bytes: Uint8Array;
  /** `0x` + hex of `bytes`. */
  hex: string;
  /** `0x` + the SHA-256 of `bytes`, as `tx_submit` returns it. */
  hash: string;
}

/** Fields of a transaction as a caller writes them: addresses or keys, numbers or bigints. */
export interface TransactionInput {
  chainId: string;
  /** Sender: a 32-byte public key, or an address (then `hrp` is required). */
  from: Uint8Array | string;
  /** Recipient: a 32-byte public key, or an address (then `hrp` is required). */
  to: Uint8Array | string;
  amount: bigint | number;
  fee: bigint | number;
  nonce: bigint | number;
  validUntilHeight?: bigint | number | null;
  memo?: string | null;
  action?: Action | null;
  /** The network's address prefix, to read `from` and `to` when they are addresses. */
  hrp?: string;
}

function big(v: bigint | number, what: string, max: bigint): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new CodecError(`${what} must be a safe integer or a bigint`);
    v = BigInt(v);
  }
  if (typeof v !== 'bigint' || v < 0n || v > max) throw new CodecError(`${what} is out of range`);
  return v;
}

function key(v: Uint8Array | string, hrp: string | undefined, what: string): Uint8Array {
  if (typeof v === 'string' && !/^(0x)?[0-9a-fA-F]{64}$/.test(v)) {
    if (hrp === undefined) throw new CodecError(`${what} is an address: give hrp to read it`);
    return decodeAddress(v, hrp);
  }
  return asBytes(v, 32, what);
}

/** Builds a {@link Transaction} from friendlier input. */
export function transaction(input: TransactionInput): Transaction {
  const valid = input.validUntilHeight;
  return {
    chainId: input.chainId,
    from: key(input.from, input.hrp, 'from'),
    to: key(input.to, input.hrp, 'to'),
    amount: big(input.amount, 'amount', U128_MAX),
    fee: big(input.fee, 'fee', U128_MAX),
    nonce: big(input.nonce, 'nonce', U64_MAX),
    validUntilHeight: valid === undefined || valid === null ? null : big(valid, 'validUntilHeight', U64_MAX),
    memo: input.memo ?? null,
    action: input.action ?? null,
  };
}

/**
 * A validator's vote on the validator set (docs/validator-changes.md): to itself, amount 0;
 * the fee floor does not apply to votes, so the fee defaults to 0.
 */
export function voteTransaction(args: {
  chainId: string;
  validator: Uint8Array;
  nonce: bigint | number;
  action: Action;
  fee?: bigint | number;
  validUntilHeight?: bigint | number | null;
}): Transaction {
  return transaction({
    chainId: args.chainId,
    from: args.validator,
    to: args.validator,
    amount: 0n,
    fee: args.fee ?? 0n,
    nonce: args.nonce,
    validUntilHeight: args.validUntilHeight ?? null,
    memo: null,
    action: args.action,
  });
}

function writeChange(w: Writer, c: SetChange): void {
  switch (c.kind) {
    case 'add':
      w.u32(0).fixed(c.key, 32, 'change.key').string(c.name);
      return;
    case 'remove':
      w.u32(1).fixed(c.key, 32, 'change.key');
      return;
    case 'rotate':
      w.u32(2).fixed(c.old, 32, 'change.old').fixed(c.new, 32, 'change.new').fixed(c.proof, 64, 'change.proof');
      return;
    default:
      throw new CodecError(`unknown validator change kind ${(c as { kind: string }).kind}`);
  }
}

export function readChange(r: Reader): SetChange {
  switch (r.variant(3)) {
    case 0:
      return { kind: 'add', key: r.fixed(32), name: r.string() };
    case 1:
      return { kind: 'remove', key: r.fixed(32) };
    default:
      return { kind: 'rotate', old: r.fixed(32), new: r.fixed(32), proof: r.fixed(64) };
  }
}

function writeAction(w: Writer, a: Action): void {
  if (a.kind === 'vote') {
    w.u32(0);
    writeChange(w, a.change);
  } else if (a.kind === 'withdraw') {
    w.u32(1).fixed(a.changeId, 32, 'action.changeId');
  } else {
    throw new CodecError(`unknown action kind ${(a as { kind: string }).kind}`);
  }
}

function readAction(r: Reader): Action {
  return r.variant(2) === 0 ? { kind: 'vote', change: readChange(r) } : { kind: 'withdraw', changeId: r.fixed(32) };
}

/** The canonical bytes of a validator change (what its id hashes). */
export function encodeChange(change: SetChange): Uint8Array {
  const w = new Writer();
  writeChange(w, change);
  return w.finish();
}

/** The canonical bytes of an action. */
export function encodeAction(action: Action): Uint8Array {
  const w = new Writer();
  writeAction(w, action);
  return w.finish();
}

/** A change's id, what votes and withdrawals name: SHA-256("taksa/validator/change" ‖ encode(change)). */
export function changeId(change: SetChange): Uint8Array {
  return sha256(CHANGE_ID_DOMAIN, encodeChange(change));
}

/** What a new key signs to consent to replace `old` (a rotation's `proof`). */
export function rotationBytes(genesisHash: Uint8Array | string, old: Uint8Array): Uint8Array {
  return concatBytes(ROTATION_DOMAIN, asBytes(genesisHash, 32, 'genesisHash'), asBytes(old, 32, 'old'));
}

function writeTransaction(w: Writer, tx: Transaction): void {
  w.string(tx.chainId)
    .fixed(tx.from, 32, 'from')
    .fixed(tx.to, 32, 'to')
    .u128(tx.amount, 'amount')
    .u128(tx.fee, 'fee')
    .u64(tx.nonce, 'nonce')
    .option(tx.validUntilHeight, (w, v) => w.u64(v, 'validUntilHeight'))
    .option(tx.memo, (w, v) => w.string(v))
    .option(tx.action, (w, v) => writeAction(w, v));
}

function readTransaction(r: Reader): Transaction {
  return {
    chainId: r.string(),
    from: r.fixed(32),
    to: r.fixed(32),
    amount: r.u128(),
    fee: r.u128(),
    nonce: r.u64(),
    validUntilHeight: r.option((r) => r.u64()),
    memo: r.option((r) => r.string()),
    action: r.option(readAction),
  };
}

/** The canonical bytes of a transaction (without signature). */
export function encodeTransaction(tx: Transaction): Uint8Array {
  const w = new Writer();
  writeTransaction(w, tx);
  return w.finish();
}

/** The bytes the sender signs: "taksa/tx/v1" ‖ genesis hash ‖ encode(tx). */
export function signingBytes(tx: Transaction, genesisHash: Uint8Array | string): Uint8Array {
  return concatBytes(TX_DOMAIN, asBytes(genesisHash, 32, 'genesisHash'), encodeTransaction(tx));
}

function signed(tx: Transaction, signature: Uint8Array): SignedTransaction {
  const bytes = concatBytes(encodeTransaction(tx), signature);
  return { tx, signature, bytes, hex: toHex0x(bytes), hash: toHex0x(sha256(bytes)) };
}

/**
 * Signs with `keypair`, which must be the key of `tx.from`, for the network with
 * `genesisHash` (`chain_getInfo.genesisHash`).
 */
export function signTransaction(tx: Transaction, keypair: Keypair, genesisHash: Uint8Array | string): SignedTransaction {
  if (toHex0x(keypair.publicKey) !== toHex0x(tx.from)) {
    throw new Error('the key pair is not the sender (tx.from) of this transaction');
  }
  return signed(tx, keypair.sign(signingBytes(tx, genesisHash)));
}

/** A transaction with a signature made elsewhere (a hardware wallet, a remote signer). */
export function withSignature(tx: Transaction, signature: Uint8Array): SignedTransaction {
  return signed(tx, asBytes(signature, 64, 'signature'));
}

/**
 * Decodes a signed transaction from exactly its canonical bytes (at most 1024). `bytes` and
 * `hash` are those of the input itself, and the decoded fields must encode back to exactly the
 * input (a {@link CodecError} otherwise), so the fields, the hash and the signed bytes agree.
 */
export function decodeSignedTransaction(bytes: Uint8Array | string): SignedTransaction {
  const raw = typeof bytes === 'string' ? fromHex(bytes, undefined, 'transaction') : Uint8Array.from(bytes);
  const { tx, signature } = decodeExact(raw, TX_BYTES_MAX, 'signed transaction', (r) => ({ tx: readTransaction(r), signature: r.fixed(64) }));
  const reencoded = concatBytes(encodeTransaction(tx), signature);
  if (!bytesEqual(reencoded, raw)) {
    throw new CodecError('signed transaction: the decoded fields do not encode back to the same bytes');
  }
  return { tx, signature, bytes: raw, hex: toHex0x(raw), hash: toHex0x(sha256(raw)) };
}

/** `0x` + the SHA-256 of a signed transaction's bytes. */
export function transactionHash(signedBytes: Uint8Array): string {
  return toHex0x(sha256(signedBytes));
}

/** Whether the signature verifies (ZIP-215) for the sender over the signing bytes. */
export function verifyTransactionSignature(stx: SignedTransaction, genesisHash: Uint8Array | string): boolean {
  return verify(stx.tx.from, signingBytes(stx.tx, genesisHash), stx.signature);
}

/** A transaction that every node refuses without looking at state; `reason` is the node's `data.reason`. */
export class TransactionRuleError extends Error {
  override name = 'TransactionRuleError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The checks the node runs without state (`check_stateless`, in its order: chain, memo, action
 * shape or fee floor, overflow, recipient key), plus the encoded size. Throws a
 * {@link TransactionRuleError} whose `reason` is the one the node would answer.
 * `chainId` and `feeFloor` are the network's (`chain_getInfo`); the signature is not checked.
 */
export function checkTransaction(tx: Transaction, network: { chainId?: string; feeFloor?: bigint | string } = {}): void {
  const fail = (reason: string, message: string) => {
    throw new TransactionRuleError(reason, message);
  };
  const size = encodeTransaction(tx).length + 64;
  if (size > TX_BYTES_MAX) fail('too_large', `the signed transaction is ${size} bytes; at most ${TX_BYTES_MAX}`);
  if (utf8(tx.chainId).length > CHAIN_ID_BYTES_MAX) fail('wrong_chain', `the chain id is over ${CHAIN_ID_BYTES_MAX} bytes`);
  if (network.chainId !== undefined && tx.chainId !== network.chainId) {
    fail('wrong_chain', `transaction is for chain \`${tx.chainId}\`, this network is \`${network.chainId}\``);
  }
  if (tx.memo !== null && utf8(tx.memo).length > MEMO_BYTES_MAX) {
    fail('memo_too_long', `memo is longer than ${MEMO_BYTES_MAX} bytes`);
  }
  if (tx.action !== null) {
    if (toHex0x(tx.to) !== toHex0x(tx.from) || tx.amount !== 0n) {
      fail('governance', 'a vote on the validator set moves no funds: to = from, amount = 0');
    }
    if (encodeAction(tx.action).length > ACTION_BYTES_MAX) fail('governance', 'the action is too long');
  } else if (network.feeFloor !== undefined) {
    const floor = typeof network.feeFloor === 'string' ? BigInt(network.feeFloor) : network.feeFloor;
    if (tx.fee < floor) fail('fee_below_floor', `fee ${tx.fee} is below the fee floor ${floor}`);
  }
  if (tx.amount + tx.fee > U128_MAX) fail('overflow', 'amount plus fee overflows');
  if (!isAccountKey(tx.to)) {
    fail('bad_recipient', 'the recipient is not a valid ed25519 public key: no one could ever spend funds sent there');
  }
}

/** The transaction's fields as the node's JSON writes them (`Tx` of rpc/openrpc.json, without hash and signature). */
export function describeTransaction(tx: Transaction, hrp: string) {
  return {
    chainId: tx.chainId,
    from: encodeAddress(tx.from, hrp),
    to: encodeAddress(tx.to, hrp),
    amount: tx.amount.toString(),
    fee: tx.fee.toString(),
    nonce: tx.nonce,
    validUntilHeight: tx.validUntilHeight,
    memo: tx.memo,
  };
}
