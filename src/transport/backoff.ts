/**
 * Reconnection delays: exponential backoff with jitter.
 *
 *   ceiling(attempt) = min(delayMsMax, initialDelayMs * 2^(attempt - 1))   (attempt >= 1)
 *   delay            = ceiling * (1 - jitterRatio * random())
 *
 * With the default jitterRatio of 0.5 a delay lies in [ceiling / 2, ceiling]: never
 * zero (no reconnect storm), never above delayMsMax, and nodes that lost a peer at the
 * same moment spread their attempts.
 */
export interface BackoffOptions {
  /** Delay ceiling of the first retry. Default 50 ms. */
  initialDelayMs: number;
  /** Bound of every delay. Default 5,000 ms. */
  delayMsMax: number;
  /** Fraction of the ceiling that jitter may take off, in [0, 1]. Default 0.5. */
  jitterRatio: number;
}

export const BACKOFF_DEFAULTS: BackoffOptions = { initialDelayMs: 50, delayMsMax: 5_000, jitterRatio: 0.5 };

/** Attempts beyond this do not grow the exponent further (2^30 times any delay is past any max). */
const EXPONENT_MAX = 30;

/** Delay before retry number `attempt` (1 for the first retry). `random` returns [0, 1). */
export function backoffDelayMs(attempt: number, options: BackoffOptions, random: () => number): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, EXPONENT_MAX);
  const ceiling = Math.min(options.delayMsMax, options.initialDelayMs * 2 ** exponent);
  return ceiling * (1 - options.jitterRatio * random());
}
