/**
 * The leader's side of ReadIndex (Raft thesis, section 6.4):
 *
 *   1. The leader records its commit index as the read index. A new leader first
 *      waits until it has committed an entry of its own term ("the leader may not
 *      know which entries are committed" until then); reads arriving before that are
 *      queued in `waitingForCommit`.
 *   2. It confirms it is still leader by a round of heartbeats: each heartbeat carries
 *      the sequence number of the newest pending read, and a follower's response
 *      echoes it. Once a majority (the leader included) has echoed a sequence number
 *      at or above a read's, no newer leader can have existed when that read arrived.
 *   3. The read is then safe to serve once the state machine has applied the read
 *      index; the core hands it out as a ReadState (or a READ_INDEX_RESPONSE to the
 *      follower that forwarded it).
 *
 * One instance lives exactly as long as one leadership: a node that stops being
 * leader drops it, so a deposed leader never answers a pending read.
 */
import type { ClusterConfig } from "../proto/schema.js";
import { PENDING_READS_MAX } from "./config.js";
import { invariant } from "./invariant.js";
import { hasMajority, jointIndex, jointQuorum } from "./quorum.js";

export interface PendingRead {
  requestId: Uint8Array;
  /** The node that asked (this node for local reads). */
  from: number;
  /** The read index: the leader's commit index when the read was registered. */
  index: number;
  /** Increases with each registered read. */
  sequence: number;
}

const SEQUENCE_CONTEXT_BYTES = 8;

/** Encodes a read sequence number as a heartbeat context. */
export function encodeSequence(sequence: number): Uint8Array {
  const bytes = new Uint8Array(SEQUENCE_CONTEXT_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, Math.floor(sequence / 2 ** 32));
  view.setUint32(4, sequence >>> 0);
  return bytes;
}

/** Decodes a heartbeat context; 0 when it carries no read sequence. */
export function decodeSequence(context: Uint8Array): number {
  if (context.length !== SEQUENCE_CONTEXT_BYTES) return 0;
  const view = new DataView(context.buffer, context.byteOffset, context.byteLength);
  return view.getUint32(0) * 2 ** 32 + view.getUint32(4);
}

export class ReadOnly {
  /** Reads registered and awaiting a quorum of heartbeat acknowledgements, oldest first. */
  private readonly pending: PendingRead[] = [];
  /** Reads that arrived before this leader committed an entry of its term. */
  private readonly waiting: { requestId: Uint8Array; from: number }[] = [];
  private nextSequence = 1;
  /** The newest sequence a heartbeat round has carried (the round in flight covers reads up to it). */
  private sentSequence = 0;
  /** Highest sequence each member echoed; this node counts as having echoed everything. */
  private readonly acknowledged = new Map<number, number>();
  /** When each member's newest echo arrived, counted in echoes (for `roundTargets`). */
  private readonly echoedAt = new Map<number, number>();
  private echoes = 0;
  private readonly scratch: number[] = [];
  private readonly acknowledgedBy = (id: number): number => this.acknowledged.get(id) ?? 0;

  constructor(private readonly selfId: number) {
    this.acknowledged.set(selfId, Number.MAX_SAFE_INTEGER);
  }

  size(): number {
    return this.pending.length + this.waiting.length;
  }

  isFull(): boolean {
    return this.size() >= PENDING_READS_MAX;
  }

  /** Queues a read until the leader has committed an entry of its own term. */
  wait(requestId: Uint8Array, from: number): void {
    invariant(!this.isFull(), "read queue full");
    this.waiting.push({ requestId, from });
  }

  /** The reads that waited for the first commit of this term, removed. */
  takeWaiting(): { requestId: Uint8Array; from: number }[] {
    return this.waiting.splice(0, this.waiting.length);
  }

  /** Registers a read at `index`; returns its sequence number (the heartbeat context). */
  add(requestId: Uint8Array, from: number, index: number): number {
    invariant(!this.isFull(), "read queue full");
    const sequence = this.nextSequence++;
    this.pending.push({ requestId, from, index, sequence });
    return sequence;
  }

  /** Sequence number of the newest pending read, or 0. */
  newestSequence(): number {
    return this.pending.length === 0 ? 0 : this.pending[this.pending.length - 1].sequence;
  }

  /** A heartbeat round carrying `sequence` (the newest pending read's) is being sent. */
  roundSent(sequence: number): void {
    if (sequence > this.sentSequence) this.sentSequence = sequence;
  }

  /**
   * Whether pending reads wait for a round and none is in flight: the oldest pending read
   * is newer than every round sent. A read is confirmed only by a round sent after it
   * arrived (thesis 6.4: the leader must not have been superseded when the read began), so
   * it may not ride on a round already in flight. While one is, reads arriving meanwhile
   * wait for it to be confirmed and then share the next one (as etcd's server batches its
   * ReadIndex requests): at most one read round per round trip, however many reads arrive.
   * A round that is never confirmed (its heartbeats or answers lost) does not strand them:
   * every periodic heartbeat carries the newest pending sequence too.
   */
  needsRound(): boolean {
    return this.pending.length > 0 && this.pending[0].sequence > this.sentSequence;
  }

  /** Records a heartbeat response echoing `sequence` from `member`; returns the reads now confirmed. */
  acknowledge(member: number, sequence: number, config: ClusterConfig): PendingRead[] {
    if (sequence <= this.acknowledgedBy(member)) return [];
    this.acknowledged.set(member, sequence);
    this.echoedAt.set(member, ++this.echoes);
    return this.pending.length === 0 ? [] : this.release(config);
  }

  /**
   * The voters a read round goes to: the fewest that make a quorum of `config` (both
   * halves while joint) with this node, taking first those that echoed the newest round,
   * the quickest of them first. Undefined, for a round to every peer, until enough voters
   * have echoed a round to make that quorum.
   *
   * Why not every peer: a round only has to reach a quorum (thesis 6.4), and on a busy
   * node each message costs as much CPU as the read it confirms. Safety is the same
   * whoever answers. Liveness: if a chosen voter stops answering, every periodic heartbeat
   * still goes to all peers with the newest sequence, so the reads waiting are confirmed
   * by the others within a heartbeat interval, and those others, having echoed a newer
   * sequence, are chosen from then on.
   */
  roundTargets(config: ClusterConfig, peers: readonly number[]): number[] | undefined {
    const ranked = peers.filter((id) => this.acknowledgedBy(id) > 0);
    ranked.sort((a, b) => this.acknowledgedBy(b) - this.acknowledgedBy(a) || this.echoedAt.get(a)! - this.echoedAt.get(b)!);
    const chosen: number[] = [];
    const inRound = (id: number): boolean => id === this.selfId || chosen.includes(id);
    for (const id of ranked) {
      // Taken only into a half that still lacks its majority (a learner is in neither).
      const lacking = (half: readonly number[]): boolean => half.includes(id) && !hasMajority(half, inRound);
      if (!lacking(config.voters) && !lacking(config.votersOutgoing)) continue;
      chosen.push(id);
      if (jointQuorum(config, inRound)) return chosen;
    }
    return undefined;
  }

  /**
   * Confirms the reads a quorum of `config` (both halves while joint) has acknowledged:
   * at once when this node alone is a quorum. Acknowledgements of learners never count.
   */
  release(config: ClusterConfig): PendingRead[] {
    const confirmed = jointIndex(config, this.acknowledgedBy, this.scratch);
    let count = 0;
    // Bounded by the queue length.
    while (count < this.pending.length && this.pending[count].sequence <= confirmed) count += 1;
    return count === 0 ? [] : this.pending.splice(0, count);
  }
}
