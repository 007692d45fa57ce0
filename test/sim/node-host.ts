/**
 * Hosts one Raft core exactly as the host loop in src/raft/types.ts describes:
 * take a Ready, send its messages at once, make its snapshot chunks, snapshot,
 * entries and hard state durable on the simulated disk, apply committed entries to
 * the state machine, serve read states, then advance.
 *
 * Making a Ready durable can be postponed by a random number of ticks (the core
 * keeps ticking and stepping meanwhile), which exercises the window between
 * `ready()` and `advance()`. A crash can happen at any moment: between ticks (an
 * outstanding Ready is lost with everything else in memory) or inside the
 * persistence of a Ready, after any of its durable steps. A restart builds a new core
 * from the disk alone, with the state machine restored from the newest snapshot and
 * `appliedIndex` at its index; the core hands the log tail out again.
 *
 * The application compacts: every `snapshotEveryAppliedEntries` applied entries it
 * serializes its state machine as a snapshot (with the configuration in force at its
 * index, read from the disk), stores it, compacts the log up to
 * `snapshotCatchUpEntries` behind it (a catch-up tail) and tells the core (`snapshotTaken`).
 *
 * Membership, as the node runtime does it (src/node/membership.ts): a founding member
 * writes the cluster's first configuration as entry 1 (term 1, committed) before its
 * first start (`bootstrap`); a joining node starts with an empty disk and no
 * configuration. Configuration entries are not for the application: applying one moves
 * only the applied index. A node that applies a committed configuration (or installs a
 * snapshot) listing it as removed, or that a member refuses as removed (cluster.ts),
 * retires: it stops for good.
 *
 * Storage damage (disk-damage.ts), as the node runtime handles it (src/node/startup.ts,
 * raft-node.ts): damage strikes a node's disk while it is down; its next start hands the
 * core what the disk's repair mark says was lost (RaftConfig.damage); after every advance,
 * once core.recovering() is undefined, the host removes the mark. A core that throws
 * RAFT_ERR_UNREPAIRABLE stops the node loudly, for good.
 */
import { clusterConfigCodec, EntryType, type ClusterConfig } from "../../src/proto/schema.js";
import { RaftErrorCode, RaftwalError } from "../../src/raft/errors.js";
import { createRaft } from "../../src/raft/index.js";
import { initialElectionTickAdvance } from "../../src/node/election-tick-advance.js";
import { electionTimeoutTicksOf } from "../../src/node/options.js";
import type { Entry, Message, RaftConfig, RaftCore, ReadState, Ready, StorageDamage } from "../../src/raft/types.js";
import type { Checkers } from "./checkers.js";
import { damageDisk, damageNewestSnapshots, flipRecordAt, type DamageKind, type DamageOutcome } from "./disk-damage.js";
import { decodeConfig, SimDisk } from "./disk.js";
import type { Rng } from "../../src/rng.js";
import { StateMachine } from "./state-machine.js";
import type { VirtualClock } from "./time.js";
import { trace, TRACE_ENABLED } from "./trace.js";
import { compactionPoint, snapshotDecision } from "../../src/node/snapshot-policy.js";

/** Where, inside the persistence of a Ready, a crash may strike. */
export const CRASH_POINTS = ["before-persist", "after-chunks", "after-snapshot", "after-entries", "after-hard-state", "after-apply"] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

/** Core settings a test may choose (the host supplies id, storage, random, appliedIndex; the configuration comes from the log). */
export type CoreSettings = Omit<RaftConfig, "id" | "voters" | "learners" | "storage" | "random" | "appliedIndex">;

export interface HostObserver {
  /** `entry` was applied on `node` (no-ops included). */
  onApplied(node: NodeHost, entry: Entry): void;
  /** A read became servable on `node`; its state machine is at least at `readState.index`. */
  onReadServed(node: NodeHost, readState: ReadState): void;
  /** `node` advanced a Ready (a leader may have committed on its own persistence); it may crash nodes. */
  onAdvanced(node: NodeHost): void;
  /** `node`'s core threw RAFT_ERR_UNREPAIRABLE under `config`: the node stopped for good. */
  onUnrepairable(node: NodeHost, error: RaftwalError, config: ClusterConfig): void;
}

