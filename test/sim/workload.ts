/**
 * The client workload: proposes unique commands to whichever node it believes is
 * leader (following NOT_LEADER hints, else trying another live node), records which
 * proposals were acknowledged, and issues linearizable reads.
 *
 * A proposal is acknowledged when the node that accepted it applies, at the
 * proposal's index, an entry with the proposal's term: only then has that leader's
 * entry committed (the ProposalPosition contract). A read that began after a write was
 * acknowledged must see that write.
 */
import { RaftwalError } from "../../src/errors.js";
import type { Entry, ReadState } from "../../src/raft/types.js";
import { SafetyViolation } from "./checkers.js";
import type { NodeHost } from "./node-host.js";
import type { Rng } from "../../src/rng.js";
import { decodeCommand, encodeCommand } from "./state-machine.js";
import type { VirtualClock } from "./time.js";

export interface WorkloadOptions {
  /** Probability, per tick, of trying to start a proposal while fewer than `inflightMax` are open. */
  proposeProbability: number;
  inflightMax: number;
  /** Commands per proposal: 1 uses propose(), more uses proposeBatch(). */
  batchSizeMax: number;
  /** A proposal not acknowledged after this many ticks stops holding its in-flight slot. */
  proposalTimeoutTicks: number;
  /** Probability, per tick, of starting a read. */
  readProbability: number;
}

export const DEFAULT_WORKLOAD: WorkloadOptions = {
  proposeProbability: 0.5,
  inflightMax: 4,
  batchSizeMax: 3,
  proposalTimeoutTicks: 200,
  readProbability: 0.1,
};

interface Proposal {
  node: number;
  index: number;
  term: number;
  command: string;
  startTick: number;
  resolved: boolean;
}

interface PendingRead {
  node: number;
  startTick: number;
  /** Writes acknowledged before the read began: acked[0 .. ackedCountAtStart). */
  ackedCountAtStart: number;
  served: boolean;
}

export class Workload {
  /** Acknowledged commands, in acknowledgement order. */
  readonly acked: string[] = [];
  readonly ackedAt = new Map<string, { index: number; term: number; tick: number }>();
  proposalsStarted = 0;
  proposalsFailed = 0;
  notLeaderRejections = 0;
  readsStarted = 0;
  readsServed = 0;
  /** Reads served, by the node that served them (for the deposed-leader test). */
  readonly readsServedBy = new Map<number, { requestTick: number; servedTick: number }[]>();
  enabled = true;
  private readonly proposals = new Map<string, Proposal>();
  private readonly reads = new Map<string, PendingRead>();
  private commandNext = 1;
  private readNext = 1;
  private readonly refusedReads = new Set<string>();
  private leaderGuess = 0;

  constructor(
    private readonly rng: Rng,
    private readonly clock: VirtualClock,
    private readonly nodes: () => readonly NodeHost[],
    private options: WorkloadOptions = DEFAULT_WORKLOAD,
  ) {}

  configure(update: Partial<WorkloadOptions>): void {
    this.options = { ...this.options, ...update };
  }

  openProposals(): number {
    const now = this.clock.now();
    let open = 0;
    for (const p of this.proposals.values()) {
      if (!p.resolved && now - p.startTick < this.options.proposalTimeoutTicks) open++;
    }
    return open;
  }

  /** One tick of client activity. */
  step(): void {
    if (!this.enabled) return;
    if (this.openProposals() < this.options.inflightMax && this.rng.chance(this.options.proposeProbability)) {
      const count = this.rng.between(1, this.options.batchSizeMax);
      this.proposeSomewhere(count);
    }
    if (this.rng.chance(this.options.readProbability)) this.readSomewhere();
  }

  private liveNodes(): NodeHost[] {
    return this.nodes().filter((n) => n.alive);
  }

