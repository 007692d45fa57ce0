import type { Entry, SnapshotMeta } from "../raft/types.js";

/**
 * The application's event-sourced state machine, driven by a RaftNode.
 *
 * - `apply` receives every committed entry with non-empty data exactly once, in index
 *   order, on every node (leader no-ops, which have empty data, are skipped). It must be
 *   deterministic: the same entries in the same order give the same state everywhere.
 *   Its return value is what `propose()` resolves with on the node that proposed it.
 * - `snapshot` returns a stream of the state as of the last applied entry, and must capture
 *   that state when it is called (a copy, or a structure later applies do not change): the
 *   node keeps applying entries while the stream is written in the background, so a
 *   snapshot never pauses applying. A generator function does NOT capture (its body runs
 *   at the first read): return an array or a stream over a copy.
 * - `restore` replaces the whole state with a snapshot's (at start-up from the newest
 *   local snapshot, or when a leader sends one). After it, `apply` continues at
 *   `meta.index + 1`.
 */
export interface StateMachine<Result = unknown> {
  apply(entry: Entry): Result | Promise<Result>;
  snapshot(): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  restore(data: AsyncIterable<Uint8Array>, meta: SnapshotMeta): Promise<void>;
}
