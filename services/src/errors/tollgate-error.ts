import { type ErrorCode, httpStatusFor } from './error-codes.js';

export interface TollgateErrorOptions {
  /** What the user can do about it, shown by the CLI under the message. */
  hint?: string;
  /** Machine-readable specifics (e.g. which field failed), included in HTTP error bodies. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** An expected failure with a stable code. Anything else reaching the edge is an internal error. */
export class TollgateError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: TollgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TollgateError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get status(): number {
    return httpStatusFor(this.code);
  }
}

export function isTollgateError(error: unknown): error is TollgateError {
  return error instanceof TollgateError;
}