  /** Tries the guessed leader, then follows hints, then live nodes at random; gives up after a few tries. */
  proposeSomewhere(count: number): boolean {
    const live = this.liveNodes();
    if (live.length === 0) return false;
    let target = live.find((n) => n.id === this.leaderGuess) ?? this.rng.pick(live);
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.tryPropose(target, count)) {
        this.leaderGuess = target.id;
        return true;
      }
      const hint = target.raft().softState().leader;
      const hinted = live.find((n) => n.id === hint && n.id !== target.id);
      target = hinted ?? this.rng.pick(live);
    }
    return false;
  }

  /** Proposes `count` new commands on `node`; false on NOT_LEADER or a dropped proposal. */
  tryPropose(node: NodeHost, count: number): boolean {
    const commands: string[] = [];
    for (let i = 0; i < count; i++) commands.push(`c${this.commandNext++}`);
    return this.tryProposeCommands(node, commands);
  }

  /** Proposes one given (unique) command on `node`; false on NOT_LEADER or a dropped proposal. */
  tryProposeCommand(node: NodeHost, command: string): boolean {
    return this.tryProposeCommands(node, [command]);
  }

  private tryProposeCommands(node: NodeHost, commands: string[]): boolean {
    const count = commands.length;
    try {
      const core = node.raft();
      const position = count === 1 ? core.propose(encodeCommand(commands[0]!)) : core.proposeBatch(commands.map(encodeCommand));
      commands.forEach((command, i) => this.track(node.id, position.index + i, position.term, command));
      return true;
    } catch (error) {
      if (error instanceof RaftwalError && (error.code === "RAFT_ERR_NOT_LEADER" || error.code === "RAFT_ERR_PROPOSAL_DROPPED")) {
        this.notLeaderRejections++;
        return false;
      }
      throw error;
    }
  }

  /** Records a proposal made by a test directly on a core. */
  track(node: number, index: number, term: number, command: string): void {
    this.proposalsStarted++;
    this.proposals.set(`${node}:${index}`, { node, index, term, command, startTick: this.clock.now(), resolved: false });
  }

  /** Called by the cluster for every entry a node applies. */
  onApplied(node: NodeHost, entry: Entry): void {
    const key = `${node.id}:${entry.index}`;
    const proposal = this.proposals.get(key);
    if (!proposal) return;
    this.proposals.delete(key);
    if (entry.term !== proposal.term) {
      this.proposalsFailed++;
      return;
    }
    const command = decodeCommand(entry.data);
    if (command !== proposal.command) {
      throw new SafetyViolation("proposal", this.clock.now(), `node ${node.id} applied "${command}" at index ${entry.index} term ${entry.term}, where it accepted "${proposal.command}" in that term`);
    }
    if (!this.ackedAt.has(command)) {
      this.acked.push(command);
      this.ackedAt.set(command, { index: entry.index, term: entry.term, tick: this.clock.now() });
    }
  }

  /** Starts a linearizable read on a live node (any role: followers forward to the leader). */
  readSomewhere(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const node = live.find((n) => n.id === this.leaderGuess) ?? this.rng.pick(live);
    this.readOn(node);
  }

  /** Starts a read on `node`; returns its request id (reads the core refused are forgotten: see `wasRefused`). */
  readOn(node: NodeHost): string {
    const requestId = `r${this.readNext++}`;
    this.reads.set(requestId, { node: node.id, startTick: this.clock.now(), ackedCountAtStart: this.acked.length, served: false });
    this.readsStarted++;
    try {
      node.raft().readIndex(encodeCommand(requestId));
    } catch (error) {
      if (!(error instanceof RaftwalError)) throw error;
      this.reads.delete(requestId);
      this.refusedReads.add(requestId);
    }
    return requestId;
  }

  /** Called by the cluster when a read becomes servable on a node. */
  onReadServed(node: NodeHost, readState: ReadState): void {
    const requestId = decodeCommand(readState.requestId);
    const read = this.reads.get(requestId);
    if (!read) throw new SafetyViolation("read", this.clock.now(), `node ${node.id} served unknown read "${requestId}"`);
    if (read.node !== node.id) throw new SafetyViolation("read", this.clock.now(), `read ${requestId} issued on node ${read.node} served by node ${node.id}`);
    if (read.served) return;
    read.served = true;
    this.readsServed++;
    const list = this.readsServedBy.get(node.id) ?? [];
    list.push({ requestTick: read.startTick, servedTick: this.clock.now() });
    this.readsServedBy.set(node.id, list);
    const sm = node.stateMachine;
    for (let i = 0; i < read.ackedCountAtStart; i++) {
      const command = this.acked[i]!;
      if (!sm.has(command)) {
        const at = this.ackedAt.get(command)!;
        throw new SafetyViolation(
          "linearizable-read",
          this.clock.now(),
          `read ${requestId} (started tick ${read.startTick} on node ${node.id}, read index ${readState.index}, applied ${sm.appliedIndex}) misses "${command}" acknowledged at tick ${at.tick} (index ${at.index})`,
        );
      }
    }
  }

  wasRefused(requestId: string): boolean {
    return this.refusedReads.has(requestId);
  }

  wasServed(requestId: string): boolean {
    return this.reads.get(requestId)?.served ?? false;
  }
}