/**
 * Deliberately broken hosts, for testing that the checkers catch what they break:
 *   - "advance-before-durable" calls advance() as soon as it takes a Ready and makes the
 *     Ready durable 1..persistDelayTicksMax+1 ticks later, so a crash in between loses
 *     votes and entries the core already acknowledged;
 *   - "forget-hard-state-loss" never tells the core that its hard state was lost (the
 *     restart's damage says hardStateLost false): the node votes at once, with its vote forgotten.
 */
export type HostMutation = "advance-before-durable" | "forget-hard-state-loss";

export interface NodeHostOptions {
  id: number;
  rng: Rng;
  clock: VirtualClock;
  checkers: Checkers;
  send: (message: Message) => void;
  observer: HostObserver;
  core: CoreSettings;
  /** A Ready is made durable 0..this many ticks after it is taken. */
  persistDelayTicksMax: number;
  /** Probability, per Ready made durable, of crashing somewhere inside its persistence. */
  crashDuringPersistProbability: number;
  /** Take an application snapshot every this many applied entries (0: never). */
  snapshotEveryAppliedEntries: number;
  /** Entries the log keeps behind each application snapshot, a catch-up tail (src/node/snapshot-policy.ts, compactionPoint). */
  snapshotCatchUpEntries: number;
  /** At every start, count election ticks ahead as the node runtime does (src/node/election-tick-advance.ts). */
  initialElectionTickAdvance: boolean;
  /** Padding added to each application snapshot (to make large snapshots). */
  snapshotPaddingBytes: number;
  /** A deliberately broken host (HostMutation). */
  mutation?: HostMutation;
}

interface PendingReady {
  ready: Ready;
  persistTick: number;
}

const NO_DATA = new Uint8Array(0);

/** Bound on Readies handled for one node in one pump (each one is real work). */
const READIES_PER_PUMP_MAX = 64;

export class NodeHost {
  readonly id: number;
  readonly disk = new SimDisk();
  alive = false;
  incarnation = 0;
  crashes = 0;
  /** Stopped for good: it learned that it was removed from the cluster. */
  retired = false;
  /** Stopped for good: its core threw RAFT_ERR_UNREPAIRABLE (the error's message). */
  unrepairable: string | undefined;
  /** Every damage its disk suffered, in order. */
  readonly damages: DamageOutcome[] = [];
  /** The configuration in force as the host knows it: clusterConfig() at start, then Ready.clusterConfig. */
  hostConfig: ClusterConfig | undefined;
  /** Set when this node learns of its removal; it retires once the current Ready is done. */
  private removalLearned = false;
  /** The application state machine (volatile: rebuilt from disk on restart). */
  stateMachine = new StateMachine();
  readiesHandled = 0;
  /** Set by a test to crash at the given point while persisting the next Ready. */
  crashAtNextPersist: CrashPoint | undefined;
  private core: RaftCore | undefined;
  private pending: PendingReady | undefined;
  /** The last compaction check held the snapshot back for a transfer (checked again on ticks). */
  private snapshotHeldBack = false;
  /** Readies already advanced but not yet durable (only with the mutation). */
  private readonly deferred: PendingReady[] = [];
  private readonly waitingReads: ReadState[] = [];

  constructor(private readonly options: NodeHostOptions) {
    this.id = options.id;
  }

  /** The running core; throws when the node is down. */
  raft(): RaftCore {
    if (!this.core) throw new Error(`node ${this.id} is down`);
    return this.core;
  }

  /** Updates the host-side knobs (delays, crash probability, compaction cadence). */
  configure(update: Partial<Pick<NodeHostOptions, "persistDelayTicksMax" | "crashDuringPersistProbability" | "snapshotEveryAppliedEntries" | "snapshotPaddingBytes">>): void {
    Object.assign(this.options, update);
  }

