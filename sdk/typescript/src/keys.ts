/**
 * Keys (docs/transaction-format.md section 1): a BIP39 mnemonic (English), its seed with the
 * empty passphrase, SLIP-0010 ed25519 derivation along hardened steps only, and the Ed25519 key
 * whose 32-byte secret seed is the derived private key. Wallet account i is
 * `m/44'/7331'/i'/0'`, validator key i is `m/44'/7331'/i'/1'`.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import {
  generateMnemonic as bip39Generate,
  mnemonicToSeedSync,
  validateMnemonic as bip39Validate,
} from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';

import { encodeAddress, parseAddress } from './address.js';
import { concatBytes, toHex, utf8 } from './bytes.js';
import { publicKeyOf, sign, verify } from './crypto.js';

/** Taksa's BIP44 coin type. */
export const COIN_TYPE = 7331;
const HARDENED = 0x80000000;
const PATH_STEPS_MAX = 16;
const MNEMONIC_WORD_COUNTS = [12, 15, 18, 21, 24];

/** A mnemonic or derivation path that cannot be used. Never carries the words. */
export class KeyError extends Error {
  override name = 'KeyError';
}

/** A new random English mnemonic: 24 words (256 bits) unless `words` says 12 to 21. */
export function generateMnemonic(words: 12 | 15 | 18 | 21 | 24 = 24): string {
  if (!MNEMONIC_WORD_COUNTS.includes(words)) throw new KeyError('a mnemonic has 12, 15, 18, 21 or 24 words');
  return bip39Generate(wordlist, (words / 3) * 32);
}

/** Normalizes a mnemonic as a person typed it: any whitespace between words, any case. */
export function normalizeMnemonic(mnemonic: string): string {
  return mnemonic.normalize('NFKD').trim().toLowerCase().split(/\s+/).join(' ');
}

/** Whether `mnemonic` is a valid English BIP39 mnemonic of 12 to 24 words (checksum included). */
export function validateMnemonic(mnemonic: string): boolean {
  const words = normalizeMnemonic(mnemonic);
  return MNEMONIC_WORD_COUNTS.includes(words.split(' ').length) && bip39Validate(words, wordlist);
}

/**
 * The 64-byte BIP39 seed: PBKDF2-HMAC-SHA512 of the mnemonic, salt "mnemonic" + passphrase,
 * 2048 rounds. The mnemonic must be valid (words and checksum). Taksa's wallets use the empty
 * passphrase.
 */
export function mnemonicToSeed(mnemonic: string, passphrase = ''): Uint8Array {
  const words = normalizeMnemonic(mnemonic);
  if (!validateMnemonic(words)) {
    throw new KeyError(`not a valid English BIP39 mnemonic of 12, 15, 18, 21 or 24 words`);
  }
  return mnemonicToSeedSync(words, passphrase);
}

/** Parses `m/44'/7331'/0'/0'` (`H` or `h` may stand for `'`) into its step indices. Every step must be hardened. */
export function parsePath(path: string): number[] {
  const bad = (why: string) => new KeyError(`derivation path \`${String(path).slice(0, 100)}\`: ${why}`);
  const parts = String(path).split('/');
  if (parts.shift() !== 'm') throw bad('must start with `m`');
  const steps: number[] = [];
  for (const part of parts) {
    const m = /^([0-9]+)['hH]$/.exec(part);
    if (!m) throw bad("every step must be a number and hardened (end with ')");
    const index = Number(m[1]);
    if (!Number.isSafeInteger(index) || index >= HARDENED) throw bad('a step is 2^31 or more');
    steps.push(index);
    if (steps.length > PATH_STEPS_MAX) throw bad('too many steps');
  }
  return steps;
}

/** `m/44'/7331'/index'/0'`: wallet account `index`. */
export function accountPath(index: number): string {
  return `m/44'/${COIN_TYPE}'/${checkIndex(index)}'/0'`;
}

/** `m/44'/7331'/index'/1'`: validator key `index`. */
export function validatorPath(index: number): string {
  return `m/44'/${COIN_TYPE}'/${checkIndex(index)}'/1'`;
}

function checkIndex(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= HARDENED) {
    throw new KeyError(`an account index is an integer from 0 to 2^31 - 1, got ${index}`);
  }
  return index;
}

/** A SLIP-0010 ed25519 node: private key and chain code. */
export interface Slip10Node {
  privateKey: Uint8Array;
  chainCode: Uint8Array;
}

const SLIP10_ED25519_KEY = new TextEncoder().encode('ed25519 seed');

/** SLIP-0010 ed25519 derivation of `path` (hardened steps only) from a BIP39 seed. */
export function deriveSlip10(seed: Uint8Array, path: string | readonly number[]): Slip10Node {
  const steps = typeof path === 'string' ? parsePath(path) : path;
  let I = hmac(sha512, SLIP10_ED25519_KEY, seed);
  let node: Slip10Node = { privateKey: I.slice(0, 32), chainCode: I.slice(32) };
  for (const step of steps) {
    if (!Number.isInteger(step) || step < 0 || step >= HARDENED) throw new KeyError(`step ${step} is out of range`);
    const index = new Uint8Array(4);
    new DataView(index.buffer).setUint32(0, step + HARDENED, false);
    I = hmac(sha512, node.chainCode, concatBytes(Uint8Array.of(0), node.privateKey, index));
    node = { privateKey: I.slice(0, 32), chainCode: I.slice(32) };
  }
  return node;
}

