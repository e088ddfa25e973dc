/**
 * Errors of the RPC client. A JSON-RPC error answer becomes an {@link RpcError} with the node's
 * stable `code`, its `message` (for people) and its `data` (`data.reason` plus context fields,
 * docs/rpc.md "Errors"). Failures below JSON-RPC (connection refused, HTTP status, timeout,
 * unparsable body) are {@link TransportError}s.
 */
import { RPC_ERROR_CODES, type RpcErrorReason } from './rpc-types.js';

/** The `data` of a Taksa error: a snake_case reason and context fields. Transport errors may carry a string or nothing. */
export type RpcErrorData = { reason?: string; [field: string]: unknown } | string | undefined;

/** A JSON-RPC error answered by the node. Branch on `code` or `reason`, never on `message`. */
export class RpcError extends Error {
  override name = 'RpcError';
  constructor(
    /** The stable numeric code (see {@link RPC_ERROR_CODES}). */
    readonly code: number,
    message: string,
    /** `data` as the node sent it. */
    readonly data?: RpcErrorData,
    /** The method called. */
    readonly method?: string,
  ) {
    super(message);
  }

  /** `data.reason`, or the reason the spec gives the code when the transport sent no data. */
  get reason(): string | undefined {
    if (this.data && typeof this.data === 'object' && typeof this.data.reason === 'string') return this.data.reason;
    for (const [reason, code] of Object.entries(RPC_ERROR_CODES)) if (code === this.code) return reason;
    return undefined;
  }

  /** Whether this error has the given reason (e.g. `err.is('nonce_gap')`). */
  is(reason: RpcErrorReason): boolean {
    return this.code === RPC_ERROR_CODES[reason];
  }

  /** The error of a JSON-RPC error object. */
  static from(error: unknown, method?: string): RpcError {
    const e = (error ?? {}) as { code?: unknown; message?: unknown; data?: unknown };
    const code = typeof e.code === 'number' ? e.code : -32603;
    const message = typeof e.message === 'string' ? e.message : 'the node answered an error without a message';
    return new RpcError(code, message, e.data as RpcErrorData, method);
  }
}

/** The request did not get a JSON-RPC answer: the connection failed, the HTTP status was not 200, the body was not JSON, or it timed out. */
export class TransportError extends Error {
  override name = 'TransportError';
  constructor(
    message: string,
    /** The HTTP status, when there was one. */
    readonly status?: number,
    /** What failed underneath. */
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/**
 * The node broke the protocol: a notification or answer that does not have the shape the
 * protocol gives it. The client closes the connection; subscriptions reconnect and resume from
 * their own cursor (counted in `stats.protocolErrors`).
 */
export class ProtocolError extends TransportError {
  override name = 'ProtocolError';
}
