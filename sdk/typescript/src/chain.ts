/**
 * The chain's own types that a light verifier reads (docs/receipts.md "Byte layouts"): headers,
 * finalization certificates, the governance entry, the genesis and its hash, the validator set
 * and epochs, and the transaction Merkle root (RFC 6962/9162 shape).
 */
import { decodeAddress, encodeAddress } from './address.js';
import { bytesEqual, compareBytes, fromHex, toHex0x, utf8 } from './bytes.js';
import { CodecError, decodeExact, Reader, U128_MAX, Writer } from './codec.js';
import { isAccountKey, sha256, verify } from './crypto.js';
import { accountPath, Keypair, mnemonicToSeed, validatorPath } from './keys.js';
import { readChange, VALIDATOR_NAME_BYTES_MAX, type SetChange } from './transaction.js';
import { accountKey, accountValueHash, treeRoot } from './tree.js';

/** The largest encoded consensus message (header, certificate, governance entry) read. */
export const MESSAGE_BYTES_MAX = 64 * 1024;
/** The most validators a set may hold. */
export const VALIDATORS_MAX = 100;
const VALIDATOR_SET_DOMAIN = utf8('taksa/validators/v1');
const VOTE_DOMAIN = utf8('taksa/consensus/v2');
const GENESIS_DOMAIN = utf8('taksa/genesis/v2');
const GOVERNANCE_KEY_DOMAIN = utf8('taksa/state/validators');

/** The three kinds of consensus vote, by their enum index. */
export type VoteKind = 'notarize' | 'nullify' | 'finalize';
const VOTE_KINDS: VoteKind[] = ['notarize', 'nullify', 'finalize'];

/** A quorum certificate (`Certificate` in consensus/src/vote.rs). */
export interface Certificate {
  epoch: bigint;
  kind: VoteKind;
  view: bigint;
  blockHash: Uint8Array | null;
  /** Bit i (little-endian within each byte) set when validator i signed. */
  signers: Uint8Array;
  signatures: Uint8Array[];
}

/** A block header (`Header` in consensus/src/block.rs). */
export interface Header {
  chainId: string;
  height: bigint;
  view: bigint;
  parentHash: Uint8Array;
  proposer: Uint8Array;
  timestampMs: bigint;
  txRoot: Uint8Array;
  evidenceRoot: Uint8Array;
  stateRoot: Uint8Array;
  validatorSetHash: Uint8Array;
  parentCert: Certificate | null;
}

/** The governance state entry (`Governance` in consensus/src/governance.rs). */
export interface Governance {
  validators: { address: Uint8Array; name: string }[];
  pending: { change: SetChange; voters: Uint8Array[]; openedHeight: bigint }[];
  passed: { change: SetChange; height: bigint }[];
  offences: { validator: Uint8Array; epoch: bigint; view: bigint; height: bigint; evidence: Uint8Array }[];
}

/** A network's genesis parameters, checked (`Genesis` in consensus/src/genesis.rs). */
export interface Genesis {
  chainId: string;
  addressHrp: string;
  genesisTimeMs: bigint;
  blockTimeMs: bigint;
  feeFloor: bigint;
  epochLength: bigint;
  /** Validator keys in leader order. */
  validators: Uint8Array[];
  /** Display names, parallel to `validators`. */
  validatorNames: string[];
  /** Starting balances, sorted by key. */
  allocations: [Uint8Array, bigint][];
}

// ---- certificates and headers -------------------------------------------------------------

export function readCertificate(r: Reader): Certificate {
  return {
    epoch: r.u64(),
    kind: VOTE_KINDS[r.variant(3)] as VoteKind,
    view: r.u64(),
    blockHash: r.option((r) => r.fixed(32)),
    signers: r.bytes(),
    signatures: r.vec((r) => r.fixed(64), 64),
  };
}

function writeCertificate(w: Writer, c: Certificate): void {
  w.u64(c.epoch)
    .u32(VOTE_KINDS.indexOf(c.kind))
    .u64(c.view)
    .option(c.blockHash, (w, h) => w.fixed(h, 32))
    .bytes(c.signers)
    .vec(c.signatures, (w, s) => w.fixed(s, 64));
}

