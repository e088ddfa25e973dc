/**
 * Payment receipts (docs/receipts.md, format `taksa-receipt/v3`): check with no node that a
 * transaction is in a block that a quorum of its epoch's validators finalized, on the chain that
 * starts at a given genesis. The rules, in the doc's order:
 *
 * 1. `format`, `chainId` and `genesisHash` are the genesis's.
 * 2. The transaction decodes, names this chain, passes the stateless rules and its signature
 *    verifies (ZIP-215).
 * 3. The audit path leads from the transaction's hash to the header's `tx_root`.
 * 4. Each header of `headersToFinal` follows the one before it.
 * 5. The block's epoch's validator set follows from the genesis set through `epochs`.
 * 6. The finalization finalizes the last header, in its epoch, by a quorum of that set.
 *
 * Before them, when the caller names the transaction it asked for (`expectedHash`), the receipt
 * must be for it. A valid receipt of a chain whose validator keys are public (the dev chain, the
 * public testnet) is reported as such (`publicValidatorKeys`): anyone can forge those.
 */
import { bytesEqual, fromHex, toHex0x } from './bytes.js';
import {
  decodeCertificate,
  decodeHeader,
  epochOfHeight,
  finalizationProblem,
  type Genesis,
  genesisHash as computeGenesisHash,
  governanceKey,
  type Header,
  headerHash,
  MESSAGE_BYTES_MAX,
  publicKeysQuorum,
  readGovernance,
  txPathRoot,
  validatorSetHash,
} from './chain.js';
import { CodecError, decodeExact } from './codec.js';
import { sha256 } from './crypto.js';
import type { Receipt } from './rpc-types.js';
import {
  checkTransaction,
  decodeSignedTransaction,
  type SignedTransaction,
  TransactionRuleError,
  verifyTransactionSignature,
} from './transaction.js';
import { readTreeProof, verifyTreeProof } from './tree.js';

/** The format tag this verifier reads. */
export const RECEIPT_FORMAT = 'taksa-receipt/v3';
/** The most descendant headers a receipt may carry. */
export const RECEIPT_HEADERS_MAX = 256;
/** The most links of validator sets a receipt may carry. */
export const RECEIPT_LINKS_MAX = 10_000;

/** One link of the chain of validator sets: the last block of an epoch, its finalization, the governance entry after it and its proof. */
export interface EpochLink {
  header: string;
  finalization: string;
  governance: string;
  proof: string;
}

/**
 * A receipt as `tx_getProof` returns it and docs/receipts.md defines it: the generated
 * {@link Receipt} type, with `format` widened to any string so that a receipt of another version
 * reaches {@link verifyReceipt}, which refuses it with a clear error.
 */
export type PaymentReceipt = Omit<Receipt, 'format'> & { format: string; epochs: EpochLink[] };

/** What a valid receipt proves. */
export interface Payment {
  /** `0x` + the transaction's hash. */
  hash: string;
  /** The signed transaction (amount, fee, sender, recipient, memo, ...). */
  tx: SignedTransaction;
  /** Its block's height, hash and time. */
  height: bigint;
  blockHash: string;
  timestampMs: bigint;
  /** The height of the block whose finalization the receipt carries. */
  finalHeight: bigint;
  /** The block's epoch. */
  epoch: bigint;
  /**
   * `'dev'` or `'testnet'` when validator keys anyone can derive from a published mnemonic (the
   * dev chain's, `devGenesis`, or the public testnet's) make a quorum of the genesis validator set
   * or of the set that finalized the block; null otherwise. When it is not null, anyone could have
   * made this receipt: it proves nothing about money, refuse it for real payments.
   */
  publicValidatorKeys: 'dev' | 'testnet' | null;
}

/** Options of {@link verifyReceipt}. */
export interface VerifyReceiptOptions {
  /**
   * The transaction hash you asked for (hex, with or without `0x`): the receipt must be for it
   * (the SHA-256 of its `tx` bytes, docs/receipts.md), else a `ReceiptError` `wrong_tx`.
   */
  expectedHash?: string;
}

/** Which rule a receipt failed. */
export type ReceiptCheck = 'malformed' | 'wrong_tx' | 'other_chain' | 'tx' | 'not_included' | 'broken_link' | 'not_final';

/** Why a receipt does not prove its payment. */
export class ReceiptError extends Error {
  override name = 'ReceiptError';
  constructor(
    readonly check: ReceiptCheck,
    message: string,
  ) {
    super(message);
  }
}

