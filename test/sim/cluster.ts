/**
 * N simulated nodes, the network between them, the checkers and a client workload,
 * all driven by one seed and one virtual clock.
 *
 * One `tick()`:
 *   1. advance the clock and deliver the messages due (to live nodes only), checking
 *      the receiver's role, term and commit after each;
 *   2. tick every live core;
 *   3. run the registered per-tick hooks (client workload, fault injection);
 *   4. pump every node's host loop (Readies taken, made durable when due, applied);
 *   5. run the per-tick checkers on every live node.
 * Any exception (a checker's, the core's, the host's) is rethrown as a
 * SimulationFailure that names the seed, the tick and how to replay it.
 *
 * Membership: nodes 1..nodeCount found the cluster (each writes the first configuration,
 * every one of them a voter, as entry 1); `addNode` creates a node that joins later
 * (empty disk, no configuration) and takes part once a leader adds it. Like the
 * transport, a node refuses a message from a node its committed configuration lists as
 * removed, and the sender learns that it was removed and retires (thesis 4.2.3).
 */
import { MessageType, type ClusterConfig, type Member, type Message } from "../../src/proto/schema.js";
import type { Entry, ReadState, SoftState } from "../../src/raft/types.js";
import { Checkers } from "./checkers.js";
import { committedConfigOf } from "./core-internals.js";
import { Network, RELIABLE_NETWORK, type NetworkFaults } from "./network.js";
import { NodeHost, type CoreSettings, type HostMutation, type HostObserver } from "./node-host.js";
import type { RaftwalError } from "../../src/raft/errors.js";
import { Rng } from "../../src/rng.js";
import { VirtualClock } from "./time.js";
import { Workload, DEFAULT_WORKLOAD, type WorkloadOptions } from "./workload.js";

export interface ClusterOptions {
  seed: number;
  /** Names the test in failure messages (used in the replay command). */
  testName: string;
  nodeCount: number;
  core?: CoreSettings;
  network?: NetworkFaults;
  persistDelayTicksMax?: number;
  crashDuringPersistProbability?: number;
  snapshotEveryAppliedEntries?: number;
  /** Entries the log keeps behind each application snapshot (NodeHostOptions). Default 0. */
  snapshotCatchUpEntries?: number;
  /** Every start counts election ticks ahead as the node runtime does (NodeHostOptions). Default false. */
  initialElectionTickAdvance?: boolean;
  snapshotPaddingBytes?: number;
  workload?: Partial<WorkloadOptions>;
  /** A deliberately broken host on every node (HostMutation). */
  mutation?: HostMutation;
}

/** A node's entry in the configuration's address book (the simulated network needs no address). */
export function simMember(id: number): Member {
  return { id, peerAddress: `sim-node-${id}:7000`, apiAddress: "" };
}

/** The founding configuration: every founding node a voter. */
export function foundingConfig(ids: readonly number[]): ClusterConfig {
  return { voters: [...ids], votersOutgoing: [], learners: [], members: ids.map(simMember), removed: [] };
}

export const DEFAULT_CORE_SETTINGS: CoreSettings = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 1,
};

/** The command that replays one seed of one simulation test. */
export function replayCommand(seed: number, testName: string): string {
  return `RAFTWAL_SIM_SEED=${seed} npx vitest run --config test/vitest.config.ts test/sim -t "${testName}"`;
}

/**
 * Logs a run's seed and replay command first. Vitest shows a test's console output only
 * when the test fails (or with RAFTWAL_TEST_VERBOSE=1), so a passing run stays quiet.
 */
export function announceRun(seed: number, testName: string, detail = ""): void {
  console.log(`[sim] ${testName}: seed ${seed}${detail}\n  replay: ${replayCommand(seed, testName)}`);
}

