/**
 * Safety checkers, kept apart from the workload. Node hosts report what they make
 * durable and what they apply; the cluster reports every node's soft and hard state
 * after every tick. A violated property throws a SafetyViolation naming the tick.
 *
 * Properties (Raft paper, Figure 3, and the issue's list):
 *   - Election safety: at most one leader per term.
 *   - Log matching: two durable entries with the same index and term carry the same
 *     data and follow entries with the same term. By induction on the index this is
 *     "same index and term => identical prefix", checked in O(1) per written entry.
 *   - Leader completeness: an entry committed by term C is in the log of every leader
 *     of a term after C. Checked on the leader's durable log when it is elected, and on
 *     every entry anyone writes: an entry of term t > C at a committed index must be
 *     the committed entry (its author, the leader of term t, had it at that index).
 *     A node never truncates an entry at or below its own durable commit index.
 *   - State machine safety: the same entry (term and command) at an index on every
 *     node that applies it, and the same state-machine hash after it.
 *   - Applied intact: every applied entry is, byte for byte, the entry written at its
 *     index and term (all copies are alike by log matching): no damaged byte is applied,
 *     even by the first node to apply that index.
 *   - Apply order: each node applies index applied+1, never a gap, never twice; a
 *     committed entry is handed out only once it is durable on that node.
 *   - Commit never goes backwards, durable or in memory, across restarts too; the
 *     durable term never decreases and a node never changes its vote within a term;
 *     the durable commit index never exceeds the durable last index.
 * None of these looks at the cluster's configuration, so they hold across membership
 * changes as they are; the membership properties are in membership-checkers.ts
 * (`membership`), those of the repair of storage damage in repair-checkers.ts (`repair`).
 *
 * Storage damage (disk-damage.ts) takes durable state away on purpose: `onDamage` makes
 * the damaged hard state the node's durable one, so the monotonic checks (commit, term,
 * one vote per term between two durable writes) start again from it; votes are judged
 * across damage by repair-checkers.ts (double-vote).
 */
import type { Entry, HardState, RaftLogStorage, SnapshotMeta, SoftState } from "../../src/raft/types.js";
import { MembershipCheckers } from "./membership-checkers.js";
import { RepairCheckers } from "./repair-checkers.js";
import { hashBytes } from "./state-machine.js";
import type { VirtualClock } from "./time.js";

export class SafetyViolation extends Error {
  constructor(
    readonly property: string,
    readonly tick: number,
    detail: string,
  ) {
    super(`safety violation [${property}] at tick ${tick}: ${detail}`);
    this.name = "SafetyViolation";
  }
}

/** The reference copy of an (index, term) entry: the first one any node wrote. */
interface EntryRecord {
  dataHash: number;
  prevTerm: number | undefined;
  firstWriter: number;
  firstWrittenTick: number;
}

/**
 * Names the reference copy an entry is compared with. It can be the same node's own
 * earlier copy: a host that acknowledges before it is durable makes the core forget
 * entries it never wrote, so the node writes a different entry at the same index and term.
 */
function referenceCopy(seen: EntryRecord, id: number): string {
  return seen.firstWriter === id
    ? `its own first copy (written at tick ${seen.firstWrittenTick})`
    : `the first copy, written by node ${seen.firstWriter} at tick ${seen.firstWrittenTick}`;
}

interface NodeRecord {
  durable: HardState;
  /** Incarnation-local: last applied index (reset on restart to the snapshot index). */
  appliedIndex: number;
  /** Incarnation-local: in-memory commit and term as last observed. */
  memoryCommit: number;
  memoryTerm: number;
  leaderTerm: number;
}

export class Checkers {
  private readonly leaderOfTerm = new Map<number, number>();
  /** index -> term -> what the first writer stored. */
  private readonly entries = new Map<number, Map<number, EntryRecord>>();
  /** index -> term of the committed entry (where known). */
  private readonly committedTerm: number[] = [];
  /** index -> an upper bound on the term in which the entry was known committed. */
  private readonly committedAtTerm: number[] = [];
  /** index -> data hash of the applied entry; index -> state-machine hash after it. */
  private readonly appliedDataHash: number[] = [];
  private readonly appliedStateHash: number[] = [];
  private readonly nodes = new Map<number, NodeRecord>();
  /** Highest index known committed anywhere. */
  committedIndexMax = 0;
  checksRun = 0;
  readonly membership: MembershipCheckers;
  readonly repair: RepairCheckers;