export function readHeader(r: Reader): Header {
  return {
    chainId: r.string(),
    height: r.u64(),
    view: r.u64(),
    parentHash: r.fixed(32),
    proposer: r.fixed(32),
    timestampMs: r.u64(),
    txRoot: r.fixed(32),
    evidenceRoot: r.fixed(32),
    stateRoot: r.fixed(32),
    validatorSetHash: r.fixed(32),
    parentCert: r.option(readCertificate),
  };
}

/** The canonical bytes of a header; its SHA-256 is the block hash. */
export function encodeHeader(h: Header): Uint8Array {
  const w = new Writer()
    .string(h.chainId)
    .u64(h.height)
    .u64(h.view)
    .fixed(h.parentHash, 32)
    .fixed(h.proposer, 32)
    .u64(h.timestampMs)
    .fixed(h.txRoot, 32)
    .fixed(h.evidenceRoot, 32)
    .fixed(h.stateRoot, 32)
    .fixed(h.validatorSetHash, 32);
  w.option(h.parentCert, (w, c) => writeCertificate(w, c));
  return w.finish();
}

/**
 * Decodes a header from exactly its canonical bytes. Its hash ({@link headerHash}) is that of
 * its re-encoding, so the decoded header must encode back to exactly the input (a
 * {@link CodecError} otherwise).
 */
export function decodeHeader(bytes: Uint8Array | string, what = 'header'): Header {
  const raw = typeof bytes === 'string' ? fromHex(bytes, undefined, what) : bytes;
  const header = decodeExact(raw, MESSAGE_BYTES_MAX, what, readHeader);
  if (!bytesEqual(encodeHeader(header), raw)) throw new CodecError(`${what}: the decoded fields do not encode back to the same bytes`);
  return header;
}

/** Decodes a certificate from exactly its canonical bytes. */
export function decodeCertificate(bytes: Uint8Array | string, what = 'certificate'): Certificate {
  const raw = typeof bytes === 'string' ? fromHex(bytes, undefined, what) : bytes;
  return decodeExact(raw, MESSAGE_BYTES_MAX, what, readCertificate);
}

/** The block hash: SHA-256 of the header's canonical bytes. */
export function headerHash(h: Header): Uint8Array {
  return sha256(encodeHeader(h));
}

// ---- validator sets and votes ---------------------------------------------------------------

/** f = floor((n - 1) / 3): the faulty validators a set of n tolerates. */
export function maxFaulty(n: number): number {
  return Math.floor(Math.max(n - 1, 0) / 3);
}

/** q = n - f: the votes a certificate needs. */
export function quorum(n: number): number {
  return n - maxFaulty(n);
}

/** The hash headers commit to: SHA-256("taksa/validators/v1" ‖ encode(Vec<Address>)). */
export function validatorSetHash(validators: readonly Uint8Array[]): Uint8Array {
  return sha256(VALIDATOR_SET_DOMAIN, new Writer().vec(validators, (w, v) => w.fixed(v, 32)).finish());
}

/** The epoch of the block at `height`: floor((height - 1) / L); genesis is epoch 0's start. */
export function epochOfHeight(height: bigint, epochLength: bigint): bigint {
  const l = epochLength < 1n ? 1n : epochLength;
  return height === 0n ? 0n : (height - 1n) / l;
}

/** What a validator signs for a vote: encode(chain_id) ‖ genesis_hash ‖ "taksa/consensus/v2" ‖ epoch ‖ kind ‖ view ‖ encode(Option<block_hash>). */
export function voteBytes(
  chainId: string,
  genesisHash: Uint8Array,
  epoch: bigint,
  kind: VoteKind,
  view: bigint,
  blockHash: Uint8Array | null,
): Uint8Array {
  const w = new Writer().string(chainId).fixed(genesisHash, 32);
  const head = w.finish();
  const tail = new Writer()
    .u64(epoch)
    .u8(VOTE_KINDS.indexOf(kind))
    .u64(view)
    .option(blockHash, (w, h) => w.fixed(h, 32))
    .finish();
  const out = new Uint8Array(head.length + VOTE_DOMAIN.length + tail.length);
  out.set(head, 0);
  out.set(VOTE_DOMAIN, head.length);
  out.set(tail, head.length + VOTE_DOMAIN.length);
  return out;
}

