/**
 * The core's assertions. A broken invariant is a programmer error (in the core or in a
 * host that breaks the contract of types.ts): it is thrown as a RaftInvariantError and
 * is not meant to be caught; the node runtime stops loudly on it.
 *
 * The core imports no `node:` module (it runs anywhere), so it has its own error class
 * instead of node:assert's AssertionError. `invariant` takes a plain string, not a rest
 * array, so the per-entry loops can afford it.
 */
import { RaftErrorCode } from "./errors.js";

export class RaftInvariantError extends Error {
  /** Stable code, like every deliberate raftwal error (the registry: src/errors.ts). */
  readonly code = RaftErrorCode.INVARIANT;

  constructor(message: string) {
    super(`raft invariant broken: ${message}`);
    this.name = "RaftInvariantError";
  }
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new RaftInvariantError(message);
}

/** Throws a RaftInvariantError; for failure branches whose message is built on demand. */
export function fail(message: string): never {
  throw new RaftInvariantError(message);
}