  constructor(private readonly clock: VirtualClock) {
    this.membership = new MembershipCheckers(clock);
    this.repair = new RepairCheckers(clock);
  }

  private fail(property: string, detail: string): never {
    throw new SafetyViolation(property, this.clock.now(), detail);
  }

  private node(id: number): NodeRecord {
    let record = this.nodes.get(id);
    if (!record) {
      record = { durable: { term: 0, vote: 0, commit: 0 }, appliedIndex: 0, memoryCommit: 0, memoryTerm: 0, leaderTerm: 0 };
      this.nodes.set(id, record);
    }
    return record;
  }

  leaders(): ReadonlyMap<number, number> {
    return this.leaderOfTerm;
  }

  /** Whether index `index` is known committed, and with which term. */
  committedEntryTerm(index: number): number | undefined {
    return this.committedTerm[index];
  }

  // ---- events from the cluster, every tick ----

  /** Soft and in-memory hard state of a live node, observed after a tick. */
  observeNodeState(id: number, soft: SoftState, hard: HardState, storage: RaftLogStorage): void {
    this.checksRun++;
    const record = this.node(id);
    if (hard.commit < record.memoryCommit) this.fail("commit-monotonic", `node ${id} commit went from ${record.memoryCommit} back to ${hard.commit}`);
    if (hard.term < record.memoryTerm) this.fail("term-monotonic", `node ${id} term went from ${record.memoryTerm} back to ${hard.term}`);
    // In memory a node is never behind what it made durable (a restart starts from the durable state).
    if (hard.commit < record.durable.commit) this.fail("commit-monotonic", `node ${id} commit ${hard.commit} below its durable commit ${record.durable.commit}`);
    if (hard.term < record.durable.term) this.fail("term-monotonic", `node ${id} term ${hard.term} below its durable term ${record.durable.term}`);
    record.memoryCommit = hard.commit;
    record.memoryTerm = hard.term;
    if (soft.role === "leader") {
      if (soft.term !== hard.term) this.fail("election-safety", `node ${id} leads term ${soft.term} but its term is ${hard.term}`);
      const other = this.leaderOfTerm.get(soft.term);
      if (other !== undefined && other !== id) this.fail("election-safety", `nodes ${other} and ${id} both leaders of term ${soft.term}`);
      if (other === undefined) {
        this.leaderOfTerm.set(soft.term, id);
        this.checkNewLeaderLog(id, soft.term, storage);
        this.repair.onLeader(soft.term, id);
      }
      record.leaderTerm = soft.term;
    }
  }

  /** Leader completeness on the durable part of a new leader's log. */
  private checkNewLeaderLog(id: number, term: number, storage: RaftLogStorage): void {
    const snapshot = storage.snapshotMeta();
    const last = storage.lastIndex();
    const upTo = Math.min(last, this.committedIndexMax);
    for (let index = Math.max(snapshot.index, 1); index <= upTo; index++) {
      const committed = this.committedTerm[index];
      const at = this.committedAtTerm[index];
      if (committed === undefined || at === undefined || at >= term) continue;
      const mine = storage.term(index);
      if (mine !== committed) {
        this.fail("leader-completeness", `node ${id} became leader of term ${term} with term ${mine} at index ${index}, where term ${committed} was committed by term ${at}`);
      }
    }
  }

  // ---- events from node hosts ----