export class SimulationFailure extends Error {
  constructor(
    readonly seed: number,
    readonly tick: number,
    testName: string,
    cause: unknown,
  ) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(
      `simulation failed: seed ${seed}, tick ${tick}: ${detail}\n` +
        `  replay: ${replayCommand(seed, testName)}`,
      { cause },
    );
    this.name = "SimulationFailure";
  }
}

export class Cluster implements HostObserver {
  readonly seed: number;
  readonly testName: string;
  readonly clock = new VirtualClock();
  readonly rng: Rng;
  readonly network: Network;
  readonly checkers: Checkers;
  /** Every node ever created (founding, then joining), retired ones included. */
  readonly nodes: NodeHost[] = [];
  readonly ids: number[] = [];
  private readonly byId = new Map<number, NodeHost>();
  private readonly coreSettings: CoreSettings;
  readonly workload: Workload;
  /** Called at step 3 of every tick. */
  readonly tickHooks: (() => void)[] = [];
  /**
   * Called on a live node after every message it handled (after the checks), after every
   * Ready it advanced (a leader commits on its own persistence there, before the next
   * Ready sends anything) and after every pump: a test that must act at an exact moment
   * (a crash in a given phase of a change) acts here. It may crash nodes.
   */
  readonly stepWatchers: ((node: NodeHost) => void)[] = [];
  /** Extra observers of applies and reads (tests). */
  readonly applyListeners: ((node: NodeHost, entry: Entry) => void)[] = [];
  readonly readListeners: ((node: NodeHost, readState: ReadState) => void)[] = [];
  /** Every (term, leader) seen, in order. */
  readonly leaderHistory: { tick: number; term: number; leader: number }[] = [];
  /** Nodes that stopped with RAFT_ERR_UNREPAIRABLE, in order. */
  readonly unrepairable: { tick: number; node: number; message: string }[] = [];

  constructor(readonly options: ClusterOptions) {
    this.seed = options.seed;
    this.testName = options.testName;
    this.rng = new Rng(options.seed);
    const founders = Array.from({ length: options.nodeCount }, (_, i) => i + 1);
    this.checkers = new Checkers(this.clock);
    this.checkers.membership.diskOf = (id) => this.byId.get(id)?.disk;
    this.network = new Network({ rng: this.rng.derive("network"), clock: this.clock, nodeIds: founders, faults: options.network ?? RELIABLE_NETWORK });
    this.coreSettings = { ...DEFAULT_CORE_SETTINGS, ...options.core };
    for (const id of founders) this.createNode(id);
    this.workload = new Workload(this.rng.derive("workload"), this.clock, () => this.nodes, { ...DEFAULT_WORKLOAD, ...options.workload });
    this.workload.enabled = false;
    this.tickHooks.push(() => this.workload.step());
    this.guard(() => {
      for (const node of this.nodes) node.bootstrap(foundingConfig(founders));
      for (const node of this.nodes) node.start();
    });
  }

  private createNode(id: number): NodeHost {
    const options = this.options;
    const node = new NodeHost({
      id,
      rng: this.rng.derive(`node-${id}`),
      clock: this.clock,
      checkers: this.checkers,
      send: (message) => this.network.send(message),
      observer: this,
      core: this.coreSettings,
      persistDelayTicksMax: options.persistDelayTicksMax ?? 0,
      crashDuringPersistProbability: options.crashDuringPersistProbability ?? 0,
      snapshotEveryAppliedEntries: options.snapshotEveryAppliedEntries ?? 0,
      snapshotCatchUpEntries: options.snapshotCatchUpEntries ?? 0,
      initialElectionTickAdvance: options.initialElectionTickAdvance ?? false,
      snapshotPaddingBytes: options.snapshotPaddingBytes ?? 0,
      ...(options.mutation ? { mutation: options.mutation } : {}),
    });
    this.nodes.push(node);
    this.ids.push(id);
    this.byId.set(id, node);
    return node;
  }

