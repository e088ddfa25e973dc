/**
 * The typed JSON-RPC client (docs/rpc.md): one method per method of rpc/openrpc.json (generated
 * in rpc-types.ts), over HTTP POST with `fetch` or over a WebSocket, with resumable
 * subscriptions over the WebSocket, and a few wallet helpers (balance, transfer, waiting for
 * finality).
 */
import { formatAmount, parseBaseUnits } from './amount.js';
import { decodeAddress } from './address.js';
import { fromHex, toHex } from './bytes.js';
import { RpcError, TransportError } from './errors.js';
import type { Keypair } from './keys.js';
import { checkReceiptHash, type PaymentReceipt } from './receipt.js';
import {
  type ChainInfo,
  type Hash,
  RPC_SUBSCRIPTIONS,
  type RpcMethodName,
  type RpcMethods,
  RpcMethodsBase,
  type RpcSubscriptionMethod,
  type TxStatus,
} from './rpc-types.js';
import type { Notifications } from './events.js';
import { Subscription, type ReconnectOptions, type SubscriptionOptions } from './subscription.js';
import {
  checkTransaction,
  type SignedTransaction,
  signTransaction,
  transaction,
} from './transaction.js';
import { type WebSocketConstructor, WsConnection } from './ws.js';

/** How a {@link Client} reaches the node. */
export interface ClientOptions {
  /** The node's RPC URL: `http(s)://…` (calls over HTTP) or `ws(s)://…` (calls over the WebSocket). */
  url: string;
  /** The WebSocket URL for subscriptions; default: `url` with `http` replaced by `ws`. */
  wsUrl?: string;
  /** A `fetch` implementation; default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch;
  /**
   * A WebSocket constructor; default `globalThis.WebSocket` (browsers, Node 22+). On Node 20
   * pass the `ws` package's: `new Client({ url, WebSocket })`.
   */
  WebSocket?: WebSocketConstructor;
  /** Per-call timeout, in milliseconds (default 30000). */
  timeoutMs?: number;
  /** Extra HTTP headers (e.g. authorization for a proxy). */
  headers?: Record<string, string>;
  /** Default reconnection backoff of subscriptions. */
  reconnect?: ReconnectOptions;
  /**
   * Subscriptions per WebSocket connection (default {@link SUBSCRIPTIONS_PER_CONNECTION}, the
   * node's limit): past it the client opens another connection. A node that refuses one with
   * `too_many_subscriptions` sooner is taken at its word for that connection.
   */
  subscriptionsPerConnection?: number;
  /** Default idle check of subscriptions (see {@link SubscriptionOptions.idleTimeoutMs}). */
  idleTimeoutMs?: number;
  /**
   * The network you mean to use. When given, {@link Client.info} (and so `transfer`, which
   * signs for the chain id and genesis hash it reports) refuses a node that reports another
   * chain id or genesis hash with a {@link ChainMismatchError}. Without it, the first
   * `chain_getInfo` answer is trusted. `genesisHash` is hex, with or without `0x`.
   */
  expect?: { chainId: string; genesisHash: string };
}

/**
 * The highest fee {@link Client.transfer} signs unless `maxFee` says otherwise: 10,000,000 base
 * units (0.01 TKS), 100 times the dev and testnet account-creation fee.
 */
export const DEFAULT_MAX_FEE = 10_000_000n;

/** The subscriptions a node allows on one connection (docs/rpc.md; more get `too_many_subscriptions`, -32006). */
export const SUBSCRIPTIONS_PER_CONNECTION = 16;

/** How far past the committed nonce the node's `account_getNonce` may be for {@link Client.transfer} to use it. */
export const MAX_NONCE_AHEAD = 64;

/** What a transfer needs beyond the sender's key. */
export interface TransferOptions {
  /** The recipient's address. */
  to: string;
  /** Base units (use `parseAmount("1.5")` for TKS). */
  amount: bigint;
  /**
   * Base units. Default: the fee floor, or `accountCreationFee` when the transfer creates the
   * recipient's account (a non-zero amount to an address with no committed balance or nonce).
   */
  fee?: bigint;
  memo?: string | null;
  validUntilHeight?: bigint | number | null;
  /**
   * Default: `account_getNonce` (the next nonce, counting this node's pool), used only if it is
   * at least the committed nonce of `account_get` and at most {@link MAX_NONCE_AHEAD} past it.
   * A nonce given here is used as it is.
   */
  nonce?: bigint | number;
  /**
   * The highest fee to sign, in base units, whether the fee was given or chosen from the node's
   * `chain_getInfo` (default {@link DEFAULT_MAX_FEE}, 0.01 TKS). A higher fee throws a
   * {@link TransferCheckError} before anything is signed.
   */
  maxFee?: bigint;
}