/** The indices of the validators a certificate's bitmap names. */
export function signerIndices(signers: Uint8Array): number[] {
  const out: number[] = [];
  signers.forEach((byte, i) => {
    for (let b = 0; b < 8; b++) if (byte & (1 << b)) out.push(i * 8 + b);
  });
  return out;
}

/**
 * Why `cert` is not a finalization of `header` by a quorum of `validators` in `epoch`
 * (receipts.md rule 6), or null when it is. The domain is the network's chain id and genesis
 * hash.
 */
export function finalizationProblem(
  cert: Certificate,
  header: Header,
  domain: { chainId: string; genesisHash: Uint8Array; epoch: bigint },
  validators: readonly Uint8Array[],
): string | null {
  const hash = headerHash(header);
  if (cert.kind !== 'finalize' || cert.blockHash === null || !bytesEqual(cert.blockHash, hash) || cert.view < header.view) {
    return `not a finalization of block ${toHex0x(hash)} in its view or a later one`;
  }
  if (cert.epoch !== domain.epoch) return `a certificate of epoch ${cert.epoch}, expected ${domain.epoch}`;
  const n = validators.length;
  if (cert.signers.length !== Math.ceil(n / 8)) return `signer bitmap is ${cert.signers.length} bytes for ${n} validators`;
  const indices = signerIndices(cert.signers);
  if (indices.some((i) => i >= n)) return 'signer bitmap names a validator beyond the set';
  if (indices.length !== cert.signatures.length) {
    return `${indices.length} signers but ${cert.signatures.length} signatures`;
  }
  if (indices.length < quorum(n)) return `${indices.length} signers, quorum is ${quorum(n)}`;
  const msg = voteBytes(domain.chainId, domain.genesisHash, cert.epoch, cert.kind, cert.view, cert.blockHash);
  for (let k = 0; k < indices.length; k++) {
    if (!verify(validators[indices[k] as number] as Uint8Array, msg, cert.signatures[k] as Uint8Array)) {
      return `signature ${k} (validator ${indices[k]}) does not verify`;
    }
  }
  return null;
}

// ---- governance ------------------------------------------------------------------------------

/** The state-tree key of the governance entry: SHA-256("taksa/state/validators"). */
export function governanceKey(): Uint8Array {
  return sha256(GOVERNANCE_KEY_DOMAIN);
}

export function readGovernance(r: Reader): Governance {
  return {
    validators: r.vec((r) => ({ address: r.fixed(32), name: r.string() }), 40),
    pending: r.vec((r) => ({ change: readChange(r), voters: r.vec((r) => r.fixed(32), 32), openedHeight: r.u64() }), 4),
    passed: r.vec((r) => ({ change: readChange(r), height: r.u64() }), 4),
    offences: r.vec(
      (r) => ({ validator: r.fixed(32), epoch: r.u64(), view: r.u64(), height: r.u64(), evidence: r.fixed(32) }),
      88,
    ),
  };
}

function genesisGovernanceBytes(g: Genesis): Uint8Array {
  const w = new Writer();
  w.vec(
    g.validators.map((v, i) => [v, g.validatorNames[i] as string] as const),
    (w, [a, n]) => w.fixed(a, 32).string(n),
  );
  return w.u64(0).u64(0).u64(0).finish();
}

// ---- merkle root of transactions -----------------------------------------------------------

/** The Merkle root of transaction hashes (RFC 6962 shape; the empty list hashes to SHA-256()). */
export function txRoot(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return sha256(new Uint8Array(0));
  if (hashes.length === 1) return sha256(Uint8Array.of(0), hashes[0] as Uint8Array);
  let split = 1;
  while (split * 2 < hashes.length) split *= 2;
  return sha256(Uint8Array.of(1), txRoot(hashes.slice(0, split)), txRoot(hashes.slice(split)));
}

