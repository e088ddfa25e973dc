/**
 * The chain's one hash and one signature scheme, from audited libraries: SHA-256
 * (@noble/hashes) and Ed25519 (@noble/curves), verified by the rules of ZIP-215 as the node
 * does (docs/transaction-format.md, "What is signed").
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

import { bytesEqual, concatBytes } from './bytes.js';

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  return nobleSha256(parts.length === 1 ? (parts[0] as Uint8Array) : concatBytes(...parts));
}

/** The Ed25519 public key of a 32-byte secret seed (RFC 8032). */
export function publicKeyOf(secretSeed: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(secretSeed);
}

/** Signs `message` with a 32-byte secret seed: pure Ed25519, 64 bytes R ‖ S. */
export function sign(secretSeed: Uint8Array, message: Uint8Array): Uint8Array {
  return ed25519.sign(message, secretSeed);
}

/**
 * Verifies by ZIP-215: `S` canonical, `A` and `R` any encoding of a curve point, the cofactored
 * equation. Accepts exactly what the node's `crypto::verify` accepts.
 */
export function verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: true });
  } catch {
    return false;
  }
}

/**
 * Whether 32 bytes are an account key: the canonical encoding of a point in the prime-order
 * subgroup (no small-order or mixed-order component). Recipients, genesis allocations and
 * validators must be; the node refuses any other recipient with `bad_recipient` (1012).
 */
export function isAccountKey(key: Uint8Array): boolean {
  if (!(key instanceof Uint8Array) || key.length !== 32) return false;
  try {
    const point = ed25519.Point.fromBytes(key, false);
    return !point.isSmallOrder() && point.isTorsionFree() && bytesEqual(point.toBytes(), key);
  } catch {
    return false;
  }
}