  /**
   * Before the first start of a founding member: the cluster's first configuration as
   * entry 1 (term 1) and a hard state that commits it, as `initialClusterState: "new"` does.
   */
  bootstrap(config: ClusterConfig): void {
    const storage = this.disk.storage;
    if (this.incarnation > 0 || storage.lastIndex() > 0) throw new Error(`node ${this.id} bootstraps a disk that holds state`);
    const entries: Entry[] = [{ index: 1, term: 1, type: EntryType.CLUSTER_CONFIG, data: clusterConfigCodec.encode(config) }];
    this.disk.appendEntries(entries);
    this.options.checkers.afterDurableEntries(this.id, storage, entries);
    this.options.checkers.membership.afterDurableEntries(this.id, this.disk, entries);
    const hard = { term: 1, vote: 0, commit: 1 };
    this.disk.setHardState(hard);
    this.options.checkers.afterDurableHardState(this.id, hard, storage);
  }

  /** Starts (or restarts) the node from what its disk holds. */
  start(): void {
    if (this.alive) throw new Error(`node ${this.id} already running`);
    if (this.retired) throw new Error(`node ${this.id} retired (it was removed from the cluster)`);
    if (this.unrepairable !== undefined) throw new Error(`node ${this.id} stopped as unrepairable`);
    this.incarnation += 1;
    const storage = this.disk.storage;
    const snapshot = storage.snapshotMeta();
    if (TRACE_ENABLED) trace(this.options.clock.now(), this.id, `start: snapshot ${snapshot.index}, log to ${storage.lastIndex()}, ${JSON.stringify(storage.hardState())}`);
    this.stateMachine = snapshot.index > 0 ? StateMachine.deserialize(this.disk.readSnapshotData()) : new StateMachine();
    const hard = storage.hardState();
    this.options.checkers.onStart(this.id, snapshot.index, hard);
    if (snapshot.index > 0) this.options.checkers.onRestore(this.id, snapshot, this.stateMachine.hash, this.stateMachine.appliedIndex, hard.term);
    this.core = createRaft({
      ...this.options.core,
      id: this.id,
      storage,
      random: this.options.rng.derive(`core-${this.incarnation}`).asRandomFunction(),
      appliedIndex: snapshot.index,
      ...this.damageForCore(),
    });
    this.pending = undefined;
    this.deferred.length = 0;
    this.waitingReads.length = 0;
    this.alive = true;
    this.hostConfig = this.core.clusterConfig().config;
    this.removalLearned = false;
    this.options.checkers.membership.checkConfigInForce(this.id, this.core, this.disk);
    if (this.options.initialElectionTickAdvance) {
      const ticks = initialElectionTickAdvance(this.core, this.id, electionTimeoutTicksOf(this.options.core));
      for (let i = 0; i < ticks; i++) this.core.tick();
    }
  }

  /** What the start tells the core was lost (the disk's repair mark), as the node runtime does; the broken host forgets the hard state. */
  private damageForCore(): { damage?: StorageDamage } {
    const damage = this.disk.damageForCore();
    if (damage === undefined) return {};
    if (TRACE_ENABLED) trace(this.options.clock.now(), this.id, `start repairing: ${JSON.stringify(damage)}`);
    if (this.options.mutation === "forget-hard-state-loss") return { damage: { ...damage, hardStateLost: false } };
    return { damage };
  }

  /**
   * Damage at rest: `kind` strikes this node's disk while it is down (its next start finds
   * it). Returns what was lost, or undefined when the disk holds nothing `kind` can hit.
   */
  damage(kind: DamageKind, rng: Rng): DamageOutcome | undefined {
    return this.damageWith(() => damageDisk(this.disk, kind, rng));
  }

  /** Damage at rest chosen by a scenario: a flipped bit in the record of entry `index`. */
  damageRecordAt(index: number): DamageOutcome {
    return this.damageWith(() => flipRecordAt(this.disk, index))!;
  }

  /** Damage at rest chosen by a scenario: the newest `count` snapshots fail their checksums. */
  damageNewestSnapshots(count: number): DamageOutcome {
    return this.damageWith(() => damageNewestSnapshots(this.disk, count))!;
  }