  /**
   * A new node that joins the cluster: an empty disk, no configuration (it never
   * campaigns); it takes part once a leader adds it. It starts in the partition group
   * of `near` (alone when not given). Returns the running node.
   */
  addNode(id: number, near?: number): NodeHost {
    if (this.byId.has(id)) throw new Error(`node ${id} exists already`);
    this.network.addNode(id, near);
    const node = this.createNode(id);
    this.guard(() => node.start());
    return node;
  }

  node(id: number): NodeHost {
    const node = this.byId.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  has(id: number): boolean {
    return this.byId.has(id);
  }

  now(): number {
    return this.clock.now();
  }

  /** Runs `action`, turning any exception into a SimulationFailure naming the seed. */
  guard<T>(action: () => T): T {
    try {
      return action();
    } catch (error) {
      if (error instanceof SimulationFailure) throw error;
      throw new SimulationFailure(this.seed, this.clock.now(), this.testName, error);
    }
  }

  /** Throws a SimulationFailure (for liveness failures and test assertions on the run). */
  fail(message: string): never {
    throw new SimulationFailure(this.seed, this.clock.now(), this.testName, new Error(message));
  }

  onApplied(node: NodeHost, entry: Entry): void {
    this.workload.onApplied(node, entry);
    for (const listener of this.applyListeners) listener(node, entry);
  }

  onAdvanced(node: NodeHost): void {
    this.watch(node);
  }

  onUnrepairable(node: NodeHost, error: RaftwalError, config: ClusterConfig): void {
    this.checkers.repair.onUnrepairable(node.id, config, (voter) => this.byId.get(voter)?.disk.repairMark() !== undefined);
    this.unrepairable.push({ tick: this.now(), node: node.id, message: error.message });
  }

  onReadServed(node: NodeHost, readState: ReadState): void {
    this.workload.onReadServed(node, readState);
    for (const listener of this.readListeners) listener(node, readState);
  }

  tick(): void {
    this.guard(() => {
      this.clock.advance();
      for (const message of this.network.deliverDue()) {
        const node = this.node(message.to);
        if (!node.alive || this.refusedAsRemoved(node, message)) continue;
        node.receive(message);
        // Also after every message, so that a leadership lasting less than a tick is seen.
        this.observe(node);
        this.watch(node);
      }
      for (const node of this.nodes) node.tick();
      for (const hook of this.tickHooks) hook();
      this.pumpAndCheck();
    });
  }

  /**
   * The transport's rule (src/raft/MEMBERSHIP.md, rule 7): a member refuses a node that
   * its committed configuration lists as removed, and says so; the refused node stops.
   */
  private refusedAsRemoved(receiver: NodeHost, message: Message): boolean {
    if (!committedConfigOf(receiver.raft()).removed.includes(message.from)) return false;
    const sender = this.node(message.from);
    if (sender.alive) sender.retire();
    return true;
  }

  /** The checks run on a live node after every message it handled and after every pump. */
  private observe(node: NodeHost): SoftState {
    const core = node.raft();
    const soft = core.softState();
    this.checkers.observeNodeState(node.id, soft, core.hardState(), node.disk.storage);
    this.checkers.membership.observeCommit(node.id, node.incarnation, soft, core);
    this.checkers.repair.observeRecovery(node.id, core.recovering(), soft.term);
    return soft;
  }

  private watch(node: NodeHost): void {
    for (const watcher of this.stepWatchers) if (node.alive) watcher(node);
  }

  /** Steps 4 and 5 of a tick; also useful right after a test acted on a core. */
  pumpAndCheck(): void {
    this.guard(() => {
      for (const node of this.nodes) node.pump();
      for (const node of this.nodes) {
        if (!node.alive) continue;
        const soft = this.observe(node);
        this.checkers.membership.checkConfigInForce(node.id, node.raft(), node.disk, node.idle() ? node.hostConfig : undefined);
        if (soft.role === "leader") {
          const last = this.leaderHistory[this.leaderHistory.length - 1];
          if (!last || last.term !== soft.term || last.leader !== node.id) this.leaderHistory.push({ tick: this.now(), term: soft.term, leader: node.id });
        }
      }
      for (const node of this.nodes) this.watch(node);
    });
  }

  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.tick();
  }

