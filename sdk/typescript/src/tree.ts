/**
 * The state tree (docs/state-tree.md): a sparse Merkle tree over 256-bit keys whose root every
 * header carries as `state_root`.
 *
 * - T1: an account's key is SHA-256("taksa/state/account" ‖ address); bit i of a key is bit
 *   7 - i % 8 of byte i / 8.
 * - T2: a leaf's hash is SHA-256(0x00 ‖ key ‖ value_hash); an account's value hash is the
 *   SHA-256 of balance (u128 LE) ‖ nonce (u64 LE).
 * - T3: an inner node's hash is SHA-256(0x01 ‖ left ‖ right); an empty subtree is 32 zero bytes.
 * - T4: a subtree with one leaf is that leaf; the tree of a set of entries is unique.
 * - T5: a proof is the siblings from the root down to depth d and the terminal at d.
 */
import { bytesEqual, compareBytes, utf8 } from './bytes.js';
import { Reader, Writer } from './codec.js';
import { sha256 } from './crypto.js';

const ZERO = new Uint8Array(32);
const ACCOUNT_DOMAIN = utf8('taksa/state/account');
/** The deepest a leaf can sit. */
export const TREE_DEPTH_MAX = 256;

/** What sits at a proof's key position at its depth. */
export type Terminal = { kind: 'empty' } | { kind: 'leaf'; key: Uint8Array; valueHash: Uint8Array };

/** A state-tree proof (`Proof` in consensus/src/tree.rs). */
export interface TreeProof {
  siblings: Uint8Array[];
  terminal: Terminal;
}

/** T1: the tree key of an account. */
export function accountKey(publicKey: Uint8Array): Uint8Array {
  return sha256(ACCOUNT_DOMAIN, publicKey);
}

/** T2: the value hash of an account with `balance` and `nonce`. */
export function accountValueHash(balance: bigint, nonce: bigint): Uint8Array {
  return sha256(new Writer().u128(balance).u64(nonce).finish());
}

/** T2: a leaf's hash. */
export function leafHash(key: Uint8Array, valueHash: Uint8Array): Uint8Array {
  return sha256(Uint8Array.of(0), key, valueHash);
}

/** T3: an inner node's hash. */
export function innerHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(Uint8Array.of(1), left, right);
}

function bit(key: Uint8Array, i: number): number {
  return ((key[i >> 3] as number) >> (7 - (i & 7))) & 1;
}

function prefixEqual(a: Uint8Array, b: Uint8Array, depth: number): boolean {
  for (let i = 0; i < depth; i++) if (bit(a, i) !== bit(b, i)) return false;
  return true;
}

/** T4: the root of the tree holding exactly `entries` (key, value hash); a key given twice keeps its last value. */
export function treeRoot(entries: ReadonlyArray<readonly [Uint8Array, Uint8Array]>): Uint8Array {
  const byKey = new Map<string, readonly [Uint8Array, Uint8Array]>();
  for (const e of entries) byKey.set(Array.from(e[0]).join(','), e);
  const sorted = [...byKey.values()].sort((a, b) => compareBytes(a[0], b[0]));
  const sub = (depth: number, part: ReadonlyArray<readonly [Uint8Array, Uint8Array]>): Uint8Array => {
    if (part.length === 0) return ZERO;
    if (part.length === 1) return leafHash(part[0]![0], part[0]![1]);
    let split = 0;
    while (split < part.length && bit(part[split]![0], depth) === 0) split++;
    return innerHash(sub(depth + 1, part.slice(0, split)), sub(depth + 1, part.slice(split)));
  };
  return sub(0, sorted);
}

/**
 * T5: whether `proof` shows that under `root`, `key` holds the value with hash `valueHash`, or
 * is absent when `valueHash` is null.
 */
export function verifyTreeProof(
  root: Uint8Array,
  key: Uint8Array,
  valueHash: Uint8Array | null,
  proof: TreeProof,
): boolean {
  const d = proof.siblings.length;
  if (d > TREE_DEPTH_MAX) return false;
  let current: Uint8Array;
  const t = proof.terminal;
  if (t.kind === 'empty') {
    if (valueHash !== null) return false;
    current = ZERO;
  } else {
    if (valueHash !== null && (!bytesEqual(t.key, key) || !bytesEqual(t.valueHash, valueHash))) return false;
    if (valueHash === null && (bytesEqual(t.key, key) || !prefixEqual(t.key, key, d))) return false;
    current = leafHash(t.key, t.valueHash);
  }
  for (let i = d - 1; i >= 0; i--) {
    const s = proof.siblings[i] as Uint8Array;
    current = bit(key, i) === 0 ? innerHash(current, s) : innerHash(s, current);
  }
  return bytesEqual(current, root);
}

/** Reads a proof's canonical bytes: siblings (`Vec<[u8; 32]>`), then the terminal enum. */
export function readTreeProof(r: Reader): TreeProof {
  const siblings = r.vec((r) => r.fixed(32), 32);
  const terminal: Terminal = r.variant(2) === 0 ? { kind: 'empty' } : { kind: 'leaf', key: r.fixed(32), valueHash: r.fixed(32) };
  return { siblings, terminal };
}