/**
 * The root that audit path `path` leads to from transaction `hash` at `index` of `count`
 * (RFC 9162 section 2.1.3.2), or null when the path cannot be one of such a tree.
 */
export function txPathRoot(hash: Uint8Array, index: bigint, count: bigint, path: readonly Uint8Array[]): Uint8Array | null {
  if (index >= count) return null;
  let f = index;
  let s = count - 1n;
  let r = sha256(Uint8Array.of(0), hash);
  for (const p of path) {
    if (s === 0n) return null;
    if ((f & 1n) === 1n || f === s) {
      r = sha256(Uint8Array.of(1), p, r);
      if ((f & 1n) === 0n) {
        while ((f & 1n) === 0n && f !== 0n) {
          f >>= 1n;
          s >>= 1n;
        }
      }
    } else {
      r = sha256(Uint8Array.of(1), r, p);
    }
    f >>= 1n;
    s >>= 1n;
  }
  return s === 0n ? r : null;
}

// ---- genesis ---------------------------------------------------------------------------------

/** A genesis file that is not valid. */
export class GenesisError extends Error {
  override name = 'GenesisError';
}

function wholeNumber(text: unknown, what: string): bigint {
  if (typeof text !== 'string' || !/^[0-9]{1,39}$/.test(text)) {
    throw new GenesisError(`${what}: \`${String(text).slice(0, 50)}\` is not a whole number of base units`);
  }
  const v = BigInt(text);
  if (v > U128_MAX) throw new GenesisError(`${what}: \`${text}\` does not fit in 128 bits`);
  return v;
}

function u64Field(v: unknown, what: string): bigint {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new GenesisError(`${what} must be a whole number`);
  return BigInt(v);
}

const GENESIS_FIELDS = new Set([
  'comment',
  'chain_id',
  'address_hrp',
  'genesis_time_ms',
  'block_time_ms',
  'fee_floor',
  'epoch_length_blocks',
  'validators',
  'allocations',
]);

/**
 * Parses and checks a `genesis.json` (text or parsed JSON) with the node's rules
 * (`Genesis::from_file`).
 */
export function parseGenesis(json: string | Record<string, unknown>): Genesis {
  const f = (typeof json === 'string' ? JSON.parse(json) : json) as Record<string, unknown>;
  if (typeof f !== 'object' || f === null) throw new GenesisError('genesis is a JSON object');
  for (const k of Object.keys(f)) if (!GENESIS_FIELDS.has(k)) throw new GenesisError(`unknown field \`${k}\``);
  const chainId = f.chain_id;
  if (typeof chainId !== 'string' || chainId.length === 0 || utf8(chainId).length > 64) {
    throw new GenesisError('chain_id must be 1 to 64 bytes');
  }
  const hrp = f.address_hrp;
  if (typeof hrp !== 'string' || !/^[\x21-\x7e]{1,83}$/.test(hrp)) throw new GenesisError('address_hrp is not a bech32 prefix');
  const blockTimeMs = u64Field(f.block_time_ms, 'block_time_ms');
  if (blockTimeMs < 10n) throw new GenesisError('block_time_ms must be at least 10');
  const feeFloor = wholeNumber(f.fee_floor, 'fee_floor');
  const epochLength = f.epoch_length_blocks === undefined || f.epoch_length_blocks === null ? 100n : u64Field(f.epoch_length_blocks, 'epoch_length_blocks');
  if (epochLength < 2n) throw new GenesisError('epoch_length_blocks must be at least 2');
  const vals = f.validators as { name?: unknown; address?: unknown }[];
  if (!Array.isArray(vals) || vals.length === 0) throw new GenesisError('at least one validator is needed');
  if (vals.length > VALIDATORS_MAX) throw new GenesisError(`at most ${VALIDATORS_MAX} validators`);
  const validators: Uint8Array[] = [];
  const validatorNames: string[] = [];
  for (const v of vals) {
    if (typeof v.name !== 'string' || v.name.length === 0 || utf8(v.name).length > VALIDATOR_NAME_BYTES_MAX) {
      throw new GenesisError(`validator name \`${String(v.name)}\` is not 1 to ${VALIDATOR_NAME_BYTES_MAX} bytes`);
    }
    const a = decodeAddress(String(v.address), hrp);
    if (validators.some((x) => bytesEqual(x, a))) throw new GenesisError(`validator ${String(v.address)} is listed twice`);
    if (!isAccountKey(a)) throw new GenesisError(`validator ${String(v.address)} is not an ed25519 key of large order`);
    validators.push(a);
    validatorNames.push(v.name);
  }
  const allocs = f.allocations as { address?: unknown; balance?: unknown }[];
  if (!Array.isArray(allocs)) throw new GenesisError('allocations is a list');
  const allocations: [Uint8Array, bigint][] = [];
  let supply = 0n;
  for (const a of allocs) {
    const addr = decodeAddress(String(a.address), hrp);
    const bal = wholeNumber(a.balance, `balance of ${String(a.address)}`);
    supply += bal;
    if (supply > U128_MAX) throw new GenesisError('total supply overflows u128');
    if (!isAccountKey(addr)) throw new GenesisError(`address ${String(a.address)} is not an ed25519 key of large order`);
    if (allocations.some(([x]) => bytesEqual(x, addr))) throw new GenesisError(`address ${String(a.address)} is allocated twice`);
    allocations.push([addr, bal]);
  }
  allocations.sort((a, b) => compareBytes(a[0], b[0]));
  return {
    chainId,
    addressHrp: hrp,
    genesisTimeMs: u64Field(f.genesis_time_ms, 'genesis_time_ms'),
    blockTimeMs,
    feeFloor,
    epochLength,
    validators,
    validatorNames,
    allocations,
  };
}