function malformed(field: string, why: string): ReceiptError {
  return new ReceiptError('malformed', `the receipt's \`${field}\` is malformed: ${why}`);
}

function hex0x(field: string, value: unknown): Uint8Array {
  if (typeof value !== 'string' || !value.startsWith('0x')) throw malformed(field, 'not 0x-prefixed hex');
  try {
    return fromHex(value, undefined, field);
  } catch (e) {
    throw malformed(field, (e as Error).message);
  }
}

function parse<T>(field: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ReceiptError) throw e;
    throw malformed(field, (e as Error).message);
  }
}

function headerOf(field: string, value: unknown): Header {
  const raw = hex0x(field, value);
  return parse(field, () => decodeHeader(raw, field));
}

function hashOf(field: string, value: unknown): Uint8Array {
  const raw = hex0x(field, value);
  if (raw.length !== 32) throw malformed(field, 'a hash is 32 bytes');
  return raw;
}

function count(field: string, value: unknown): bigint {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw malformed(field, 'not a whole number');
  return BigInt(value);
}

/** Rule 5: the validator set of `epoch`, following the receipt's links from the genesis set. */
function setOfEpoch(links: EpochLink[], g: Genesis, gHash: Uint8Array, epoch: bigint): Uint8Array[] {
  if (links.length > RECEIPT_LINKS_MAX) throw malformed('epochs', `${links.length} links; at most ${RECEIPT_LINKS_MAX}`);
  let set = g.validators;
  let after = 0n;
  for (const link of links) {
    const header = headerOf('epochs.header', link.header);
    const k = epochOfHeight(header.height, g.epochLength);
    const bad = (why: string) => new ReceiptError('not_final', `the link at height ${header.height}: ${why}`);
    const isLast = header.height > 0n && header.height % g.epochLength === 0n;
    if (header.chainId !== g.chainId || !isLast) throw bad('not the last block of an epoch of this chain');
    if (header.height <= after || k >= epoch) {
      throw bad(`links must be of epochs before the block's (${epoch}), in increasing order`);
    }
    after = header.height;
    if (!bytesEqual(header.validatorSetHash, validatorSetHash(set))) {
      throw bad(`the last block of epoch ${k} names another validator set than the one carried`);
    }
    const cert = parse('epochs.finalization', () => decodeCertificate(hex0x('epochs.finalization', link.finalization)));
    const problem = finalizationProblem(cert, header, { chainId: g.chainId, genesisHash: gHash, epoch: k }, set);
    if (problem !== null) throw bad(`the last block of epoch ${k} is not final: ${problem}`);
    const govBytes = hex0x('epochs.governance', link.governance);
    const governance = parse('epochs.governance', () =>
      decodeExact(govBytes, MESSAGE_BYTES_MAX, 'governance', readGovernance),
    );
    const proofBytes = hex0x('epochs.proof', link.proof);
    const proof = parse('epochs.proof', () => decodeExact(proofBytes, MESSAGE_BYTES_MAX, 'proof', readTreeProof));
    if (!verifyTreeProof(header.stateRoot, governanceKey(), sha256(govBytes), proof)) {
      throw bad('the validator set is not the one in the state of the epoch\'s last block');
    }
    set = governance.validators.map((v) => v.address);
    if (set.length === 0) throw bad('an empty validator set');
  }
  return set;
}

/**
 * Checks `receipt` against the chain that starts at `genesis` (from {@link parseGenesis} of its
 * `genesis.json`, or {@link devGenesis}), with no node. Returns what it proves; throws a
 * {@link ReceiptError} naming the rule that failed. With `options.expectedHash`, a receipt for
 * another transaction is refused first (`wrong_tx`). Check `publicValidatorKeys` of the result:
 * when it is not null, anyone could have made the receipt.
 */
