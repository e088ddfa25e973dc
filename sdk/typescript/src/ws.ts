/**
 * One JSON-RPC WebSocket connection: requests matched to answers by id, and notifications routed
 * to their subscription. It works with the browser's `WebSocket` (and Node 22+'s global one) or
 * any constructor with the same event-handler surface, such as the `ws` package's.
 *
 * A subscription's handler is registered in the same turn as its subscribe answer is read, so a
 * notification that arrives in the same network read as the answer is never missed.
 */
import { ProtocolError, RpcError, TransportError } from './errors.js';

/** The part of the WebSocket interface the client uses (browsers' and `ws`'s both have it). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => unknown) | null;
  onmessage: ((ev: any) => unknown) | null;
  onclose: ((ev: any) => unknown) | null;
  onerror: ((ev: any) => unknown) | null;
}

/** A WebSocket constructor: `globalThis.WebSocket`, or `ws`'s `WebSocket` on Node 20. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

type Pending = {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  onSubscribed?: (id: string | number) => void;
};

const CONNECTING = 0;
const OPEN = 1;
const decoder = new TextDecoder();

function text(data: unknown): string | null {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return decoder.decode(new Uint8Array(data));
  if (ArrayBuffer.isView(data)) return decoder.decode(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return null;
}

/** One open WebSocket to a node. Closed for good once its socket closes; open a new one to reconnect. */
export class WsConnection {
  private socket: WebSocketLike;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private subs = new Map<string, (result: unknown) => void>();
  private closeListeners = new Set<(err: Error) => void>();
  private closedWith: Error | null = null;
  private failReady: (e: Error) => void = () => {};
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resolves once the socket is open; rejects if it closes first. */
  readonly ready: Promise<void>;

  constructor(
    readonly url: string,
    Ctor: WebSocketConstructor,
    private readonly timeoutMs: number,
  ) {
    let opened: () => void = () => {};
    this.ready = new Promise<void>((res, rej) => {
      opened = res;
      this.failReady = rej;
    });
    this.ready.catch(() => {});
    try {
      this.socket = new Ctor(url);
    } catch (e) {
      this.socket = null as unknown as WebSocketLike;
      this.fail(new TransportError(`cannot open a WebSocket to ${url}: ${(e as Error).message}`, undefined, e));
      return;
    }
    this.connectTimer = setTimeout(() => {
      this.fail(new TransportError(`the WebSocket to ${url} did not open within ${timeoutMs} ms`));
    }, timeoutMs);
    this.socket.onopen = () => {
      clearTimeout(this.connectTimer);
      opened();
    };
    this.socket.onmessage = (ev) => this.onMessage(ev.data);
    this.socket.onerror = (ev) => {
      const why = ev?.message ?? ev?.error?.message ?? 'error';
      this.fail(new TransportError(`the WebSocket to ${url} failed: ${why}`));
    };
    this.socket.onclose = (ev) => {
      this.fail(new TransportError(`the WebSocket to ${url} closed (code ${ev?.code ?? '?'})`));
    };
  }

  /** Whether the socket is open and usable. */
  get isOpen(): boolean {
    return this.closedWith === null && this.socket.readyState === OPEN;
  }

  /**
   * Whether the connection is closing or closed: it failed, or its socket is CLOSING or CLOSED
   * even if no close event came yet (then it is marked closed now, so that waiters learn it).
   */
  get isClosed(): boolean {
    if (this.closedWith) return true;
    if (this.socket.readyState > OPEN) {
      this.fail(new TransportError(`the WebSocket to ${this.url} is closing (state ${this.socket.readyState})`));
      return true;
    }
    return false;
  }

  /** Why the connection closed, or null while it is open. */
  get closedReason(): Error | null {
    return this.closedWith;
  }

