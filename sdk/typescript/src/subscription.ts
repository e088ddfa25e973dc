/**
 * Subscriptions that nobody misses (docs/rpc.md "Subscriptions"). Every event carries a cursor
 * (height, index), and the node can start a subscription strictly after any cursor it issued.
 * A {@link Subscription} remembers the cursor of the last event it received and, when the
 * connection drops or the node sends `lagged`, subscribes again with `{after: cursor}` (the
 * notice's `resumeCursor` only when it has received nothing), with exponential backoff between
 * attempts; the backoff starts over only once an event came through. Events are handed over in
 * cursor order, each exactly once: anything at or before the last position received is dropped.
 * `cursor` is the cursor of the last event handed over to the consumer.
 *
 * A notification of the wrong shape (see {@link notificationProblem}) is a protocol error: the
 * connection is closed and the subscription resumes from its own cursor.
 *
 * Memory is bounded: when more than `maxQueued` events wait for the consumer, the subscription
 * is ended on the node and opened again after the consumer catches up, from the last cursor.
 *
 * The client spreads subscriptions over connections, at most 16 per connection (the node's limit);
 * a node that refuses one with `too_many_subscriptions` even on a connection with no other fails
 * it with that error. The idle check (`idleTimeoutMs`) leaves a node that finalized past the last
 * event received but sent nothing for that long, and resumes on a new connection.
 *
 * Streams without cursors: `tx_subscribeStatus` is resumed by subscribing again (the first
 * notification is the current status; a repeat of the last status is dropped) and ends after a
 * final status; notarized heads of `chain_subscribeNewHeads` are best-effort (a repeat of a
 * height already announced is dropped), their finalized forms are resumed by cursor.
 */
import { ProtocolError, RpcError, TransportError } from './errors.js';
import { type AnyEvent, comparePositions, eventPosition, type LaggedNotice, notificationProblem } from './events.js';
import type { WsConnection } from './ws.js';

/** Backoff between reconnection attempts. */
export interface ReconnectOptions {
  /** The first delay, in milliseconds (default 100). */
  initialDelayMs?: number;
  /** The longest delay (default 5000). */
  maxDelayMs?: number;
  /** Attempts in a row before the subscription fails (default: unlimited). */
  maxAttempts?: number;
}

/** Options of one subscription. */
export interface SubscriptionOptions {
  reconnect?: ReconnectOptions;
  /** Events buffered for a slow consumer before the node subscription is paused (default 10000). */
  maxQueued?: number;
  /**
   * The idle check (default 60000 ms; 0 turns it off): when nothing arrives for this long on a
   * subscription that receives every finalized block (`events_subscribe`,
   * `chain_subscribeFinalized`, `chain_subscribeNewHeads`), the client asks `chain_getInfo`; if
   * the node's `finalizedHeight` is past the last height received, or it does not answer, the
   * node is withholding or stalled: the connection is closed and the subscription resumes from
   * its cursor on a new one (`stats.stalls`).
   */
  idleTimeoutMs?: number;
}

/** The subscriptions that get a notification for every finalized block, and so can be checked for silence. */
const EVERY_BLOCK = new Set(['events_subscribe', 'chain_subscribeFinalized', 'chain_subscribeNewHeads']);

/** The height of a cursor (`01` ‖ height u64 BE ‖ index u32 BE, hex), or null. */
function cursorHeight(cursor: string | null): number | null {
  if (cursor === null || !/^01[0-9a-fA-F]{24}$/.test(cursor)) return null;
  return Number.parseInt(cursor.slice(2, 18), 16);
}

