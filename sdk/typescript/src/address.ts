/**
 * Addresses (docs/transaction-format.md section 2): the 32-byte Ed25519 public key in bech32m
 * (BIP-350) with the network's prefix (`tdev` on the dev chain, `tks` on the testnet). The
 * payload is the 32 bytes in 5-bit groups, with no witness version. Lower case is canonical;
 * all upper case is accepted (QR codes); mixed case and plain bech32 checksums are refused.
 */
import { bech32m } from '@scure/base';

/** An address that does not decode, or is of another network. */
export class AddressError extends Error {
  override name = 'AddressError';
  constructor(
    message: string,
    /** The prefix found, when the address decoded but names another network. */
    readonly got?: string,
  ) {
    super(message);
  }
}

/** The bech32m address of a 32-byte public key under prefix `hrp`. */
export function encodeAddress(publicKey: Uint8Array, hrp: string): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new AddressError('an address holds a 32-byte public key');
  }
  if (!/^[\x21-\x7e]{1,83}$/.test(hrp) || hrp !== hrp.toLowerCase()) {
    throw new AddressError(`\`${hrp}\` is not a lower-case bech32 prefix`);
  }
  return bech32m.encode(hrp, bech32m.toWords(publicKey));
}

/** The prefix and public key of an address, whatever its network. */
export function parseAddress(address: string): { hrp: string; publicKey: Uint8Array } {
  if (typeof address !== 'string') throw new AddressError('an address is a string');
  let decoded;
  try {
    decoded = bech32m.decode(address as `${string}1${string}`, 90);
  } catch (e) {
    throw new AddressError(`\`${address.slice(0, 100)}\` is not a bech32m address: ${(e as Error).message}`);
  }
  let publicKey: Uint8Array;
  try {
    publicKey = bech32m.fromWords(decoded.words);
  } catch (e) {
    throw new AddressError(`\`${address.slice(0, 100)}\` has a malformed payload: ${(e as Error).message}`);
  }
  if (publicKey.length !== 32) {
    throw new AddressError(`\`${address.slice(0, 100)}\` holds ${publicKey.length} bytes, not a 32-byte public key`);
  }
  return { hrp: decoded.prefix.toLowerCase(), publicKey };
}

/** The public key of an address of the network with prefix `hrp`; another prefix is refused. */
export function decodeAddress(address: string, hrp: string): Uint8Array {
  const parsed = parseAddress(address);
  if (parsed.hrp !== hrp) {
    throw new AddressError(`address prefix is \`${parsed.hrp}\`, this network uses \`${hrp}\``, parsed.hrp);
  }
  return parsed.publicKey;
}

/** Whether `address` is a valid address of the network with prefix `hrp`. */
export function isAddress(address: string, hrp: string): boolean {
  try {
    decodeAddress(address, hrp);
    return true;
  } catch {
    return false;
  }
}