/** Where a key pair comes from in a mnemonic: an account index, or any hardened path. */
export interface DeriveOptions {
  /** Wallet account index (path `m/44'/7331'/i'/0'`); default 0. */
  account?: number;
  /** A full path instead of `account`, e.g. `validatorPath(0)`. */
  path?: string;
  /** BIP39 passphrase; Taksa's wallets use none. */
  passphrase?: string;
}

/** An Ed25519 key pair: the 32-byte secret seed and its public key. */
export class Keypair {
  readonly publicKey: Uint8Array;
  readonly #secretKey: Uint8Array;

  private constructor(secretKey: Uint8Array) {
    if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) {
      throw new KeyError('a secret key is a 32-byte Ed25519 seed');
    }
    this.#secretKey = secretKey.slice();
    this.publicKey = publicKeyOf(this.#secretKey);
  }

  /** The key pair whose 32-byte Ed25519 secret seed is `secretKey`. */
  static fromSecretKey(secretKey: Uint8Array): Keypair {
    return new Keypair(secretKey);
  }

  /** The key at a path of a BIP39 seed (already stretched from a mnemonic). */
  static fromSeed(seed: Uint8Array, path: string = accountPath(0)): Keypair {
    return new Keypair(deriveSlip10(seed, path).privateKey);
  }

  /** Wallet account `account` (default 0) of a mnemonic, or the key at `path`. */
  static fromMnemonic(mnemonic: string, options: DeriveOptions = {}): Keypair {
    if (options.path !== undefined && options.account !== undefined) {
      throw new KeyError('give either account or path, not both');
    }
    const path = options.path ?? accountPath(options.account ?? 0);
    return Keypair.fromSeed(mnemonicToSeed(mnemonic, options.passphrase ?? ''), path);
  }

  /** The 32-byte secret seed. Handle with care. */
  secretKey(): Uint8Array {
    return this.#secretKey.slice();
  }

  /** The bech32m address under the network's prefix (`addressHrp` of `chain_getInfo`). */
  address(hrp: string): string {
    return encodeAddress(this.publicKey, hrp);
  }

  /**
   * Low-level: signs exactly the bytes `message` (pure Ed25519, RFC 8032, 64 bytes) with the
   * account key, with no domain separation. Bytes that are a transaction's signing bytes
   * (`signingBytes`) give a valid signature of that transaction: never pass bytes a dapp, a
   * counterparty or a user chose. To sign a text or data for someone else, use
   * {@link Keypair.signMessage}; transactions are signed by `signTransaction`.
   */
  sign(message: Uint8Array): Uint8Array {
    return sign(this.#secretKey, message);
  }

  /**
   * Signs a message (text, UTF-8, or bytes) for someone else to check with {@link verifyMessage}:
   * the signature is over {@link messageSigningBytes}, which start with `taksa/message/v1` and so
   * can never be the signing bytes of a transaction (`taksa/tx/v1`) or of any other thing the
   * chain verifies. Safe for a "sign message" feature: whatever the message, the signature cannot
   * move funds.
   */
  signMessage(message: string | Uint8Array): Uint8Array {
    return sign(this.#secretKey, messageSigningBytes(message));
  }

  /** Never prints the secret. */
  toString(): string {
    return `Keypair(${toHex(this.publicKey).slice(0, 16)}…)`;
  }

  toJSON(): { publicKey: string } {
    return { publicKey: toHex(this.publicKey) };
  }
}

/** The domain tag of signed messages (not transactions): `taksa/message/v1`. */
export const MESSAGE_DOMAIN = utf8('taksa/message/v1');

/**
 * The bytes {@link Keypair.signMessage} signs: `"taksa/message/v1"` (16 ASCII bytes) ‖ the
 * message's length in bytes (u64, little-endian) ‖ the message (a string as UTF-8). They differ
 * from transaction signing bytes (`"taksa/tx/v1"` ‖ …, docs/transaction-format.md) at the 7th
 * byte, from validator rotation bytes (`"taksa/validator/rotate/v1"` ‖ …) at the 8th, and from
 * consensus votes (which start with the u64 length of a chain id of at most 64 bytes) in the
 * first 8; the length prefix makes the encoding of each message unique.
 */
export function messageSigningBytes(message: string | Uint8Array): Uint8Array {
  const bytes = typeof message === 'string' ? utf8(message) : message;
  if (!(bytes instanceof Uint8Array)) throw new TypeError('a message is a string or a Uint8Array');
  const length = new Uint8Array(8);
  new DataView(length.buffer).setBigUint64(0, BigInt(bytes.length), true);
  return concatBytes(MESSAGE_DOMAIN, length, bytes);
}

/**
 * Whether `signature` is {@link Keypair.signMessage}'s signature of `message` by `signer` (a
 * 32-byte public key, or an address of any network). Verified by ZIP-215, as the node verifies.
 */
export function verifyMessage(signer: Uint8Array | string, message: string | Uint8Array, signature: Uint8Array): boolean {
  let publicKey: Uint8Array;
  try {
    publicKey = typeof signer === 'string' ? parseAddress(signer).publicKey : signer;
  } catch {
    return false;
  }
  if (!(publicKey instanceof Uint8Array) || !(signature instanceof Uint8Array)) return false;
  return verify(publicKey, messageSigningBytes(message), signature);
}