/** Counters of what a subscription went through. */
export interface SubscriptionStats {
  /** Successful subscribe calls (1 + resumptions). */
  subscribes: number;
  /** Connections lost and reopened. */
  reconnects: number;
  /** `lagged` notices received. */
  lagged: number;
  /** Events dropped because they were at or before the last one taken. */
  duplicates: number;
  /** Times the node subscription was paused for a slow consumer. */
  pauses: number;
  /** Connections closed because the node sent a malformed notification or message. */
  protocolErrors: number;
  /** Connections closed by the idle check: the node finalized past the last event but sent nothing. */
  stalls: number;
}

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  /** An open connection (the client's shared one, opened or reopened as needed). */
  connection(): Promise<WsConnection>;
  /** The connection for this subscription (the client spreads subscriptions over connections); default {@link SubscriptionHost.connection}. */
  subscriptionConnection?(sub: Subscription<any>): Promise<WsConnection>;
  /** The node answered `too_many_subscriptions` on `conn`: whether to try another connection. Default: fail. */
  subscriptionRefused?(sub: Subscription<any>, conn: WsConnection): boolean;
  /** The subscription ended. */
  releaseSubscription?(sub: Subscription<any>): void;
}

/** Why one node-side subscription ended. */
type End = 'lagged' | 'closed' | 'paused' | 'done' | 'stopped' | 'protocol' | 'stalled';

/** The method's fixed parameters (address or hash) and its start options, if it takes any. */
export interface SubscriptionRequest {
  method: string;
  unsubscribe: string;
  /** Parameters before the start options (e.g. the address). */
  fixed: unknown[];
  /** Whether the method takes start options (`{after}` / `{fromHeight}`) after `fixed`. */
  resumable: boolean;
  /** The caller's start options (null: live from the next event). */
  start: { after?: string; fromHeight?: number } | null;
}

const FINAL_STATUSES = new Set(['finalized', 'rejected', 'expired']);

/**
 * A resumable subscription: an async iterable of events. Break out of `for await`, or call
 * {@link Subscription.close}, to end it.
 */