  private damageWith(strike: () => DamageOutcome | undefined): DamageOutcome | undefined {
    if (this.alive) throw new Error(`node ${this.id}: damage strikes a disk at rest (crash the node first)`);
    const outcome = strike();
    if (outcome === undefined) return undefined;
    if (TRACE_ENABLED) trace(this.options.clock.now(), this.id, `damage ${outcome.kind}: ${outcome.detail}; mark ${JSON.stringify(this.disk.repairMark())}`);
    this.damages.push(outcome);
    this.options.checkers.onDamage(this.id, this.disk.storage.hardState());
    return outcome;
  }

  /** Loses everything not on disk. */
  crash(): void {
    if (!this.alive) return;
    if (TRACE_ENABLED) trace(this.options.clock.now(), this.id, `crash${this.pending ? " (a Ready outstanding)" : ""}`);
    this.crashes += 1;
    this.stop();
  }

  /** Stops for good: this node was removed from the cluster (its disk stays, for the checkers). */
  retire(): void {
    if (TRACE_ENABLED) trace(this.options.clock.now(), this.id, "retires: removed from the cluster");
    this.retired = true;
    this.stop();
  }

  private stop(): void {
    this.alive = false;
    this.core = undefined;
    this.pending = undefined;
    this.deferred.length = 0;
    this.waitingReads.length = 0;
    this.stateMachine = new StateMachine();
    this.crashAtNextPersist = undefined;
    this.snapshotHeldBack = false;
  }

  tick(): void {
    if (!this.core) return;
    try {
      this.core.tick();
      // As the node runtime: a snapshot held back for a transfer is taken once it ends, writes or not.
      if (this.snapshotHeldBack && !this.pending) this.maybeCompact();
    } catch (error) {
      if (!(error instanceof RaftwalError) || error.code !== RaftErrorCode.UNREPAIRABLE) throw error;
      this.stopUnrepairable(error);
    }
  }

  /** The core gave up (a quorum recovering, no leader): the node stops loudly and is never restarted. */
  private stopUnrepairable(error: RaftwalError): void {
    if (TRACE_ENABLED) trace(this.options.clock.now(), this.id, `stops: ${error.message}`);
    this.unrepairable = error.message;
    const config = this.core!.clusterConfig().config;
    this.stop();
    this.options.observer.onUnrepairable(this, error, config);
  }

  receive(message: Message): void {
    if (this.core) this.core.step(message);
  }

  /** Handles Readies: takes one when none is outstanding, makes it durable when its time has come. */
  pump(): void {
    if (this.options.mutation === "advance-before-durable") return this.pumpAdvancingEarly();
    for (let round = 0; round < READIES_PER_PUMP_MAX; round++) {
      if (!this.core) return;
      if (this.pending) {
        if (this.pending.persistTick > this.options.clock.now()) {
          this.sendEarlyMessages();
          return;
        }
        const { ready } = this.pending;
        this.pending = undefined;
        this.persistApplyAdvance(ready);
        continue;
      }
      if (!this.core.hasReady()) return;
      const ready = this.core.ready();
      this.readiesHandled += 1;
      this.onReady(ready);
      for (const message of ready.messages) this.emit(message);
      const delay = this.options.persistDelayTicksMax > 0 ? this.options.rng.between(0, this.options.persistDelayTicksMax) : 0;
      this.pending = { ready, persistTick: this.options.clock.now() + delay };
    }
  }

  /** What the host learns from a Ready when it takes it; a leader's new entries are checked for the one-change rule. */
  private onReady(ready: Ready): void {
    const core = this.core!;
    if (ready.clusterConfig) this.hostConfig = ready.clusterConfig;
    const soft = core.softState();
    if (soft.role === "leader") this.options.checkers.membership.onLeaderReady(this.id, soft.term, core, this.disk, ready.entries);
  }