/** The genesis in the shape of `genesis.json`. */
export function genesisToJson(g: Genesis, comment?: string): Record<string, unknown> {
  return {
    ...(comment === undefined ? {} : { comment }),
    chain_id: g.chainId,
    address_hrp: g.addressHrp,
    genesis_time_ms: Number(g.genesisTimeMs),
    block_time_ms: Number(g.blockTimeMs),
    fee_floor: g.feeFloor.toString(),
    epoch_length_blocks: Number(g.epochLength),
    validators: g.validators.map((v, i) => ({ name: g.validatorNames[i], address: encodeAddress(v, g.addressHrp) })),
    allocations: g.allocations.map(([a, b]) => ({ address: encodeAddress(a, g.addressHrp), balance: b.toString() })),
  };
}

function encodeGenesis(g: Genesis): Uint8Array {
  return new Writer()
    .string(g.chainId)
    .string(g.addressHrp)
    .u64(g.genesisTimeMs)
    .u64(g.blockTimeMs)
    .u128(g.feeFloor)
    .u64(g.epochLength)
    .vec(g.validators, (w, v) => w.fixed(v, 32))
    .vec(g.validatorNames, (w, n) => w.string(n))
    .vec(g.allocations, (w, [a, b]) => w.fixed(a, 32).u128(b))
    .finish();
}

/** The genesis block's header (height 0); its hash is the genesis hash. */
export function genesisHeader(g: Genesis): Header {
  const entries: [Uint8Array, Uint8Array][] = g.allocations
    .filter(([, b]) => b !== 0n)
    .map(([a, b]) => [accountKey(a), accountValueHash(b, 0n)]);
  entries.push([governanceKey(), sha256(genesisGovernanceBytes(g))]);
  return {
    chainId: g.chainId,
    height: 0n,
    view: 0n,
    parentHash: new Uint8Array(32),
    proposer: new Uint8Array(32),
    timestampMs: g.genesisTimeMs,
    txRoot: sha256(GENESIS_DOMAIN, encodeGenesis(g)),
    evidenceRoot: txRoot([]),
    stateRoot: treeRoot(entries),
    validatorSetHash: validatorSetHash(g.validators),
    parentCert: null,
  };
}

/** The genesis hash, `0x` + 64 hex digits, as `chain_getInfo.genesisHash` shows it. */
export function genesisHash(g: Genesis): string {
  return toHex0x(headerHash(genesisHeader(g)));
}