/** The node reports another network than {@link ClientOptions.expect} names. */
export class ChainMismatchError extends Error {
  override name = 'ChainMismatchError';
  constructor(
    readonly expected: { chainId: string; genesisHash: string },
    readonly got: { chainId: string; genesisHash: string },
    url = 'the node',
  ) {
    super(
      `${url} is on chain \`${got.chainId}\` with genesis ${got.genesisHash}, ` +
        `expected chain \`${expected.chainId}\` with genesis ${expected.genesisHash}: refusing to use it`,
    );
  }
}

/** {@link Client.transfer} refused to sign: the fee is above `maxFee`, or the node's nonce is implausible. */
export class TransferCheckError extends Error {
  override name = 'TransferCheckError';
  constructor(
    readonly check: 'fee' | 'nonce',
    message: string,
  ) {
    super(message);
  }
}

function normalizeHash(hash: string): string {
  return `0x${toHex(fromHex(hash, 32, 'genesisHash'))}`;
}

/** A transaction that ended without being finalized. */
export class TransactionFailedError extends Error {
  override name = 'TransactionFailedError';
  constructor(readonly status: TxStatus) {
    super(`transaction ${status.hash} was ${status.status}${status.reason ? ` (${status.reason})` : ''}: ${status.message ?? ''}`);
  }
}

/**
 * The largest HTTP answer the client reads: the node's response limit (16 MiB,
 * `response_bytes_max`) plus 64 KiB for the JSON-RPC envelope. A longer body is abandoned
 * with a {@link TransportError}.
 */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024 + 64 * 1024;

