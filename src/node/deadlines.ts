/**
 * Calls that wait (proposals, linearizable reads) time out by a deadline that the node's
 * tick checks, not by a timer each: setting and clearing a timer per call (timer list
 * inserts and removals) showed in the leader's profiles at high client counts, and one scan
 * per tick replaces them. A call times out at most one tick late.
 */
import { timeoutError } from "./errors.js";

export interface Deadline {
  /** When the call times out, on the clock `expireDeadlines` is given. */
  deadlineMs: number;
  /** The timeout it was given, for the error. */
  timeoutMs: number;
  reject(error: Error): void;
}

/** Removes and rejects (NODE_ERR_TIMEOUT, naming `what(key)`) every entry of `pending` whose deadline is at or before `nowMs`. */
export function expireDeadlines<K>(pending: Map<K, Deadline>, nowMs: number, what: (key: K) => string): void {
  for (const [key, entry] of pending) {
    if (entry.deadlineMs > nowMs) continue;
    pending.delete(key);
    entry.reject(timeoutError(what(key), entry.timeoutMs));
  }
}
