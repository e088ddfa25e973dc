/**
 * Subscriptions that nobody misses (docs/rpc.md "Subscriptions"). Every event carries a cursor
 * (height, index), and the node can start a subscription strictly after any cursor it issued.
 * A {@link Subscription} remembers the cursor of the last event it took and, when the
 * connection drops or the node sends `lagged`, subscribes again with `{after: cursor}` (or the
 * notice's `resumeCursor`), with exponential backoff between attempts. Events are handed over
 * in cursor order, each exactly once: anything at or before the last position taken is dropped.
 *
 * Memory is bounded: when more than `maxQueued` events wait for the consumer, the subscription
 * is ended on the node and opened again after the consumer catches up, from the last cursor.
 *
 * Streams without cursors: `tx_subscribeStatus` is resumed by subscribing again (the first
 * notification is the current status; a repeat of the last status is dropped) and ends after a
 * final status; notarized heads of `chain_subscribeNewHeads` are best-effort (a repeat of a
 * height already announced is dropped), their finalized forms are resumed by cursor.
 */
import { RpcError } from './errors.js';
import { type AnyEvent, comparePositions, eventPosition, type LaggedNotice } from './events.js';
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
}

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  /** An open connection (the client's shared one, opened or reopened as needed). */
  connection(): Promise<WsConnection>;
}

/** Why one node-side subscription ended. */
type End = 'lagged' | 'closed' | 'paused' | 'done' | 'stopped';

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
  readonly stats: SubscriptionStats = { subscribes: 0, reconnects: 0, lagged: 0, duplicates: 0, pauses: 0 };
  private queue: T[] = [];
  private waiters: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }[] = [];
  private lastCursor: string | null = null;
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
    this.backoff = {
      initialDelayMs: options.reconnect?.initialDelayMs ?? 100,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 5000,
      maxAttempts: options.reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY,
    };
    if (request.start?.after) this.lastCursor = request.start.after;
    this.loop = this.run();
  }

  /** The cursor of the last event taken from the node: subscribing again after it misses nothing. */
  get cursor(): string | null {
    return this.lastCursor;
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
    const item = this.queue.shift();
    if (item !== undefined) {
      if (this.drained && this.queue.length <= this.maxQueued / 2) {
        const d = this.drained;
        this.drained = null;
        d();
      }
      return Promise.resolve({ value: item, done: false });
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

  private deliver(item: T): void {
    const w = this.waiters.shift();
    if (w) w.resolve({ value: item, done: false });
    else this.queue.push(item);
  }

  private finish(error: unknown = null): void {
    this.finished = true;
    if (error !== null) this.failure = error;
    for (const w of this.waiters.splice(0)) {
      if (error !== null) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  private params(): unknown[] {
    const r = this.request;
    if (!r.resumable) return [...r.fixed];
    if (this.lastCursor !== null) return [...r.fixed, { after: this.lastCursor }];
    return r.start ? [...r.fixed, r.start] : [...r.fixed];
  }

  /** Handles one notification; returns why the node subscription ended, if it did. */
  private onNotification(raw: unknown): End | null {
    const n = raw as AnyEvent | LaggedNotice;
    if (n === null || typeof n !== 'object') return null;
    if (n.type === 'lagged') {
      this.stats.lagged++;
      if (n.resumeCursor) this.lastCursor = n.resumeCursor;
      this.onLagged?.(n);
      return 'lagged';
    }
    const pos = eventPosition(n);
    if (pos !== null) {
      if (this.lastPosition !== null && comparePositions(pos, this.lastPosition) <= 0) {
        this.stats.duplicates++;
        return null;
      }
      this.lastPosition = pos;
      this.lastCursor = (n as { cursor: string }).cursor;
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
    this.deliver(n as T);
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

  /** Errors worth another attempt: the node's transient ones, and a resume cursor a restarted node has not reached yet. */
  private retryable(e: RpcError): boolean {
    return e.is('internal') || e.is('busy') || e.is('too_many_subscriptions') || (e.is('cursor_ahead') && this.stats.subscribes > 0);
  }

  private async run(): Promise<void> {
    let attempt = 0;
    let lastError: unknown = null;
    while (!this.finished) {
      if (attempt > 0) {
        if (attempt > this.backoff.maxAttempts) {
          this.finish(lastError);
          return;
        }
        const base = Math.min(this.backoff.maxDelayMs, this.backoff.initialDelayMs * 2 ** (attempt - 1));
        const delay = Math.round(base * (0.8 + Math.random() * 0.4));
        this.onReconnect?.(delay, lastError);
        await this.sleep(delay);
        if (this.finished) break;
      }
      let conn: WsConnection;
      try {
        conn = await this.host.connection();
      } catch (e) {
        lastError = e;
        attempt++;
        continue;
      }
      if (this.finished) break;
      if (this.request.resumable && this.request.start === null && this.lastCursor === null && !this.anchored) {
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
            continue;
          }
          this.anchored = true; // a node without the explorer: live, unanchored
        }
        if (this.finished) break;
      }
      let end: (why: End) => void = () => {};
      const ended = new Promise<End>((resolve) => {
        end = (why) => resolve(why);
      });
      this.endCurrent = end;
      if (this.finished) end('stopped');
      const stopListening = conn.onClose(() => end('closed'));
      let id: string | number;
      try {
        id = await conn.subscribe(this.request.method, this.params(), (raw) => {
          const why = this.onNotification(raw);
          if (why) end(why);
        });
      } catch (e) {
        stopListening();
        this.endCurrent = null;
        if (this.finished) break;
        if (e instanceof RpcError && !this.retryable(e)) {
          this.finish(e);
          return;
        }
        lastError = e;
        attempt++;
        continue;
      }
      this.stats.subscribes++;
      if (this.stats.subscribes > 1 && attempt > 0) this.stats.reconnects++;
      attempt = 0;
      const why = await ended;
      stopListening();
      this.endCurrent = null;
      conn.forget(id);
      if (why === 'closed') {
        lastError = conn.closedReason;
        attempt = 1;
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
        await new Promise<void>((resolve) => {
          this.drained = resolve;
        });
      }
      // 'lagged': the node ended it; subscribe again at once from the resume cursor.
    }
    this.finish();
  }
}