/** Reads a response body as text, at most `limit` bytes; past that, cancels it and throws. */
async function readBody(res: Response, limit: number, method: string, abort: () => void): Promise<string> {
  const tooLarge = (n: number | string) => {
    abort();
    return new TransportError(`${method}: the answer is larger than ${limit} bytes (${n}); abandoned`, res.status);
  };
  const declared = Number(res.headers?.get?.('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(`Content-Length ${declared}`);
  const stream = res.body;
  if (!stream || typeof stream.getReader !== 'function') {
    // A fetch without streams: the length is checked once read.
    const t = await res.text();
    if (t.length > limit) throw tooLarge(`${t.length} characters`);
    return t;
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      reader.cancel().catch(() => {});
      throw tooLarge(`over ${total} bytes read`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A Taksa node's JSON-RPC API. */
export class Client extends RpcMethodsBase {
  readonly url: string;
  readonly wsUrl: string;
  private readonly options: ClientOptions;
  private readonly timeoutMs: number;
  private nextId = 1;
  private ws: WsConnection | null = null;
  private subscriptions = new Set<Subscription<any>>();
  /** The connection each subscription uses, and the extra connections opened past the per-connection limit. */
  private bound = new Map<Subscription<any>, WsConnection>();
  private pool: WsConnection[] = [];
  private capacity = new WeakMap<WsConnection, number>();
  private infoCache: Promise<ChainInfo> | null = null;
  private closed = false;
  private expected: { chainId: string; genesisHash: string } | null = null;

  constructor(url: string | ClientOptions, options: Omit<ClientOptions, 'url'> = {}) {
    super();
    this.options = typeof url === 'string' ? { ...options, url } : { ...url };
    this.url = this.options.url.replace(/\/+$/, '');
    if (!/^(https?|wss?):\/\//.test(this.url)) throw new TypeError(`the RPC URL must be http(s):// or ws(s)://, got ${this.url}`);
    this.wsUrl = this.options.wsUrl ?? this.url.replace(/^http/, 'ws');
    this.timeoutMs = this.options.timeoutMs ?? 30_000;
    const expect = this.options.expect;
    if (expect !== undefined) {
      if (typeof expect.chainId !== 'string') throw new TypeError('expect.chainId must be a string');
      this.expected = { chainId: expect.chainId, genesisHash: normalizeHash(expect.genesisHash) };
    }
  }

  private get overWebSocket(): boolean {
    return /^wss?:/.test(this.url);
  }

  /** Sends one call (positional parameters) and returns its result, or throws {@link RpcError} / {@link TransportError}. */
  call<M extends RpcMethodName>(method: M, params: RpcMethods[M]['params']): Promise<RpcMethods[M]['result']> {
    if (this.overWebSocket) return this.connection().then((c) => c.request(method, params as unknown[])) as Promise<never>;
    return this.httpCall(method, params as unknown[]) as Promise<RpcMethods[M]['result']>;
  }

  private async httpCall(method: string, params: unknown[]): Promise<unknown> {
    const fetchFn = this.options.fetch ?? globalThis.fetch;
    if (typeof fetchFn !== 'function') throw new TransportError('no fetch: pass options.fetch');
    const id = this.nextId++;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let res: Response;
    let body: string;
    try {
      res = await fetchFn(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.options.headers },
        body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
        signal: controller.signal,
      });
      body = await readBody(res, MAX_RESPONSE_BYTES, method, () => controller.abort());
    } catch (e) {
      if (e instanceof TransportError) throw e;
      const why = controller.signal.aborted ? `no answer within ${this.timeoutMs} ms` : (e as Error).message;
      throw new TransportError(`${method} to ${this.url} failed: ${why}`, undefined, e);
    } finally {
      clearTimeout(timer);
    }
    let msg: any;
    try {
      msg = JSON.parse(body);
    } catch {
      throw new TransportError(`${method}: HTTP ${res.status} with a body that is not JSON: ${body.slice(0, 200)}`, res.status);
    }
    if (msg && typeof msg === 'object' && msg.error !== undefined) throw RpcError.from(msg.error, method);
    if (!res.ok) throw new TransportError(`${method}: HTTP ${res.status}`, res.status);
    if (!msg || typeof msg !== 'object' || !('result' in msg)) {
      throw new TransportError(`${method}: the answer is not a JSON-RPC response`, res.status);
    }
    return msg.result;
  }

  /** The shared WebSocket connection, opened (or reopened after a drop) on demand. */
  connection(): Promise<WsConnection> {
    if (this.closed) return Promise.reject(new TransportError('the client is closed'));
    const current = this.ws;
    // A socket that is CLOSING or CLOSED counts as closed even before its close event.
    if (current && !current.isClosed) return current.ready.then(() => current);
    const Ctor = this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) {
      return Promise.reject(
        new TransportError('no WebSocket implementation: pass options.WebSocket (e.g. the ws package) on Node 20'),
      );
    }
    const conn = new WsConnection(this.wsUrl, Ctor, this.timeoutMs);
    this.ws = conn;
    return conn.ready.then(() => conn);
  }

  private load(conn: WsConnection): number {
    let n = 0;
    for (const c of this.bound.values()) if (c === conn) n++;
    return n;
  }

  /**
   * The connection for a subscription: the one it already uses while open, else the first open
   * one with room (at most `subscriptionsPerConnection`), else a new one.
   */
  subscriptionConnection(sub: Subscription<any>): Promise<WsConnection> {
    if (this.closed) return Promise.reject(new TransportError('the client is closed'));
    const current = this.bound.get(sub);
    if (current && !current.isClosed) return current.ready.then(() => current);
    this.bound.delete(sub);
    this.pool = this.pool.filter((c) => !c.isClosed);
    const limit = this.options.subscriptionsPerConnection ?? SUBSCRIPTIONS_PER_CONNECTION;
    const shared = this.ws && !this.ws.isClosed ? this.ws : null;
    for (const c of shared ? [shared, ...this.pool] : this.pool) {
      if (this.load(c) < Math.min(limit, this.capacity.get(c) ?? limit)) {
        this.bound.set(sub, c);
        return c.ready.then(() => c);
      }
    }
    if (!shared) {
      // No shared connection yet (or it closed): open it, for calls and subscriptions alike.
      const opened = this.connection();
      const conn = this.ws;
      if (conn) this.bound.set(sub, conn);
      return opened;
    }
    const Ctor = (this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket) as WebSocketConstructor;
    const conn = new WsConnection(this.wsUrl, Ctor, this.timeoutMs);
    this.pool.push(conn);
    this.bound.set(sub, conn);
    return conn.ready.then(() => conn);
  }

  /**
   * The node refused a subscription with `too_many_subscriptions` on `conn`: that connection
   * holds no more than the others it carries. Returns whether to try another connection (false
   * when the node refuses even a connection with no other subscription).
   */
  subscriptionRefused(sub: Subscription<any>, conn: WsConnection): boolean {
    const others = this.load(conn) - (this.bound.get(sub) === conn ? 1 : 0);
    if (others <= 0) return false;
    this.capacity.set(conn, Math.min(others, this.capacity.get(conn) ?? others));
    this.bound.delete(sub);
    return true;
  }

  /** A subscription ended: it no longer counts on its connection; an extra connection left with none is closed. */
  releaseSubscription(sub: Subscription<any>): void {
    const conn = this.bound.get(sub);
    this.bound.delete(sub);
    this.subscriptions.delete(sub);
    if (conn && conn !== this.ws && this.load(conn) === 0) {
      this.pool = this.pool.filter((c) => c !== conn);
      conn.close();
    }
  }

  /** Opens a resumable subscription; the generated `eventsSubscribe`, `accountSubscribe`, … call this. */
  subscription<S extends RpcSubscriptionMethod>(
    method: S,
    params: RpcMethods[S]['params'],
    options: SubscriptionOptions = {},
  ): Subscription<Notifications[(typeof RPC_SUBSCRIPTIONS)[S]['notification']]> {
    const spec = RPC_SUBSCRIPTIONS[method];
    const all = [...(params as unknown[])];
    const resumable = method !== 'tx_subscribeStatus';
    const fixed = method === 'account_subscribe' || method === 'tx_subscribeStatus' ? all.slice(0, 1) : [];
    const start = resumable ? ((all[fixed.length] as { after?: string; fromHeight?: number } | null | undefined) ?? null) : null;
    const sub = new Subscription<Notifications[(typeof RPC_SUBSCRIPTIONS)[S]['notification']]>(
      this,
      { method, unsubscribe: spec.unsubscribe, fixed, resumable, start: start ? { ...start } : null },
      { reconnect: this.options.reconnect, idleTimeoutMs: this.options.idleTimeoutMs, ...options } as SubscriptionOptions,
    );
    this.subscriptions.add(sub);
    return sub;
  }

  /** Every finalized event (transfers and blocks) in cursor order, resumed across reconnections. */
  subscribeEvents(start?: { after?: string; fromHeight?: number }, options?: SubscriptionOptions) {
    return this.subscription('events_subscribe', (start ? [start] : []) as RpcMethods['events_subscribe']['params'], options);
  }

  /** An address's finalized transfers, resumed across reconnections. */
  subscribeAccount(address: string, start?: { after?: string; fromHeight?: number }, options?: SubscriptionOptions) {
    return this.subscription(
      'account_subscribe',
      (start ? [address, start] : [address]) as RpcMethods['account_subscribe']['params'],
      options,
    );
  }

  /** Closes every subscription and the WebSocket. */
  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.subscriptions.clear();
    this.closed = true;
    this.ws?.close();
    this.ws = null;
    for (const c of this.pool) c.close();
    this.pool = [];
    this.bound.clear();
  }

  // ---- wallet helpers ----------------------------------------------------------------------

  /**
   * `chain_getInfo`, fetched once and kept (chain id, genesis hash, prefix and fees do not
   * change). With {@link ClientOptions.expect}, a node on another chain is refused with a
   * {@link ChainMismatchError} (and asked again on the next call).
   */
  info(): Promise<ChainInfo> {
    if (!this.infoCache) {
      this.infoCache = this.chainGetInfo().then((info) => {
        this.checkExpected(info);
        return info;
      });
      this.infoCache.catch(() => {
        this.infoCache = null;
      });
    }
    return this.infoCache;
  }

  private checkExpected(info: ChainInfo): void {
    const want = this.expected;
    if (want === null) return;
    let gotHash: string;
    try {
      gotHash = normalizeHash(info.genesisHash);
    } catch {
      gotHash = String(info.genesisHash);
    }
    if (info.chainId !== want.chainId || gotHash !== want.genesisHash) {
      throw new ChainMismatchError(want, { chainId: String(info.chainId), genesisHash: String(info.genesisHash) }, `the node at ${this.url}`);
    }
  }

  /** The committed balance, in base units. */
  async balance(address: string): Promise<bigint> {
    return parseBaseUnits(await this.accountGetBalance(address));
  }

  /** Submits a signed transaction; returns its hash. Submitting the same bytes again returns the same hash. */
  submit(signed: SignedTransaction | string): Promise<Hash> {
    return this.txSubmit(typeof signed === 'string' ? signed : signed.hex);
  }

  /**
   * Builds, checks, signs and submits a transfer from `from`. Returns the signed transaction
   * (its `hash` is what `tx_get` takes); wait for it with {@link Client.waitForTransaction}.
   *
   * The node is trusted for the chain id and genesis hash (unless {@link ClientOptions.expect}
   * pins them), the fee and the nonce; the damage a wrong answer can do is bounded: the fee by
   * `maxFee` ({@link DEFAULT_MAX_FEE}), the nonce to at most {@link MAX_NONCE_AHEAD} past the
   * committed one. Throws {@link ChainMismatchError} or {@link TransferCheckError} before signing.
   */
  async transfer(from: Keypair, options: TransferOptions): Promise<SignedTransaction> {
    const info = await this.info();
    const hrp = info.addressHrp;
    const sender = from.address(hrp);
    const to = decodeAddress(options.to, hrp);
    const maxFee = options.maxFee ?? DEFAULT_MAX_FEE;
    if (typeof maxFee !== 'bigint' || maxFee < 0n) throw new TypeError('maxFee must be a non-negative bigint (base units)');
    let fee = options.fee;
    if (fee === undefined) {
      fee = parseBaseUnits(info.feeFloor);
      if (options.amount > 0n) {
        const recipient = await this.accountGet(options.to);
        if (recipient.balance === '0' && recipient.nonce === 0) fee = parseBaseUnits(info.accountCreationFee);
      }
    }
    if (fee > maxFee) {
      throw new TransferCheckError(
        'fee',
        `the fee ${fee} (${formatAmount(fee)} TKS) is above maxFee ${maxFee} (${formatAmount(maxFee)} TKS): ` +
          'not signed (pass a higher maxFee if you mean to pay it)',
      );
    }
    let nonce = options.nonce;
    if (nonce === undefined) {
      const [next, account] = await Promise.all([this.accountGetNonce(sender), this.accountGet(sender)]);
      const committed = account?.nonce;
      if (!Number.isSafeInteger(next) || next < 0 || !Number.isSafeInteger(committed) || committed < 0) {
        throw new TransferCheckError('nonce', `the node answered an invalid nonce (${String(next)}, committed ${String(committed)})`);
      }
      if (next < committed || next > committed + MAX_NONCE_AHEAD) {
        throw new TransferCheckError(
          'nonce',
          `the node's next nonce ${next} for ${sender} is not within [${committed}, ${committed + MAX_NONCE_AHEAD}] ` +
            `(its committed nonce ${committed} plus at most ${MAX_NONCE_AHEAD}): not signed (pass nonce to choose it yourself)`,
        );
      }
      nonce = next;
    }
    const tx = transaction({
      chainId: info.chainId,
      from: from.publicKey,
      to,
      amount: options.amount,
      fee,
      nonce,
      validUntilHeight: options.validUntilHeight ?? null,
      memo: options.memo ?? null,
    });
    checkTransaction(tx, { chainId: info.chainId, feeFloor: info.feeFloor });
    const signed = signTransaction(tx, from, info.genesisHash);
    const hash = await this.submit(signed);
    if (hash !== signed.hash) throw new TransportError(`the node answered hash ${hash} for transaction ${signed.hash}`);
    return signed;
  }

  /**
   * Waits until the transaction is final and returns its status (height, index, block). Throws
   * {@link TransactionFailedError} if it is rejected or expires, {@link TransportError} on timeout.
   * Polls `tx_get` (every `pollMs`, default 100).
   */
  async waitForTransaction(hash: Hash, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<TxStatus> {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    const pollMs = options.pollMs ?? 100;
    for (;;) {
      let status: TxStatus | null = null;
      try {
        status = await this.txGet(hash);
      } catch (e) {
        if (!(e instanceof RpcError && e.is('tx_not_found')) && !(e instanceof TransportError)) throw e;
      }
      if (status?.status === 'finalized') return status;
      if (status && (status.status === 'rejected' || status.status === 'expired')) throw new TransactionFailedError(status);
      if (Date.now() > deadline) {
        throw new TransportError(`transaction ${hash} is not final after ${options.timeoutMs ?? 60_000} ms (${status?.status ?? 'unknown'})`);
      }
      await sleep(pollMs);
    }
  }

  /**
   * `tx_getProof`: the transaction's receipt (docs/receipts.md), to check with `verifyReceipt`.
   * Throws a `ReceiptError` `wrong_tx` if the node answers a receipt for another transaction
   * (whose `tx` bytes do not hash to `hash`).
   */
  async receipt(hash: Hash): Promise<PaymentReceipt> {
    const receipt = (await this.txGetProof(hash)) as unknown as PaymentReceipt;
    checkReceiptHash(receipt, hash);
    return receipt;
  }
}
