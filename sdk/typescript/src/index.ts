/**
 * @taksa/sdk: the TypeScript SDK of the Taksa chain.
 *
 * - Keys: BIP39 mnemonics, SLIP-0010 ed25519 at `m/44'/7331'/i'/0'` ({@link Keypair}).
 * - Addresses: bech32m with the network's prefix ({@link encodeAddress}, {@link decodeAddress}).
 * - Amounts: bigint base units, decimal TKS text ({@link parseAmount}, {@link formatAmount}).
 * - Transactions: the exact bytes, signature and hash of docs/transaction-format.md, transfers
 *   and validator votes ({@link transaction}, {@link signTransaction}).
 * - RPC: a typed client over HTTP and WebSocket, generated from rpc/openrpc.json, with
 *   subscriptions that resume from their cursor ({@link Client}, {@link Subscription}).
 * - Receipts: payment receipts checked with no node ({@link verifyReceipt}).
 */
export * from './address.js';
export * from './amount.js';
export * from './bytes.js';
export * from './chain.js';
export * from './client.js';
export * from './codec.js';
export * from './crypto.js';
export * from './errors.js';
export * from './events.js';
export * from './keys.js';
export * from './receipt.js';
export * from './rpc-types.js';
export * from './subscription.js';
export * from './transaction.js';
export * from './tree.js';
export * from './ws.js';
