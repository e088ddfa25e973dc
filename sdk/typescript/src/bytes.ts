/**
 * Byte helpers shared by the SDK: hex with and without `0x`, UTF-8, comparison.
 * The heavy lifting is @noble/hashes' utilities; these wrappers add the `0x` conventions of
 * the node's JSON (results are `0x` + lower-case hex; parameters take `0x` optionally).
 */
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';

export { concatBytes };

/** Bytes as `0x` + lower-case hex. */
export function toHex0x(bytes: Uint8Array): string {
  return `0x${bytesToHex(bytes)}`;
}

/** Bytes as lower-case hex without a prefix. */
export function toHex(bytes: Uint8Array): string {
  return bytesToHex(bytes);
}

/**
 * Parses hex with or without `0x`. `expectedBytes`, when given, is the exact length required.
 * `what` names the value in the error message.
 */
export function fromHex(text: string, expectedBytes?: number, what = 'hex'): Uint8Array {
  if (typeof text !== 'string') throw new TypeError(`${what} must be a hex string`);
  const digits = text.startsWith('0x') || text.startsWith('0X') ? text.slice(2) : text;
  if (digits.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(digits)) {
    throw new Error(`${what} is not hex: ${text.slice(0, 80)}`);
  }
  const bytes = hexToBytes(digits.toLowerCase());
  if (expectedBytes !== undefined && bytes.length !== expectedBytes) {
    throw new Error(`${what} must be ${expectedBytes} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return utf8ToBytes(text);
}

// ignoreBOM: a leading U+FEFF is a character of the string, as for the node's decoder, not a
// byte-order mark to strip (stripping it would change memos, chain ids, hashes and signatures).
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes UTF-8 exactly, refusing invalid sequences and keeping a leading U+FEFF (as the node's decoder does). */
export function fromUtf8(bytes: Uint8Array): string {
  return strictUtf8.decode(bytes);
}

/** Whether two byte arrays hold the same bytes. Not constant-time: for public data only. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic comparison of two byte arrays (the order of Rust's `[u8; N]`). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Accepts bytes or hex (with or without `0x`) of `length` bytes. */
export function asBytes(value: Uint8Array | string, length: number, what: string): Uint8Array {
  if (typeof value === 'string') return fromHex(value, length, what);
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be bytes or hex`);
  if (value.length !== length) throw new Error(`${what} must be ${length} bytes, got ${value.length}`);
  return value;
}
