/**
 * The canonical encoding (docs/transaction-format.md section 3, docs/receipts.md "Byte
 * layouts"): bincode 2 with fixed-width little-endian integers. `u64` is 8 bytes LE, `u128` 16,
 * `[u8; N]` its N bytes, a `String` or `Vec<T>` its length as `u64` LE then its items,
 * `Option<T>` `0x00` or `0x01` then `T`, an enum its variant index as `u32` LE then its fields.
 *
 * Integers are bigint so that every u64 and u128 is exact.
 */
import { fromUtf8, utf8 } from './bytes.js';

/** The largest u64. */
export const U64_MAX = (1n << 64n) - 1n;
/** The largest u128. */
export const U128_MAX = (1n << 128n) - 1n;

/** A value that is not representable in the encoding, or bytes that do not decode. */
export class CodecError extends Error {
  override name = 'CodecError';
}

function uint(value: bigint | number, bits: 32 | 64 | 128, what: string): bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new CodecError(`${what} must be a safe integer or a bigint, got ${value}`);
    value = BigInt(value);
  }
  if (typeof value !== 'bigint') throw new CodecError(`${what} must be a bigint`);
  if (value < 0n || value >= 1n << BigInt(bits)) throw new CodecError(`${what} is outside u${bits}: ${value}`);
  return value;
}

/** Appends canonical bytes. */
export class Writer {
  private chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array): this {
    this.chunks.push(bytes);
    this.length += bytes.length;
    return this;
  }

  private le(value: bigint, bytes: number): this {
    const out = new Uint8Array(bytes);
    let v = value;
    for (let i = 0; i < bytes; i++) {
      out[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return this.push(out);
  }

  u8(value: number): this {
    return this.push(Uint8Array.of(Number(uint(value, 32, 'u8')) & 0xff));
  }

  u32(value: bigint | number, what = 'u32'): this {
    return this.le(uint(value, 32, what), 4);
  }

  u64(value: bigint | number, what = 'u64'): this {
    return this.le(uint(value, 64, what), 8);
  }

  u128(value: bigint | number, what = 'u128'): this {
    return this.le(uint(value, 128, what), 16);
  }

  /** `[u8; N]`: the bytes, no length prefix. */
  fixed(bytes: Uint8Array, length: number, what = 'bytes'): this {
    if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
      throw new CodecError(`${what} must be ${length} bytes`);
    }
    return this.push(bytes.slice());
  }

  /** `Vec<u8>`: length as u64, then the bytes. */
  bytes(bytes: Uint8Array): this {
    return this.u64(bytes.length).push(bytes.slice());
  }

  string(text: string): this {
    return this.bytes(utf8(text));
  }

  option<T>(value: T | null | undefined, write: (w: this, v: T) => void): this {
    if (value === null || value === undefined) return this.u8(0);
    this.u8(1);
    write(this, value);
    return this;
  }

  vec<T>(items: readonly T[], write: (w: this, v: T) => void): this {
    this.u64(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  /** The bytes written so far. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** Reads canonical bytes; every read checks that the bytes are there. */
export class Reader {
  private at = 0;

  constructor(private readonly buf: Uint8Array, readonly what = 'value') {}

  private take(n: number): Uint8Array {
    if (n < 0 || this.at + n > this.buf.length) {
      throw new CodecError(`${this.what} is truncated: needs ${n} more bytes at offset ${this.at}`);
    }
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  private le(n: number): bigint {
    const b = this.take(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number);
    return v;
  }

  u8(): number {
    return this.take(1)[0] as number;
  }

  u32(): number {
    return Number(this.le(4));
  }

  u64(): bigint {
    return this.le(8);
  }

  u128(): bigint {
    return this.le(16);
  }

  fixed(n: number): Uint8Array {
    return this.take(n).slice();
  }

  /** A length prefix, refused if it claims more bytes than remain (each item is at least `itemMin` bytes). */
  length(itemMin = 1): number {
    const n = this.u64();
    const remaining = BigInt(this.buf.length - this.at);
    if (n * BigInt(Math.max(itemMin, 0)) > remaining) {
      throw new CodecError(`${this.what}: a length of ${n} exceeds the ${remaining} bytes left`);
    }
    return Number(n);
  }

  bytes(): Uint8Array {
    return this.fixed(this.length(1));
  }

  string(): string {
    const raw = this.bytes();
    try {
      return fromUtf8(raw);
    } catch {
      throw new CodecError(`${this.what}: a string is not valid UTF-8`);
    }
  }

  option<T>(read: (r: this) => T): T | null {
    const tag = this.u8();
    if (tag === 0) return null;
    if (tag === 1) return read(this);
    throw new CodecError(`${this.what}: an option tag is ${tag}, not 0 or 1`);
  }

  vec<T>(read: (r: this) => T, itemMin = 1): T[] {
    const n = this.length(itemMin);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(read(this));
    return out;
  }

  /** The variant index of an enum with `count` variants. */
  variant(count: number): number {
    const v = this.u32();
    if (v >= count) throw new CodecError(`${this.what}: enum variant ${v} is unknown`);
    return v;
  }

  /** Refuses trailing bytes: each value has exactly one encoding. */
  end(): void {
    if (this.at !== this.buf.length) {
      throw new CodecError(`${this.what} has ${this.buf.length - this.at} trailing bytes`);
    }
  }
}

/** Decodes exactly `bytes` with `read`, refusing inputs over `maxBytes` and trailing bytes. */
export function decodeExact<T>(bytes: Uint8Array, maxBytes: number, what: string, read: (r: Reader) => T): T {
  if (bytes.length > maxBytes) throw new CodecError(`${what} is ${bytes.length} bytes; at most ${maxBytes}`);
  const r = new Reader(bytes, what);
  const value = read(r);
  r.end();
  return value;
}
