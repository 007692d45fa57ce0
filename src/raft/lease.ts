/**
 * Lease-based reads (Raft thesis section 6.4.1; etcd's ReadOnlyLeaseBased), off by
 * default (`readMode: "lease"` turns them on).
 *
 * A ReadIndex read costs a heartbeat round. A lease read skips it: the leader answers at
 * once while a quorum acknowledged one of its heartbeats sent less than
 * `electionTimeoutTicks - leaseClockDriftTicks` ticks ago. Why that is safe:
 *   - A voter that received a heartbeat refuses to vote, and to pre-vote, for anyone
 *     else for a whole election timeout (thesis 4.2.3; Raft.handleHigherTerm, which is why
 *     lease reads need CheckQuorum on). It received the heartbeat after the leader sent
 *     it, so counting the lease from the sending tick is conservative.
 *   - Every heartbeat carries the tick it was sent at; the answer echoes it, so the leader
 *     knows, per voter, the latest sending tick acknowledged.
 *   - While that tick is recent enough on a quorum (both halves while joint), no other
 *     leader can have been elected: a new one needs votes from a quorum, which meets it.
 *   - Once this leader sends TIMEOUT_NOW (a leadership transfer), the transferee may
 *     campaign at once, lease or not: the lease is void for the rest of the term.
 *
 * The risk, written down for users: the argument assumes every node's tick runs at about
 * the same rate. If a voter's clock runs fast (or the leader's slow) by more than
 * `leaseClockDriftTicks` within an election timeout, a new leader can be elected while
 * this one still serves lease reads, and those reads may be stale. ReadIndex (the
 * default) makes no timing assumption.
 */
import type { Raft } from "./raft.js";
import { jointQuorum } from "./quorum.js";

export type ReadMode = "read-index" | "lease";

const TICK_CONTEXT_BYTES = 8;

/** The leader's lease state; one per leadership (cleared with the role). */
export class Lease {
  /** Ticks since this leadership began: the leader's own clock for its lease. */
  now = 0;
  /** Per voter, the sending tick of the newest heartbeat it acknowledged. */
  readonly acknowledged = new Map<number, number>();
  /** A leadership transfer was started: no more lease reads in this term. */
  revoked = false;
}

/** Appends the sending tick to a heartbeat context (after the ReadIndex sequence, if any). */
export function stampHeartbeat(context: Uint8Array, lease: Lease): Uint8Array {
  const stamped = new Uint8Array(context.length + TICK_CONTEXT_BYTES);
  stamped.set(context, 0);
  const view = new DataView(stamped.buffer);
  view.setUint32(context.length, Math.floor(lease.now / 2 ** 32));
  view.setUint32(context.length + 4, lease.now >>> 0);
  return stamped;
}

/** A heartbeat answer echoed the context: record the sending tick it acknowledges. */
export function acknowledgeHeartbeat(lease: Lease, from: number, context: Uint8Array): void {
  if (context.length < TICK_CONTEXT_BYTES) return;
  const view = new DataView(context.buffer, context.byteOffset + context.length - TICK_CONTEXT_BYTES, TICK_CONTEXT_BYTES);
  const sent = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
  if (sent > (lease.acknowledged.get(from) ?? -1)) lease.acknowledged.set(from, sent);
}

/** The heartbeat context without the lease stamp (what the ReadIndex machinery reads). */
export function unstamped(context: Uint8Array, lease: Lease | undefined): Uint8Array {
  return lease === undefined || context.length < TICK_CONTEXT_BYTES ? context : context.subarray(0, context.length - TICK_CONTEXT_BYTES);
}

/** Whether a read may be answered now without a heartbeat round. */
export function leaseValid(raft: Raft, lease: Lease): boolean {
  if (lease.revoked || raft.leadTransferee !== 0) return false;
  const window = raft.config.electionTimeoutTicks - raft.config.leaseClockDriftTicks;
  return jointQuorum(raft.clusterConfig, (id) => {
    if (id === raft.id) return true;
    const sent = lease.acknowledged.get(id);
    return sent !== undefined && lease.now - sent < window;
  });
}
