/**
 * What subscriptions deliver (docs/rpc.md "Subscriptions"). rpc/openrpc.json names each
 * subscription's notification method but does not describe its payload, so these types follow
 * docs/rpc.md and the node's `NotificationJson` (rpc/src/json.rs); the result types they embed
 * (BlockSummary, TxStatus) are the generated ones.
 */
import type { Address, Amount, BlockSummary, Hash, TxStatus } from './rpc-types.js';

/** `events_event`: a finalized transfer at cursor (height, index). */
export interface TransferEvent {
  type: 'transfer';
  cursor: string;
  height: number;
  index: number;
  transfer: {
    hash: Hash;
    from: Address;
    to: Address;
    amount: Amount;
    fee: Amount;
    nonce: number;
    memo: string | null;
    /** The sender's balance after it. */
    fromBalance: Amount;
    /** The recipient's balance after it. */
    toBalance: Amount;
    blockHash: Hash;
    timestampMs: number;
  };
}

/** `events_event` and `chain_finalized`: a finalized block, whose event comes after its transfers (cursor (height, txCount)). */
export interface BlockEvent {
  type: 'block';
  cursor: string;
  block: BlockSummary;
}

/** `account_activity`: a finalized transfer touching the subscribed address, from its side. */
export interface ActivityEvent {
  type: 'activity';
  cursor: string;
  height: number;
  index: number;
  hash: Hash;
  direction: 'sent' | 'received' | 'self';
  /** The other side (the address itself for a transfer to self). */
  counterparty: Address;
  amount: Amount;
  fee: Amount;
  nonce: number;
  memo: string | null;
  /** The address's balance right after the transfer. */
  balanceAfter: Amount;
  blockHash: Hash;
  timestampMs: number;
}

/** `chain_newHead` before finality: the notarized block's header, no cursor. */
export interface NotarizedHeadEvent {
  type: 'head';
  status: 'notarized';
  block: {
    hash: Hash;
    height: number;
    view: number;
    parentHash: Hash;
    proposer: Address;
    timestampMs: number;
    stateRoot: Hash;
  };
}

/** `chain_newHead` once final, with its cursor. */
export interface FinalizedHeadEvent {
  type: 'head';
  status: 'finalized';
  cursor: string;
  block: BlockSummary;
}

/** `tx_status`: the object `tx_get` returns, with `type: "status"`. */
export type StatusEvent = TxStatus & { type: 'status' };

/**
 * Any stream: the client read too slowly and the node closed the subscription. Resubscribing
 * with `{after: resumeCursor}` continues with no gap; {@link Subscription} resubscribes by itself
 * after the last event it received (the notice's `resumeCursor` only when it received none) and
 * never hands this notice to its consumer. `resumeCursor` is null when nothing was delivered yet.
 */
export interface LaggedNotice {
  type: 'lagged';
  resumeCursor: string | null;
  message: string;
}

/** The payload of each notification method. */
export interface Notifications {
  events_event: TransferEvent | BlockEvent;
  chain_finalized: BlockEvent;
  chain_newHead: NotarizedHeadEvent | FinalizedHeadEvent;
  account_activity: ActivityEvent;
  tx_status: StatusEvent;
}

/** Any event a subscription can deliver. */
export type AnyEvent = Notifications[keyof Notifications];

/**
 * An event's place in the chain's event order: (height, index), the block's own event at
 * (height, txCount). Null for notices without a cursor (notarized heads, statuses).
 */
export function eventPosition(e: AnyEvent): [number, number] | null {
  switch (e.type) {
    case 'transfer':
    case 'activity':
      return [e.height, e.index];
    case 'block':
      return [e.block.height, e.block.txCount];
    case 'head':
      return e.status === 'finalized' ? [e.block.height, e.block.txCount] : null;
    default:
      return null;
  }
}

/** Compares two event positions: negative, zero or positive. */
export function comparePositions(a: readonly [number, number], b: readonly [number, number]): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isCursor = (v: unknown): boolean => typeof v === 'string' && v.length > 0 && v.length <= 256;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function blockProblem(b: unknown, withTxCount: boolean): string | null {
  if (!isObject(b)) return 'no block object';
  if (!isCount(b.height)) return 'block.height is not a whole number';
  if (withTxCount && !isCount(b.txCount)) return 'block.txCount is not a whole number';
  return null;
}

/**
 * Why `n` is not a well-formed notification payload, or null when it is. A minimal check of
 * what the SDK reads: an object with a string `type`; a cursor string and whole-number
 * height/index on transfers and activity; a cursor and `block.height`/`block.txCount` on
 * blocks and finalized heads; `block.height` on notarized heads; a string `status` on statuses;
 * a cursor or null as a lagged notice's `resumeCursor`. Types this SDK does not know pass.
 */
export function notificationProblem(n: unknown): string | null {
  if (!isObject(n)) return 'the notification is not an object';
  const e = n;
  switch (e.type) {
    case 'lagged':
      return e.resumeCursor === null || e.resumeCursor === undefined || isCursor(e.resumeCursor)
        ? null
        : 'lagged: resumeCursor is neither a cursor nor null';
    case 'transfer':
    case 'activity':
      if (!isCursor(e.cursor)) return `${e.type}: no cursor string`;
      if (!isCount(e.height) || !isCount(e.index)) return `${e.type}: height or index is not a whole number`;
      if (e.type === 'transfer' && !isObject(e.transfer)) return 'transfer: no transfer object';
      return null;
    case 'block': {
      if (!isCursor(e.cursor)) return 'block: no cursor string';
      const p = blockProblem(e.block, true);
      return p === null ? null : `block: ${p}`;
    }
    case 'head': {
      if (e.status === 'notarized') {
        const p = blockProblem(e.block, false);
        return p === null ? null : `head: ${p}`;
      }
      if (e.status !== 'finalized') return 'head: status is neither notarized nor finalized';
      if (!isCursor(e.cursor)) return 'head: no cursor string';
      const p = blockProblem(e.block, true);
      return p === null ? null : `head: ${p}`;
    }
    case 'status':
      return typeof e.status === 'string' ? null : 'status: no status string';
    default:
      return typeof e.type === 'string' ? null : 'the notification has no type';
  }
}