  /** Before a node writes `entries`: it must not replace an entry at or below its durable commit. */
  beforeDurableEntries(id: number, storage: RaftLogStorage, entries: readonly Entry[]): void {
    const record = this.node(id);
    const first = entries[0]!;
    for (let i = 1; i < entries.length; i++) {
      if (entries[i]!.index !== first.index + i) this.fail("entries-contiguous", `node ${id} got non-contiguous entries to persist`);
    }
    const last = storage.lastIndex();
    const floor = storage.firstIndex();
    for (const e of entries) {
      if (e.index > record.durable.commit || e.index > last) break;
      if (e.index < floor) continue;
      const existing = storage.term(e.index);
      if (existing !== e.term) {
        this.fail("no-committed-truncation", `node ${id} overwrites its entry ${e.index} (term ${existing}) with term ${e.term}, at or below its durable commit ${record.durable.commit}`);
      }
    }
  }

  /** After a node wrote `entries` durably. */
  afterDurableEntries(id: number, storage: RaftLogStorage, entries: readonly Entry[]): void {
    this.checksRun++;
    const snapshotIndex = storage.snapshotMeta().index;
    for (const e of entries) {
      if (e.index <= snapshotIndex) continue;
      const stored = storage.term(e.index);
      if (stored !== e.term) this.fail("storage", `node ${id} storage has term ${stored} at ${e.index} after appending term ${e.term}`);
      const prevTerm = e.index - 1 >= snapshotIndex ? storage.term(e.index - 1) : undefined;
      const dataHash = hashBytes(e.data);
      let byTerm = this.entries.get(e.index);
      if (!byTerm) {
        byTerm = new Map();
        this.entries.set(e.index, byTerm);
      }
      const seen = byTerm.get(e.term);
      if (!seen) {
        byTerm.set(e.term, { dataHash, prevTerm, firstWriter: id, firstWrittenTick: this.clock.now() });
      } else {
        if (seen.dataHash !== dataHash) this.fail("log-matching", `index ${e.index} term ${e.term}: node ${id} stores other data than ${referenceCopy(seen, id)}`);
        if (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm) {
          this.fail("log-matching", `index ${e.index} term ${e.term}: node ${id} has term ${prevTerm} before it, ${referenceCopy(seen, id)} had ${seen.prevTerm}`);
        }
        if (seen.prevTerm === undefined) seen.prevTerm = prevTerm;
      }
      const committed = this.committedTerm[e.index];
      const at = this.committedAtTerm[e.index];
      if (committed !== undefined && at !== undefined && e.term > at && e.term !== committed) {
        this.fail("leader-completeness", `node ${id} writes term ${e.term} at index ${e.index}, where term ${committed} was committed by term ${at}: the leader of term ${e.term} lacked it`);
      }
    }
  }

  /** After a node installed a snapshot durably. */
  afterDurableSnapshot(id: number, meta: SnapshotMeta, hardTerm: number): void {
    this.recordCommitted(id, meta.index, meta.term, Math.max(hardTerm, meta.term));
  }

  /** After a node persisted its hard state. */
  afterDurableHardState(id: number, hard: HardState, storage: RaftLogStorage): void {
    this.checksRun++;
    const record = this.node(id);
    const before = record.durable;
    if (hard.term < before.term) this.fail("term-monotonic", `node ${id} durable term ${before.term} -> ${hard.term}`);
    if (hard.term === before.term && before.vote !== 0 && hard.vote !== before.vote) {
      this.fail("one-vote-per-term", `node ${id} changed its vote in term ${hard.term} from ${before.vote} to ${hard.vote}`);
    }
    if (hard.commit < before.commit) this.fail("commit-monotonic", `node ${id} durable commit ${before.commit} -> ${hard.commit}`);
    const last = storage.lastIndex();
    if (hard.commit > last) this.fail("commit-durable", `node ${id} durable commit ${hard.commit} beyond its durable last index ${last}`);
    const floor = storage.snapshotMeta().index;
    for (let index = Math.max(before.commit + 1, floor); index <= hard.commit; index++) {
      this.recordCommitted(id, index, storage.term(index), hard.term);
    }
    record.durable = { ...hard };
  }

  private recordCommitted(id: number, index: number, term: number, atTerm: number): void {
    if (index === 0) return;
    const known = this.committedTerm[index];
    if (known !== undefined && known !== term) {
      this.fail("state-machine-safety", `node ${id} commits term ${term} at index ${index}, term ${known} was committed there before`);
    }
    this.committedTerm[index] = term;
    const at = this.committedAtTerm[index];
    if (at === undefined || atTerm < at) this.committedAtTerm[index] = atTerm;
    if (index > this.committedIndexMax) this.committedIndexMax = index;
  }