  /** Calls `listener` once when the connection closes (at once if it already has). Returns a function that removes it. */
  onClose(listener: (err: Error) => void): () => void {
    if (this.closedWith) {
      listener(this.closedWith);
      return () => {};
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Sends one call and waits for its answer. */
  request(method: string, params: unknown[]): Promise<unknown> {
    return this.send(method, params);
  }

  /**
   * Subscribes: `onNotification` receives each notification's `result` from the moment the
   * answer is read. Resolves with the server's subscription id.
   */
  subscribe(method: string, params: unknown[], onNotification: (result: unknown) => void): Promise<string | number> {
    return this.send(method, params, (id) => this.subs.set(String(id), onNotification)) as Promise<string | number>;
  }

  /** Stops routing a subscription's notifications (the caller unsubscribes on the server if it wants to). */
  forget(subscriptionId: string | number): void {
    this.subs.delete(String(subscriptionId));
  }

  /** Closes the socket; pending calls fail. */
  close(): void {
    this.fail(new TransportError('the WebSocket was closed by the client'));
  }

  /** Closes the socket because the node broke the protocol; pending calls and listeners get `err`. */
  abort(err: Error): void {
    this.fail(err);
  }

  private send(
    method: string,
    params: unknown[],
    onSubscribed?: (id: string | number) => void,
    waited = false,
  ): Promise<unknown> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const state = this.socket.readyState;
    if (state === CONNECTING && !waited) {
      // Wait for the open once; a socket still not open afterwards is refused below.
      return this.ready.then(() => this.send(method, params, onSubscribed, true));
    }
    if (state !== OPEN) {
      // CLOSING or CLOSED (possibly before its close event): it will never open again.
      const err = new TransportError(`cannot send ${method}: the WebSocket to ${this.url} is closing (state ${state})`);
      this.fail(err);
      return Promise.reject(err);
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TransportError(`${method} got no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const entry: Pending = { method, resolve, reject, timer };
      if (onSubscribed) entry.onSubscribed = onSubscribed;
      this.pending.set(id, entry);
      try {
        this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new TransportError(`cannot send ${method}: ${(e as Error).message}`, undefined, e));
      }
    });
  }

  private onMessage(data: unknown): void {
    if (this.closedWith) return;
    // Nothing the node sends may throw out of the socket's message handler: a message of the
    // wrong shape is a protocol error that closes the connection (subscriptions resume from
    // their own cursor), never an uncaught exception.
    try {
      const body = text(data);
      if (body === null) throw new Error('a message is neither text nor bytes');
      let msg: any;
      try {
        msg = JSON.parse(body);
      } catch {
        throw new Error(`a message is not JSON: ${body.slice(0, 80)}`);
      }
      for (const m of Array.isArray(msg) ? msg : [msg]) {
        this.dispatch(m);
        if (this.closedWith) return;
      }
    } catch (e) {
      this.fail(new ProtocolError(`the WebSocket to ${this.url} broke the protocol: ${(e as Error)?.message ?? String(e)}`, undefined, e));
    }
  }

  private dispatch(msg: any): void {
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('a message is not a JSON object');
    if (typeof msg.method === 'string') {
      const params = msg.params;
      if (params === null || typeof params !== 'object' || Array.isArray(params) || !('subscription' in params)) {
        throw new Error(`a ${msg.method} notification has no subscription parameters`);
      }
      const sub = params.subscription;
      if (typeof sub !== 'string' && typeof sub !== 'number') throw new Error(`a ${msg.method} notification has no subscription id`);
      const handler = this.subs.get(String(sub));
      if (handler) handler(params.result);
      return;
    }
    if (typeof msg.id !== 'number') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error !== undefined) {
      p.reject(RpcError.from(msg.error, p.method));
      return;
    }
    if (p.onSubscribed) p.onSubscribed(msg.result);
    p.resolve(msg.result);
  }

  private fail(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    clearTimeout(this.connectTimer);
    this.failReady(err);
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.subs.clear();
    try {
      if (this.socket && this.socket.readyState <= OPEN) this.socket.close();
    } catch {
      // already closing
    }
    for (const l of [...this.closeListeners]) l(err);
    this.closeListeners.clear();
  }
}