  /** The broken host loop of the "advance-before-durable" mutation. */
  private pumpAdvancingEarly(): void {
    const now = this.options.clock.now();
    while (this.core && this.deferred.length > 0 && this.deferred[0]!.persistTick <= now) {
      this.persistApplyAdvance(this.deferred.shift()!.ready, false);
    }
    for (let round = 0; round < READIES_PER_PUMP_MAX && this.core?.hasReady(); round++) {
      const ready = this.core.ready();
      this.onReady(ready);
      for (const message of ready.messages) this.emit(message);
      this.core.advance(ready);
      this.deferred.push({ ready, persistTick: now + 1 + this.options.rng.between(0, this.options.persistDelayTicksMax) });
    }
  }

  /**
   * While a Ready waits to become durable, send the messages the core already
   * considers safe (heartbeats, appends, vote requests) through `takeMessages()`,
   * as the node runtime does: a slow disk must not hold back elections or heartbeats.
   */
  private sendEarlyMessages(): void {
    if (!this.core) return;
    for (const message of this.core.takeMessages()) this.emit(message);
  }

  /** Sends one message of the core, checked first against what the node holds now (repair-checkers.ts). */
  private emit(message: Message): void {
    if (message.from !== this.id) throw new Error(`node ${this.id} emitted a message from ${message.from}`);
    this.options.checkers.repair.onSend(this.id, message, this.core!.recovering() !== undefined, this.disk.storage);
    this.options.send(message);
  }

  private pickCrashPoint(): CrashPoint | undefined {
    const forced = this.crashAtNextPersist;
    if (forced) {
      this.crashAtNextPersist = undefined;
      return forced;
    }
    if (!this.options.rng.chance(this.options.crashDuringPersistProbability)) return undefined;
    return this.options.rng.pick(CRASH_POINTS);
  }

  /** Steps 4-6 of the host loop, with an optional crash after any durable step. */
  private persistApplyAdvance(ready: Ready, advance = true): void {
    const crashPoint = this.pickCrashPoint();
    if (TRACE_ENABLED) {
      const chunks = ready.snapshotChunks.map((c) => `${c.meta.index}@${c.offset}+${c.data.length}${c.done ? "!" : ""}`).join(",");
      const entries = ready.entries.length > 0 ? `${ready.entries[0]!.index}..${ready.entries[ready.entries.length - 1]!.index}` : "-";
      const committed = ready.committedEntries.length > 0 ? `${ready.committedEntries[0]!.index}..${ready.committedEntries[ready.committedEntries.length - 1]!.index}` : "-";
      trace(this.options.clock.now(), this.id, `persist: chunks [${chunks}] snapshot ${ready.snapshot?.index ?? "-"} entries ${entries} hard ${JSON.stringify(ready.hardState ?? null)} committed ${committed} reads ${ready.readStates.length}${crashPoint ? ` crash ${crashPoint}` : ""}`);
    }
    const { checkers } = this.options;
    const disk = this.disk;
    const storage = disk.storage;
    if (crashPoint === "before-persist") return this.crash();

    for (const chunk of ready.snapshotChunks) disk.writeSnapshotChunk(chunk);
    if (crashPoint === "after-chunks") return this.crash();

    let snapshotData: Uint8Array | undefined;
    if (ready.snapshot) {
      snapshotData = disk.installSnapshot(ready.snapshot);
      checkers.afterDurableSnapshot(this.id, ready.snapshot, storage.hardState().term);
    }
    if (crashPoint === "after-snapshot") return this.crash();

    if (ready.entries.length > 0) {
      checkers.beforeDurableEntries(this.id, storage, ready.entries);
      disk.appendEntries(ready.entries);
      checkers.afterDurableEntries(this.id, storage, ready.entries);
      checkers.membership.afterDurableEntries(this.id, disk, ready.entries);
    }
    if (crashPoint === "after-entries") return this.crash();

    if (ready.hardState) {
      disk.setHardState(ready.hardState);
      checkers.afterDurableHardState(this.id, ready.hardState, storage);
      const soft = this.core!.softState();
      checkers.repair.afterDurableVote(this.id, ready.hardState, soft.role === "candidate" && soft.term === ready.hardState.term);
    }
    if (crashPoint === "after-hard-state") return this.crash();

    const hardTerm = storage.hardState().term;
    if (ready.snapshot && snapshotData) {
      this.stateMachine = StateMachine.deserialize(snapshotData);
      checkers.onRestore(this.id, ready.snapshot, this.stateMachine.hash, this.stateMachine.appliedIndex, hardTerm);
      if (ready.snapshot.config.removed.includes(this.id)) this.removalLearned = true;
    }
    for (const entry of ready.committedEntries) {
      // A configuration entry is the core's business (it is in force since it was appended): the application skips it.
      const isConfig = entry.type === EntryType.CLUSTER_CONFIG;
      this.stateMachine.apply(entry.index, isConfig ? NO_DATA : entry.data);
      if (isConfig && decodeConfig(entry).removed.includes(this.id)) this.removalLearned = true;
      checkers.onApply(this.id, entry, this.stateMachine.hash, storage, hardTerm);
      this.options.observer.onApplied(this, entry);
      if (!this.core) return; // an observer crashed the node
    }
    this.waitingReads.push(...ready.readStates);
    this.serveReads();
    if (crashPoint === "after-apply") return this.crash();

    if (!advance) return;
    this.core!.advance(ready);
    this.followRepair();
    if (this.removalLearned) return this.retire();
    this.options.observer.onAdvanced(this);
    this.maybeCompact();
  }