  /** Damage on node `id`'s disk (it is down) left `hard` as its durable hard state. */
  onDamage(id: number, hard: HardState): void {
    this.node(id).durable = { ...hard };
  }

  /** A node (re)started with its state machine at `appliedIndex` (its snapshot's index). */
  onStart(id: number, appliedIndex: number, durable: HardState): void {
    const record = this.node(id);
    if (durable.term !== record.durable.term || durable.vote !== record.durable.vote || durable.commit !== record.durable.commit) {
      this.fail("durability", `node ${id} restarted with hard state ${JSON.stringify(durable)}, durable was ${JSON.stringify(record.durable)}`);
    }
    record.appliedIndex = appliedIndex;
    record.memoryCommit = 0;
    record.memoryTerm = 0;
    record.leaderTerm = 0;
  }

  /** The node restored its state machine from a snapshot (restart or InstallSnapshot). */
  onRestore(id: number, meta: SnapshotMeta, stateHash: number, appliedIndex: number, hardTerm: number): void {
    const record = this.node(id);
    if (appliedIndex !== meta.index) this.fail("snapshot-restore", `node ${id} state machine at ${appliedIndex} after restoring snapshot ${meta.index}`);
    const expected = this.appliedStateHash[meta.index];
    if (expected !== undefined && expected !== stateHash) {
      this.fail("state-machine-safety", `node ${id} restored snapshot ${meta.index} whose state differs from what was applied at ${meta.index}`);
    }
    if (meta.index < record.appliedIndex) this.fail("apply-order", `node ${id} restored snapshot ${meta.index} below its applied index ${record.appliedIndex}`);
    this.appliedStateHash[meta.index] = stateHash;
    this.recordCommitted(id, meta.index, meta.term, Math.max(hardTerm, meta.term));
    record.appliedIndex = meta.index;
  }

  /** The node applied `entry` (a no-op included); the state-machine hash after it. */
  onApply(id: number, entry: Entry, stateHash: number, storage: RaftLogStorage, hardTerm: number): void {
    this.checksRun++;
    const record = this.node(id);
    if (entry.index !== record.appliedIndex + 1) {
      this.fail("apply-order", `node ${id} applies ${entry.index} after ${record.appliedIndex}`);
    }
    record.appliedIndex = entry.index;
    if (entry.index > storage.lastIndex()) this.fail("apply-durable", `node ${id} applies ${entry.index} beyond its durable log (${storage.lastIndex()})`);
    if (entry.index >= storage.firstIndex() && storage.term(entry.index) !== entry.term) {
      this.fail("apply-durable", `node ${id} applies term ${entry.term} at ${entry.index}, its durable log has term ${storage.term(entry.index)}`);
    }
    const dataHash = hashBytes(entry.data);
    const knownData = this.appliedDataHash[entry.index];
    if (knownData !== undefined && knownData !== dataHash) {
      this.fail("state-machine-safety", `node ${id} applies other data at index ${entry.index} than another node did`);
    }
    const written = this.entries.get(entry.index)?.get(entry.term);
    if (written === undefined || written.dataHash !== dataHash) {
      this.fail("applied-intact", `node ${id} applies at index ${entry.index} (term ${entry.term}) ${written === undefined ? "an entry no node ever wrote durably" : `other bytes than ${referenceCopy(written, id)}`}`);
    }
    this.appliedDataHash[entry.index] = dataHash;
    const knownState = this.appliedStateHash[entry.index];
    if (knownState !== undefined && knownState !== stateHash) {
      this.fail("state-machine-safety", `node ${id} state after index ${entry.index} differs from another node's`);
    }
    this.appliedStateHash[entry.index] = stateHash;
    this.recordCommitted(id, entry.index, entry.term, hardTerm);
  }

  appliedIndexOf(id: number): number {
    return this.node(id).appliedIndex;
  }
}