/** The dev chain's public mnemonic (`taksa dev`): UNSAFE for real money. */
export const DEV_MNEMONIC = 'test test test test test test test test test test test junk';
/** Genesis time of the dev chain and the testnet: 2026-01-01T00:00:00Z. */
const DEV_GENESIS_TIME_MS = 1_767_225_600_000n;

/**
 * The genesis of `taksa dev --block-time-ms <blockTimeMs>` (node/src/devnet.rs): chain
 * `taksa-dev`, prefix `tdev`, validator key 0 of {@link DEV_MNEMONIC}, accounts 0 to 9 with
 * 1,000,000 TKS each, epochs of 1000 blocks, fee floor 1000. Its validator keys are public:
 * receipts of the dev chain prove nothing about real money.
 */
export function devGenesis(blockTimeMs = 200): Genesis {
  const seed = mnemonicToSeed(DEV_MNEMONIC);
  const allocations: [Uint8Array, bigint][] = [];
  for (let i = 0; i < 10; i++) allocations.push([Keypair.fromSeed(seed, accountPath(i)).publicKey, 1_000_000_000_000_000n]);
  allocations.sort((a, b) => compareBytes(a[0], b[0]));
  return {
    chainId: 'taksa-dev',
    addressHrp: 'tdev',
    genesisTimeMs: DEV_GENESIS_TIME_MS,
    blockTimeMs: BigInt(Math.max(blockTimeMs, 10)),
    feeFloor: 1000n,
    epochLength: 1000n,
    validators: [Keypair.fromSeed(seed, validatorPath(0)).publicKey],
    validatorNames: ['dev-validator'],
    allocations,
  };
}

/**
 * The public testnet's mnemonic (`taksa-testnet-1`, the root `genesis.json`): the published BIP39
 * test phrase. Its validator keys 0 to 3 are the testnet's validators: UNSAFE for real money.
 */
export const TESTNET_MNEMONIC =
  'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
/** How many validators the public testnet's genesis names (validator keys 0 to 3 of {@link TESTNET_MNEMONIC}). */
export const TESTNET_VALIDATORS = 4;

let publicKeysCache: { dev: Uint8Array[]; testnet: Uint8Array[] } | null = null;

/** The validator keys anyone can derive: the dev chain's (validator key 0 of {@link DEV_MNEMONIC}) and the testnet's. */
export function publicValidatorKeyList(): { dev: Uint8Array[]; testnet: Uint8Array[] } {
  if (publicKeysCache === null) {
    const dev = mnemonicToSeed(DEV_MNEMONIC);
    const testnet = mnemonicToSeed(TESTNET_MNEMONIC);
    publicKeysCache = {
      dev: [Keypair.fromSeed(dev, validatorPath(0)).publicKey],
      testnet: Array.from({ length: TESTNET_VALIDATORS }, (_, i) => Keypair.fromSeed(testnet, validatorPath(i)).publicKey),
    };
  }
  return { dev: [...publicKeysCache.dev], testnet: [...publicKeysCache.testnet] };
}

/**
 * Whether validator keys derived from a published mnemonic can sign for `validators` on their
 * own: `'dev'` when the dev chain's validator key (validator key 0 of {@link DEV_MNEMONIC},
 * `devGenesis`) makes a quorum of the set, `'testnet'` when the public testnet's (validator keys
 * 0 to 3 of {@link TESTNET_MNEMONIC}, with the dev key) do, else null. Anyone can finalize blocks,
 * and so forge receipts, for such a set; node/src/receipt_cmd.rs warns about the same chains.
 */
export function publicKeysQuorum(validators: readonly Uint8Array[]): 'dev' | 'testnet' | null {
  const n = validators.length;
  if (n === 0) return null;
  const { dev, testnet } = publicValidatorKeyList();
  const among = (keys: Uint8Array[]) => validators.filter((v) => keys.some((k) => bytesEqual(k, v))).length;
  if (among(dev) >= quorum(n)) return 'dev';
  if (among([...dev, ...testnet]) >= quorum(n)) return 'testnet';
  return null;
}

export { CodecError };