export class Subscription<T = AnyEvent> implements AsyncIterableIterator<T> {
  /** Counters for monitoring and tests. */
  readonly stats: SubscriptionStats = { subscribes: 0, reconnects: 0, lagged: 0, duplicates: 0, pauses: 0, protocolErrors: 0, stalls: 0 };
  /** Events received and not yet taken, each with its cursor (null for events without one). */
  private queue: { item: T; cursor: string | null }[] = [];
  private waiters: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }[] = [];
  /** The cursor of the last event received from the node: where a resubscription starts. */
  private receivedCursor: string | null = null;
  /** The cursor of the last event handed over to the consumer ({@link Subscription.cursor}). */
  private handedCursor: string | null = null;
  /** Whether an event was delivered since the last subscribe call (the backoff starts over only then). */
  private progressed = false;
  private protocolProblem: string | null = null;
  private lastPosition: [number, number] | null = null;
  private lastNotarized = -1;
  private lastStatus: string | null = null;
  private finished = false;
  private anchored = false;
  private failure: unknown = null;
  private endCurrent: ((why: End) => void) | null = null;
  private drained: (() => void) | null = null;
  private wake: (() => void) | null = null;
  private readonly maxQueued: number;
  private readonly idleTimeoutMs: number;
  /** When the last notification arrived (for the idle check). */
  private lastActivity = 0;
  private stalledBecause: string | null = null;
  private readonly backoff: Required<ReconnectOptions>;
  private readonly loop: Promise<void>;

  /** Called with each reconnection delay and the error that caused it (for logs). */
  onReconnect: ((delayMs: number, error: unknown) => void) | null = null;
  /** Called with each `lagged` notice the node sent. */
  onLagged: ((notice: LaggedNotice) => void) | null = null;

  constructor(
    private readonly host: SubscriptionHost,
    private readonly request: SubscriptionRequest,
    options: SubscriptionOptions = {},
  ) {
    this.maxQueued = options.maxQueued ?? 10_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.backoff = {
      initialDelayMs: options.reconnect?.initialDelayMs ?? 100,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 5000,
      maxAttempts: options.reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY,
    };
    if (request.start?.after) {
      this.receivedCursor = request.start.after;
      this.handedCursor = request.start.after;
    }
    this.loop = this.run();
  }

  /**
   * The cursor of the last event handed over to the consumer (by `next()` or `for await`), or the
   * `after` it started from: subscribing again with `{after: cursor}` misses nothing the
   * consumer has not seen. Events received but still queued do not move it.
   */
  get cursor(): string | null {
    return this.handedCursor;
  }

  /** Whether the subscription has ended (closed, failed, or a transaction's final status). */
  get done(): boolean {
    return this.finished && this.queue.length === 0;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next event, waiting for it if none is queued. */
  next(): Promise<IteratorResult<T>> {
    const entry = this.queue.shift();
    if (entry !== undefined) {
      if (entry.cursor !== null) this.handedCursor = entry.cursor;
      if (this.drained && this.queue.length <= this.maxQueued / 2) {
        const d = this.drained;
        this.drained = null;
        d();
      }
      return Promise.resolve({ value: entry.item, done: false });
    }
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    if (this.drained) {
      const d = this.drained;
      this.drained = null;
      d();
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Ends the iteration (`break` in `for await` calls this). */
  async return(): Promise<IteratorResult<T>> {
    await this.close();
    return { value: undefined, done: true };
  }

  /** Unsubscribes and ends the iteration; queued events are dropped. */
  async close(): Promise<void> {
    if (!this.finished) {
      this.finished = true;
      this.queue = [];
      this.endCurrent?.('stopped');
      if (this.drained) this.drained();
      if (this.wake) this.wake();
    }
    await this.loop;
  }

  private deliver(item: T, cursor: string | null): void {
    const w = this.waiters.shift();
    if (w) {
      if (cursor !== null) this.handedCursor = cursor;
      w.resolve({ value: item, done: false });
    } else {
      this.queue.push({ item, cursor });
    }
  }

  private finish(error: unknown = null): void {
    this.finished = true;
    try {
      this.host.releaseSubscription?.(this);
    } catch {
      // the host's bookkeeping must not break the iterator
    }
    if (error !== null) this.failure = error;
    for (const w of this.waiters.splice(0)) {
      if (error !== null) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  private params(): unknown[] {
    const r = this.request;
    if (!r.resumable) return [...r.fixed];
    if (this.receivedCursor !== null) return [...r.fixed, { after: this.receivedCursor }];
    return r.start ? [...r.fixed, r.start] : [...r.fixed];
  }

  /** Handles one notification; returns why the node subscription ended, if it did. */
  private onNotification(raw: unknown): End | null {
    const problem = notificationProblem(raw);
    if (problem !== null) {
      this.protocolProblem = problem;
      return 'protocol';
    }
    const n = raw as AnyEvent | LaggedNotice;
    if (n.type === 'lagged') {
      this.stats.lagged++;
      // Resume from our own cursor: the node skips anything at or before it, and its
      // resumeCursor is taken only when nothing was received yet.
      if (this.receivedCursor === null && n.resumeCursor) this.receivedCursor = n.resumeCursor;
      try {
        this.onLagged?.(n);
      } catch {
        // A callback's failure is the caller's; it must not break the connection.
      }
      return 'lagged';
    }
    const pos = eventPosition(n);
    let cursor: string | null = null;
    if (pos !== null) {
      if (this.lastPosition !== null && comparePositions(pos, this.lastPosition) <= 0) {
        this.stats.duplicates++;
        return null;
      }
      this.lastPosition = pos;
      cursor = (n as { cursor: string }).cursor;
      this.receivedCursor = cursor;
    } else if (n.type === 'head') {
      if (n.block.height <= this.lastNotarized || (this.lastPosition !== null && n.block.height <= this.lastPosition[0])) {
        this.stats.duplicates++;
        return null;
      }
      this.lastNotarized = n.block.height;
    } else if (n.type === 'status') {
      const key = JSON.stringify(n);
      if (key === this.lastStatus) {
        this.stats.duplicates++;
        return null;
      }
      this.lastStatus = key;
    }
    this.progressed = true;
    this.deliver(n as T, cursor);
    if (n.type === 'status' && FINAL_STATUSES.has(n.status)) return 'done';
    if (this.queue.length >= this.maxQueued) return 'paused';
    return null;
  }

  /** Waits `ms`, or less if the subscription is closed meanwhile. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  /** The last height this subscription is known to have reached (received, or started after), or null. */
  private lastHeight(): number | null {
    if (this.lastPosition !== null) return this.lastPosition[0];
    const h = cursorHeight(this.receivedCursor);
    if (h !== null) return h;
    const from = this.request.start?.fromHeight;
    return typeof from === 'number' ? from - 1 : null;
  }

  /**
   * The idle check while a node subscription is active: after `idleTimeoutMs` without a
   * notification, asks `chain_getInfo`; ends the subscription as `stalled` when the node
   * finalized past the last height received, or did not answer. Returns a function that stops it.
   */
  private watchIdle(conn: WsConnection, active: () => boolean, end: (why: End) => void): () => void {
    const idleMs = this.idleTimeoutMs;
    if (!(idleMs > 0) || !Number.isFinite(idleMs) || !EVERY_BLOCK.has(this.request.method)) return () => {};
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const schedule = (ms: number) => {
      if (!stopped) timer = setTimeout(check, Math.max(ms, 1));
    };
    const check = async () => {
      if (stopped || !active()) return;
      const quiet = Date.now() - this.lastActivity;
      if (quiet < idleMs) {
        schedule(idleMs - quiet);
        return;
      }
      let finalized: number | null = null;
      let why: string | null = null;
      try {
        const info = (await conn.request('chain_getInfo', [])) as { finalizedHeight?: unknown };
        if (typeof info?.finalizedHeight === 'number') finalized = info.finalizedHeight;
      } catch (e) {
        if (!(e instanceof RpcError)) why = `nothing for ${idleMs} ms and no answer to chain_getInfo (${(e as Error).message})`;
      }
      if (stopped || !active()) return;
      const last = this.lastHeight();
      if (why === null && finalized !== null && last !== null && finalized > last && Date.now() - this.lastActivity >= idleMs) {
        why = `nothing for ${idleMs} ms while the node finalized height ${finalized}, past the last height received (${last})`;
      }
      if (why !== null) {
        this.stalledBecause = why;
        end('stalled');
        return;
      }
      schedule(idleMs);
    };
    schedule(idleMs);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  /** Errors worth another attempt: the node's transient ones, and a resume cursor a restarted node has not reached yet. */
  private retryable(e: RpcError): boolean {
    return e.is('internal') || e.is('busy') || (e.is('cursor_ahead') && this.stats.subscribes > 0);
  }

  private async run(): Promise<void> {
    // `attempt`: the backoff level. It grows with each failure and with each node subscription
    // that ended without delivering an event, and starts over only once an event came through,
    // so a node that drops or lags right after each subscribe is retried ever more slowly
    // instead of at once. `failures`: connections and subscribe calls that failed in a row (a
    // lost connection counts as one), what `maxAttempts` bounds.
    let attempt = 0;
    let failures = 0;
    let lastError: unknown = null;
    let reconnecting = false;
    while (!this.finished) {
      if (attempt > 0) {
        if (failures > this.backoff.maxAttempts) {
          this.finish(lastError);
          return;
        }
        const base = Math.min(this.backoff.maxDelayMs, this.backoff.initialDelayMs * 2 ** (attempt - 1));
        const delay = Math.round(base * (0.8 + Math.random() * 0.4));
        try {
          this.onReconnect?.(delay, lastError);
        } catch {
          // A callback's failure is the caller's.
        }
        await this.sleep(delay);
        if (this.finished) break;
      }
      let conn: WsConnection;
      try {
        conn = await (this.host.subscriptionConnection ? this.host.subscriptionConnection(this) : this.host.connection());
      } catch (e) {
        lastError = e;
        attempt++;
        failures++;
        continue;
      }
      if (this.finished) break;
      if (this.request.resumable && this.request.start === null && this.receivedCursor === null && !this.anchored) {
        // "Live from now" is anchored to the newest block's cursor, so that a reconnection before
        // the first event resumes from there instead of from whatever is newest by then.
        try {
          const page = (await conn.request('explorer_recentBlocks', [{ limit: 1 }])) as { blocks: { cursor: string }[] };
          const head = page.blocks[0];
          this.request.start = head ? { after: head.cursor } : { fromHeight: 1 };
          this.anchored = true;
        } catch (e) {
          if (!(e instanceof RpcError)) {
            lastError = e;
            attempt++;
            failures++;
            continue;
          }
          this.anchored = true; // a node without the explorer: live, unanchored
        }
        if (this.finished) break;
      }
      let active = true;
      let end: (why: End) => void = () => {};
      const ended = new Promise<End>((resolve) => {
        end = (why) => {
          active = false;
          resolve(why);
        };
      });
      this.endCurrent = end;
      if (this.finished) end('stopped');
      const stopListening = conn.onClose(() => end('closed'));
      let id: string | number;
      // Notifications can arrive in the same turn as the subscribe answer, before `await` returns.
      this.progressed = false;
      this.protocolProblem = null;
      try {
        id = await conn.subscribe(this.request.method, this.params(), (raw) => {
          if (!active) return; // after lagged, a pause or a protocol error: resumed from the cursor
          this.lastActivity = Date.now();
          const why = this.onNotification(raw);
          if (why) end(why);
        });
      } catch (e) {
        stopListening();
        this.endCurrent = null;
        if (this.finished) break;
        if (e instanceof RpcError && e.is('too_many_subscriptions')) {
          // The connection is full: another one, at once; a node that refuses even a connection
          // with no other subscription fails it (retrying would never succeed).
          if (this.host.subscriptionRefused?.(this, conn)) {
            lastError = e;
            continue;
          }
          this.finish(e);
          return;
        }
        if (e instanceof RpcError && !this.retryable(e)) {
          this.finish(e);
          return;
        }
        lastError = e;
        attempt++;
        failures++;
        continue;
      }
      this.stats.subscribes++;
      failures = 0;
      if (reconnecting) {
        this.stats.reconnects++;
        reconnecting = false;
      }
      this.lastActivity = Date.now();
      const stopIdle = this.watchIdle(conn, () => active, end);
      const why = await ended;
      stopIdle();
      stopListening();
      this.endCurrent = null;
      conn.forget(id);
      const progressed = this.progressed;
      if (why === 'closed' || why === 'protocol' || why === 'stalled') {
        if (why === 'stalled') {
          lastError = new TransportError(`${this.request.method}: ${this.stalledBecause}; reconnecting`);
          conn.abort(lastError as Error);
          this.stats.stalls++;
        } else if (why === 'protocol') {
          // The node broke the protocol: close the connection (every subscription on it resumes).
          lastError = new ProtocolError(
            `the node sent a malformed ${this.request.method} notification (${this.protocolProblem}); reconnecting`,
          );
          conn.abort(lastError as Error);
          this.stats.protocolErrors++;
        } else {
          lastError = conn.closedReason;
          if (lastError instanceof ProtocolError) this.stats.protocolErrors++;
        }
        reconnecting = true;
        failures = 1;
        attempt = progressed ? 1 : attempt + 1;
        continue;
      }
      if (why === 'stopped' || why === 'paused') {
        // Best effort: the node ends it by itself when the connection goes.
        conn.request(this.request.unsubscribe, [id]).catch(() => {});
      }
      if (why === 'done') {
        this.finish();
        return;
      }
      if (why === 'paused') {
        this.stats.pauses++;
        attempt = 0;
        await new Promise<void>((resolve) => {
          this.drained = resolve;
        });
      }
      if (why === 'lagged') {
        // The node ended it. After progress, subscribe again at once from the cursor; a node that
        // says lagged before delivering anything gets the backoff.
        if (progressed) {
          attempt = 0;
        } else {
          lastError = new TransportError(`the node said lagged on ${this.request.method} before delivering an event`);
          attempt++;
        }
      }
    }
    this.finish();
  }
}