export function verifyReceipt(receipt: PaymentReceipt | string, genesis: Genesis, options: VerifyReceiptOptions = {}): Payment {
  const r = (typeof receipt === 'string' ? JSON.parse(receipt) : receipt) as PaymentReceipt;
  if (typeof r !== 'object' || r === null) throw malformed('receipt', 'not a JSON object');
  if (options.expectedHash !== undefined) checkReceiptHash(r, options.expectedHash);
  // Rule 1.
  if (r.format !== RECEIPT_FORMAT) throw malformed('format', `\`${String(r.format)}\`, not \`${RECEIPT_FORMAT}\``);
  const gHashHex = computeGenesisHash(genesis);
  const gHash = fromHex(gHashHex, 32);
  if (r.chainId !== genesis.chainId || r.genesisHash !== gHashHex) {
    throw new ReceiptError(
      'other_chain',
      `the receipt is for chain \`${String(r.chainId)}\` with genesis ${String(r.genesisHash)}; ` +
        `the genesis given is \`${genesis.chainId}\` with ${gHashHex}`,
    );
  }
  // Rule 2.
  const txBytes = hex0x('tx', r.tx);
  const tx = parse('tx', () => decodeSignedTransaction(txBytes));
  try {
    checkTransaction(tx.tx, { chainId: genesis.chainId, feeFloor: genesis.feeFloor });
  } catch (e) {
    if (e instanceof TransactionRuleError) throw new ReceiptError('tx', `the transaction is not valid on this chain: ${e.message}`);
    throw e;
  }
  if (!verifyTransactionSignature(tx, gHash)) {
    throw new ReceiptError('tx', 'the transaction is not valid on this chain: signature does not verify');
  }
  // Rule 3.
  const header = headerOf('header', r.header);
  if (header.chainId !== genesis.chainId) throw new ReceiptError('not_final', `the header is for chain \`${header.chainId}\``);
  if (!Array.isArray(r.txPath)) throw malformed('txPath', 'not a list');
  const path = r.txPath.map((h) => hashOf('txPath', h));
  const txHash = fromHex(tx.hash, 32);
  const root = txPathRoot(txHash, count('index', r.index), count('txCount', r.txCount), path);
  if (root === null || !bytesEqual(root, header.txRoot)) {
    throw new ReceiptError(
      'not_included',
      `the inclusion path does not lead from transaction ${tx.hash} to the block's tx_root ${toHex0x(header.txRoot)}`,
    );
  }
  // Rule 4.
  if (!Array.isArray(r.headersToFinal)) throw malformed('headersToFinal', 'not a list');
  if (r.headersToFinal.length > RECEIPT_HEADERS_MAX) {
    throw malformed('headersToFinal', `${r.headersToFinal.length} headers; at most ${RECEIPT_HEADERS_MAX}`);
  }
  let last = header;
  r.headersToFinal.forEach((h, index) => {
    const next = headerOf('headersToFinal', h);
    if (!bytesEqual(next.parentHash, headerHash(last)) || next.height !== last.height + 1n) {
      throw new ReceiptError('broken_link', `header ${index} of headersToFinal does not follow the one before it`);
    }
    last = next;
  });
  // Rules 5 and 6.
  const cert = parse('finalization', () => decodeCertificate(hex0x('finalization', r.finalization)));
  const epoch = epochOfHeight(last.height, genesis.epochLength);
  if (epochOfHeight(header.height, genesis.epochLength) !== epoch) {
    throw new ReceiptError('not_final', 'the block and the finalized header are in different epochs');
  }
  if (!Array.isArray(r.epochs)) throw malformed('epochs', 'not a list');
  const set = setOfEpoch(r.epochs, genesis, gHash, epoch);
  const problem = finalizationProblem(cert, last, { chainId: genesis.chainId, genesisHash: gHash, epoch }, set);
  if (problem !== null) throw new ReceiptError('not_final', `the finalization does not certify the last header: ${problem}`);
  return {
    hash: tx.hash,
    tx,
    height: header.height,
    blockHash: toHex0x(headerHash(header)),
    timestampMs: header.timestampMs,
    finalHeight: last.height,
    epoch,
    publicValidatorKeys: publicKeysQuorum(genesis.validators) ?? publicKeysQuorum(set),
  };
}

/**
 * Throws a {@link ReceiptError} `wrong_tx` unless `receipt` is for transaction `hash` (hex, with
 * or without `0x`): the SHA-256 of its `tx` bytes, the transaction hash of docs/receipts.md.
 * Checks nothing else; {@link verifyReceipt} checks the rest.
 */
export function checkReceiptHash(receipt: Pick<PaymentReceipt, 'tx'>, hash: string): void {
  let want: Uint8Array;
  try {
    want = fromHex(hash, 32, 'hash');
  } catch (e) {
    throw new TypeError(`the expected transaction hash is not 32 bytes of hex: ${(e as Error).message}`);
  }
  if (typeof receipt !== 'object' || receipt === null) throw malformed('receipt', 'not a JSON object');
  const got = sha256(hex0x('tx', receipt.tx));
  if (!bytesEqual(got, want)) {
    throw new ReceiptError('wrong_tx', `the receipt is for transaction ${toHex0x(got)}, not ${toHex0x(want)}`);
  }
}

export { CodecError };