  /** Ticks until `done()` holds; fails the run (with the seed) after `ticksMax`. Returns the ticks taken. */
  runUntil(done: () => boolean, ticksMax: number, what: string): number {
    for (let i = 0; i <= ticksMax; i++) {
      if (this.guard(done)) return i;
      this.tick();
    }
    return this.fail(`liveness: ${what} not reached within ${ticksMax} ticks`);
  }

  // ---- views ----

  soft(id: number): SoftState | undefined {
    const node = this.node(id);
    return node.alive ? node.raft().softState() : undefined;
  }

  /** Live nodes that believe they lead, highest term first. */
  leaders(): NodeHost[] {
    return this.nodes
      .filter((n) => n.alive && n.raft().softState().role === "leader")
      .sort((a, b) => b.raft().softState().term - a.raft().softState().term);
  }

  /**
   * The leader recognized by a majority of the voters of its configuration, of both halves
   * while joint (live, connected to it, in its term, naming it leader; the leader counts
   * for itself when it is a voter), or undefined.
   */
  stableLeader(): NodeHost | undefined {
    for (const leader of this.leaders()) {
      const term = leader.raft().softState().term;
      const follows = (id: number): boolean => {
        if (id === leader.id) return true;
        const node = this.byId.get(id);
        if (!node || !node.alive || !this.network.connected(id, leader.id)) return false;
        const soft = node.raft().softState();
        return soft.term === term && soft.leader === leader.id;
      };
      const config = leader.raft().clusterConfig().config;
      const majority = (voters: readonly number[]) => voters.length === 0 || voters.filter(follows).length * 2 > voters.length;
      if (majority(config.voters) && majority(config.votersOutgoing)) return leader;
    }
    return undefined;
  }

  /** The members (voters of both halves, learners) of the stable leader's configuration in force; empty without one. */
  members(): number[] {
    const config = this.stableLeader()?.raft().clusterConfig().config;
    if (!config) return [];
    return [...new Set([...config.voters, ...config.votersOutgoing, ...config.learners])].sort((a, b) => a - b);
  }

  // ---- faults ----

  crash(id: number): void {
    this.node(id).crash();
  }

  restart(id: number): void {
    this.guard(() => this.node(id).start());
  }

  /** Nodes that are down and may be restarted (retired ones and those stopped as unrepairable never are). */
  downIds(): number[] {
    return this.nodes.filter((n) => !n.alive && !n.retired && n.unrepairable === undefined).map((n) => n.id);
  }

  liveIds(): number[] {
    return this.nodes.filter((n) => n.alive).map((n) => n.id);
  }

  /** Messages of `type` sent since the last reset (all types when omitted). */
  sent(type?: MessageType): number {
    return this.network.stats.sent(type);
  }

  // ---- proposals made directly by tests ----

  /** Proposes `command` on node `id` (must be leader) and tracks it in the workload. */
  propose(id: number, command: string): { index: number; term: number } {
    const position = this.guard(() => this.node(id).raft().propose(new TextEncoder().encode(command)));
    this.workload.track(id, position.index, position.term, command);
    return position;
  }

  /** Whether `command` was acknowledged (applied at its index with its term on the proposer). */
  acked(command: string): boolean {
    return this.workload.ackedAt.has(command);
  }

  /** Nodes (live or not) whose state machine holds `command`. */
  holders(command: string): number[] {
    return this.nodes.filter((n) => n.alive && n.stateMachine.has(command)).map((n) => n.id);
  }

  /** Highest applied index over live nodes. */
  appliedMax(): number {
    return Math.max(0, ...this.nodes.filter((n) => n.alive).map((n) => n.stateMachine.appliedIndex));
  }
}
