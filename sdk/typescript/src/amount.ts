/**
 * Amounts. The chain counts base units as u128 (1 TKS = 10^9 base units; `tokenDecimals` in
 * `chain_getInfo`), and the RPC writes them as decimal strings of base units. People write
 * TKS with up to 9 decimals ("1.5"). Parsing is exact (integers only, never floating point) and
 * refuses what is ambiguous, like the node's wallet (node/src/wallet/amount.rs): signs,
 * exponents, separators, spaces, empty parts, too many decimals, more than u128.
 */
import { U128_MAX } from './codec.js';

/** Decimal places of TKS. */
export const TKS_DECIMALS = 9;
/** Base units in one TKS. */
export const BASE_UNITS_PER_TKS = 10n ** BigInt(TKS_DECIMALS);

/** Amount text that is not an amount. */
export class AmountError extends Error {
  override name = 'AmountError';
}

const AMOUNT_TEXT_MAX = 48;

function checkDecimals(decimals: number): bigint {
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > 38) {
    throw new AmountError(`decimals must be an integer from 0 to 38, got ${decimals}`);
  }
  return 10n ** BigInt(decimals);
}

/**
 * Parses a token amount written in decimal ("1.5", "0.000000001", "42", ".25") into base
 * units. `decimals` is the chain's `tokenDecimals` (9 for TKS).
 */
export function parseAmount(text: string, decimals = TKS_DECIMALS): bigint {
  const unit = checkDecimals(decimals);
  if (typeof text !== 'string') throw new AmountError('an amount is a string of digits');
  const shown = text.slice(0, AMOUNT_TEXT_MAX);
  if (text.length > AMOUNT_TEXT_MAX) throw new AmountError(`\`${shown}…\` is too large`);
  const m = /^([0-9]*)(?:\.([0-9]+))?$/.exec(text);
  if (!m || (m[1] === '' && m[2] === undefined)) {
    throw new AmountError(`\`${shown}\` is not an amount: write digits with an optional point, like 1.5`);
  }
  const whole = m[1] ?? '';
  const frac = m[2] ?? '';
  if (frac.length > decimals) {
    throw new AmountError(`\`${shown}\` has more than ${decimals} decimal places`);
  }
  const value = BigInt(whole || '0') * unit + BigInt((frac || '0').padEnd(decimals, '0') || '0');
  if (value > U128_MAX) throw new AmountError(`\`${shown}\` is too large`);
  return value;
}

/** Formats base units as the shortest exact decimal ("1.5", "0.000001", "3"). */
export function formatAmount(baseUnits: bigint | string, decimals = TKS_DECIMALS): string {
  const unit = checkDecimals(decimals);
  const v = typeof baseUnits === 'string' ? parseBaseUnits(baseUnits) : baseUnits;
  if (typeof v !== 'bigint' || v < 0n) throw new AmountError('an amount is a non-negative bigint');
  const whole = v / unit;
  const frac = v % unit;
  if (frac === 0n) return whole.toString();
  return `${whole}.${frac.toString().padStart(decimals, '0').replace(/0+$/, '')}`;
}

/**
 * Parses a whole number of base units as the RPC writes it (`balance`, `amount`, `fee`,
 * `feeFloor`: a decimal string that fits u128).
 */
export function parseBaseUnits(text: string): bigint {
  if (typeof text !== 'string' || !/^[0-9]{1,39}$/.test(text)) {
    throw new AmountError(`\`${String(text).slice(0, AMOUNT_TEXT_MAX)}\` is not a whole number of base units`);
  }
  const v = BigInt(text);
  if (v > U128_MAX) throw new AmountError(`\`${text}\` does not fit in 128 bits`);
  return v;
}

/** Base units as the decimal string the RPC takes. */
export function formatBaseUnits(value: bigint): string {
  if (typeof value !== 'bigint' || value < 0n || value > U128_MAX) {
    throw new AmountError('base units are a bigint from 0 to 2^128 - 1');
  }
  return value.toString();
}