  /** As the node runtime after every advance: once the core is whole again, the repair mark goes (durably). */
  private followRepair(): void {
    if (this.disk.repairMark() === undefined || this.core!.recovering() !== undefined) return;
    if (TRACE_ENABLED) trace(this.options.clock.now(), this.id, "repaired: the repair mark goes");
    this.options.checkers.repair.onMarkCleared(this.id, this.disk.storage.hardState());
    this.disk.clearRepairMark();
  }

  private serveReads(): void {
    let kept = 0;
    for (const readState of this.waitingReads) {
      if (readState.index <= this.stateMachine.appliedIndex) this.options.observer.onReadServed(this, readState);
      else this.waitingReads[kept++] = readState;
    }
    this.waitingReads.length = kept;
  }

  /**
   * Application-side compaction (section 7): snapshot the state machine, compact, tell the
   * core; when the node runtime's policy says so (src/node/snapshot-policy.ts: held back
   * while this leader sends a snapshot, within its bound).
   */
  private maybeCompact(): void {
    const every = this.options.snapshotEveryAppliedEntries;
    const core = this.core;
    if (every <= 0 || !core) return;
    const decision = snapshotDecision({
      entriesSinceSnapshot: this.stateMachine.appliedIndex - this.disk.storage.snapshotMeta().index,
      walBytesSinceSnapshot: 0,
      everyEntries: every,
      everyWalBytes: Number.POSITIVE_INFINITY,
      sendingSnapshot: () => core.sendingSnapshot(),
    });
    this.snapshotHeldBack = decision === "wait-for-transfer";
    if (decision === "take") this.snapshotNow();
  }

  /** Takes an application snapshot at the applied index right now. */
  snapshotNow(): void {
    const core = this.raft();
    if (this.pending) throw new Error("snapshotNow with a Ready outstanding");
    const storage = this.disk.storage;
    const applied = this.stateMachine.appliedIndex;
    if (applied <= storage.snapshotMeta().index) return;
    const data = this.stateMachine.serialize(this.options.snapshotPaddingBytes);
    const config = this.disk.configAt(applied).config;
    this.options.checkers.membership.checkSnapshotConfig(this.id, applied, config, core);
    const meta = { index: applied, term: storage.term(applied), config, sizeBytes: data.length };
    // The node runtime's rule (entries only: the simulation's entries are small).
    const compactTo = compactionPoint({
      snapshotIndex: applied,
      catchUpEntries: this.options.snapshotCatchUpEntries,
      catchUpBytes: Number.POSITIVE_INFINITY,
      entriesSinceSnapshot: 0,
      walBytesSinceSnapshot: 0,
    });
    this.disk.takeSnapshot(meta, data, compactTo);
    core.snapshotTaken(meta);
  }

  /** True when no Ready is outstanding and the core has nothing to hand out. */
  idle(): boolean {
    return !!this.core && !this.pending && !this.core.hasReady();
  }
}
