/**
 * A cheap assertion for hot paths. `assert()` from node:assert collects its arguments
 * into a rest array on every call (about a microsecond each in Node 20), which the
 * per-entry loops cannot afford. Failing still throws node's AssertionError: a broken
 * invariant is a programmer error and is not meant to be caught.
 */
import { AssertionError } from "node:assert";

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError({ message });
}

/** Throws an AssertionError; for failure branches whose message is built on demand. */
export function fail(message: string): never {
  throw new AssertionError({ message });
}
