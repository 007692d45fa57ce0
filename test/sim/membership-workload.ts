/**
 * The membership workload: an operator changing the cluster's members while clients
 * write and faults strike. Operations are drawn from the seed; each one is a short list
 * of steps, and each step is asked of whoever leads, as a ConfigChange computed from
 * that leader's configuration in force, so a request is never invalid:
 *   - add-learner: a new node joins as a learner;
 *   - promote: a learner (a new node if there is none) becomes a voter;
 *   - remove-voter, remove-learner: one member leaves;
 *   - replace: a new node is added as a learner, promoted, then an old voter removed
 *     (three single-server changes, thesis 4.2);
 *   - joint: several voters at once through C_old,new (thesis 4.3): with 3 voters two of
 *     them are swapped for two new nodes ({1,2,3} -> {3,4,5}: a majority of C_old is
 *     removed), with 4 or 5 voters two are swapped or removed;
 *   - remove-leader: the node leading when the step is asked removes itself (thesis
 *     4.2.2); with only 3 voters a new one is added and promoted first.
 * A step is made true, not replayed: it names who must be a member, a voter or gone, and
 * the request is what the leader's configuration still lacks. So a change lost with a
 * deposed leader (its entry overwritten, section 5.3) is simply asked again, and a step
 * is done once the leader's configuration reflects it, committed and not joint.
 *
 * Refusals are expected and retried later: NOT_LEADER (a deposed leader),
 * PROPOSAL_DROPPED (a leadership transfer), LEADER_NOT_READY (a new leader's first entry
 * not committed yet), CONFIG_CHANGE_IN_PROGRESS, LEARNER_BEHIND. Any other error fails
 * the run. Now and then a second change is asked while one is pending; it must be
 * refused (thesis 4.1: one change at a time), or the run fails.
 */
import { RaftErrorCode, RaftwalError } from "../../src/raft/errors.js";
import type { ClusterConfig } from "../../src/proto/schema.js";
import type { ConfigChange } from "../../src/raft/config-change.js";
import type { Rng } from "../../src/rng.js";
import { SafetyViolation } from "./checkers.js";
import { simMember, type Cluster } from "./cluster.js";
import type { NodeHost } from "./node-host.js";

export const MEMBERSHIP_OPERATIONS = ["add-learner", "promote", "remove-voter", "remove-learner", "replace", "joint", "remove-leader"] as const;
export type MembershipOperation = (typeof MEMBERSHIP_OPERATIONS)[number];

export interface MembershipWorkloadOptions {
  /** The operations to draw from (uniformly among those possible in the configuration). */
  operations: readonly MembershipOperation[];
  /** Per tick, while no operation is under way: probability of starting one. */
  startProbability: number;
  /** Ticks between two requests of one operation (drawn from [1, this]). */
  retryTicksMax: number;
  /** Per request made while a change is pending: probability of asking another one anyway (it must be refused). */
  secondChangeProbability: number;
  /** The voters stay within [votersMin, votersMax]; learners at most learnersMax. */
  votersMin: number;
  votersMax: number;
  learnersMax: number;
}

export const DEFAULT_MEMBERSHIP_WORKLOAD: MembershipWorkloadOptions = {
  operations: MEMBERSHIP_OPERATIONS,
  startProbability: 0.02,
  retryTicksMax: 15,
  secondChangeProbability: 0.2,
  votersMin: 3,
  votersMax: 5,
  learnersMax: 2,
};

/** One step: who must be a member (as a learner at least), who a voter, who gone; `removeLeader` binds to the leader when first asked. */
export interface MembershipStep {
  add?: number[];
  promote?: number[];
  remove?: number[];
  removeLeader?: boolean;
}

interface Operation {
  kind: MembershipOperation;
  steps: MembershipStep[];
  stepAt: number;
  startTick: number;
  votersBefore: number[] | undefined;
  leaderRemoved: number | undefined;
}

export interface CompletedOperation {
  kind: MembershipOperation;
  startTick: number;
  endTick: number;
  /** The voters when its first step was asked, and once it completed. */
  votersBefore: number[];
  votersAfter: number[];
  /** The node that led when the removal of the leader was asked (remove-leader). */
  leaderRemoved: number | undefined;
}

/** Codes of refusals a correct core gives to a valid request, to be retried later. */
const RETRIED: ReadonlySet<string> = new Set([
  RaftErrorCode.NOT_LEADER,
  RaftErrorCode.PROPOSAL_DROPPED,
  RaftErrorCode.LEADER_NOT_READY,
  RaftErrorCode.CONFIG_CHANGE_IN_PROGRESS,
  RaftErrorCode.LEARNER_BEHIND,
]);

/** Codes a leader may give a change asked while another is pending. */
const PENDING_REFUSALS: ReadonlySet<string> = new Set([RaftErrorCode.NOT_LEADER, RaftErrorCode.PROPOSAL_DROPPED, RaftErrorCode.LEADER_NOT_READY, RaftErrorCode.CONFIG_CHANGE_IN_PROGRESS]);

function isMemberOf(config: ClusterConfig, id: number): boolean {
  return config.voters.includes(id) || config.votersOutgoing.includes(id) || config.learners.includes(id);
}

export class MembershipWorkload {
  enabled = false;
  /** No new operation starts (the one under way goes on): for the end of a run. */
  startsAllowed = true;
  readonly completed: CompletedOperation[] = [];
  readonly refusals = new Map<string, number>();
  changesProposed = 0;
  secondChangesRefused = 0;
  /** Called when a leader accepted a change this workload asked for (before anything of it is sent or durable). */
  onProposed: ((leader: NodeHost, position: { index: number; term: number }, change: ConfigChange) => void) | undefined;
  private options: MembershipWorkloadOptions;
  private current: Operation | undefined;
  private nextRequestTick = 0;
  private idNext: number;

  constructor(
    private readonly cluster: Cluster,
    private readonly rng: Rng,
    options: Partial<MembershipWorkloadOptions> = {},
  ) {
    this.options = { ...DEFAULT_MEMBERSHIP_WORKLOAD, ...options };
    this.idNext = Math.max(...cluster.ids) + 1;
  }

  /** Whether an operation is under way. */
  busy(): boolean {
    return this.current !== undefined;
  }

  /** One tick: start an operation now and then, ask the leader for the next step when due. */
  step(): void {
    if (!this.enabled) return;
    const leader = this.cluster.leaders()[0];
    if (leader === undefined) return;
    if (this.current === undefined) {
      // Planned from a leader a majority follows: a stale leader, cut off while a newer term
      // committed changes without it, still shows the configuration before them (seed
      // 34182114 planned "remove 6" from one after 6 was gone, and ended with 4 voters).
      const stable = this.cluster.stableLeader();
      if (stable && this.startsAllowed && this.rng.chance(this.options.startProbability)) this.start(stable);
      return;
    }
    if (this.cluster.now() < this.nextRequestTick) return;
    this.nextRequestTick = this.cluster.now() + this.rng.between(1, this.options.retryTicksMax);
    this.cluster.guard(() => this.request(leader, this.current!));
  }

  /** Starts the given operation now (a scenario's own); the workload must be idle. */
  begin(kind: MembershipOperation, steps: MembershipStep[]): void {
    if (this.current !== undefined) throw new Error(`membership operation ${this.current.kind} still under way`);
    this.current = { kind, steps: steps.map((step) => ({ ...step })), stepAt: 0, startTick: this.cluster.now(), votersBefore: undefined, leaderRemoved: undefined };
    this.nextRequestTick = this.cluster.now();
  }

  /** Starts an operation drawn among those the leader's configuration allows (none when it is pending). */
  private start(leader: NodeHost): void {
    const core = leader.raft();
    const { index, config } = core.clusterConfig();
    if (index > core.commitIndex() || config.votersOutgoing.length > 0) return;
    const possible = this.options.operations.filter((kind) => this.possible(kind, config));
    if (possible.length === 0) return;
    const kind = this.rng.pick(possible);
    this.current = { kind, steps: this.plan(kind, config), stepAt: 0, startTick: this.cluster.now(), votersBefore: [...config.voters], leaderRemoved: undefined };
    this.nextRequestTick = this.cluster.now();
  }

  private possible(kind: MembershipOperation, config: ClusterConfig): boolean {
    const voters = config.voters.length;
    const learners = config.learners.length;
    const { votersMin, votersMax, learnersMax } = this.options;
    switch (kind) {
      case "add-learner":
        return learners < learnersMax;
      case "promote":
        return voters < votersMax && (learners > 0 || learners < learnersMax);
      case "remove-voter":
        return voters > votersMin;
      case "remove-learner":
        return learners > 0;
      case "replace":
        return voters < votersMax;
      case "remove-leader":
        return voters > votersMin || voters < votersMax;
      case "joint":
        return voters >= 2;
    }
  }

  private plan(kind: MembershipOperation, config: ClusterConfig): MembershipStep[] {
    const voters = this.rng.shuffled(config.voters);
    switch (kind) {
      case "add-learner":
        return [{ add: [this.newId()] }];
      case "promote":
        return [{ promote: [config.learners.length > 0 ? this.rng.pick(config.learners) : this.newId()] }];
      case "remove-voter":
        return [{ remove: [voters[0]!] }];
      case "remove-learner":
        return [{ remove: [this.rng.pick(config.learners)] }];
      case "replace": {
        const fresh = this.newId();
        return [{ add: [fresh] }, { promote: [fresh] }, { remove: [voters[0]!] }];
      }
      case "joint":
        return this.planJoint(voters);
      case "remove-leader": {
        if (config.voters.length > this.options.votersMin) return [{ removeLeader: true }];
        const fresh = this.newId();
        return [{ add: [fresh] }, { promote: [fresh] }, { removeLeader: true }];
      }
    }
  }

  /** Two voters swapped for two new nodes (a majority of three removed), or two removed when there are more than the minimum. */
  private planJoint(shuffledVoters: number[]): MembershipStep[] {
    const leaving = shuffledVoters.slice(0, 2);
    if (shuffledVoters.length - 2 >= this.options.votersMin && this.rng.chance(0.5)) return [{ remove: leaving }];
    const fresh = [this.newId(), this.newId()];
    return [{ add: fresh }, { promote: fresh, remove: leaving }];
  }

  /** An id never used in this cluster (ids are never reused: src/raft/MEMBERSHIP.md). */
  newId(): number {
    return this.idNext++;
  }

  /** Asks `leader` for what the current step still lacks, or moves on when its configuration shows the step done. */
  private request(leader: NodeHost, operation: Operation): void {
    const core = leader.raft();
    const { index, config } = core.clusterConfig();
    const pending = index > core.commitIndex() || config.votersOutgoing.length > 0;
    const step = operation.steps[operation.stepAt]!;
    if (step.removeLeader) {
      step.remove = [leader.id];
      operation.leaderRemoved = leader.id;
      delete step.removeLeader;
    }
    operation.votersBefore ??= [...config.voters];
    const change = this.changeFor(step, config);
    if (pending) {
      if (this.rng.chance(this.options.secondChangeProbability)) this.askSecondChange(leader, config);
      return;
    }
    if (change === undefined) return this.stepDone(operation, config);
    for (const member of change.addLearners ?? []) if (!this.cluster.has(member.id)) this.cluster.addNode(member.id, leader.id);
    this.propose(leader, change);
  }

  /** What `config` still lacks for `step`: adds first (a node is promoted once it is a learner), then promotions and removals. */
  private changeFor(step: MembershipStep, config: ClusterConfig): ConfigChange | undefined {
    const wanted = [...(step.add ?? []), ...(step.promote ?? [])];
    const adds = wanted.filter((id) => !isMemberOf(config, id) && !config.removed.includes(id));
    if (adds.length > 0) return { addLearners: adds.map(simMember) };
    const promote = (step.promote ?? []).filter((id) => config.learners.includes(id));
    const remove = (step.remove ?? []).filter((id) => isMemberOf(config, id));
    if (promote.length + remove.length === 0) return undefined;
    return { promote, remove };
  }

  private stepDone(operation: Operation, config: ClusterConfig): void {
    operation.stepAt += 1;
    if (operation.stepAt < operation.steps.length) return;
    this.completed.push({
      kind: operation.kind,
      startTick: operation.startTick,
      endTick: this.cluster.now(),
      votersBefore: operation.votersBefore ?? [...config.voters],
      votersAfter: [...config.voters],
      leaderRemoved: operation.leaderRemoved,
    });
    this.current = undefined;
  }

  private propose(leader: NodeHost, change: ConfigChange): void {
    try {
      const position = leader.raft().proposeConfigChange(change);
      this.changesProposed += 1;
      this.onProposed?.(leader, position, change);
    } catch (error) {
      if (!(error instanceof RaftwalError) || !RETRIED.has(error.code)) throw error;
      this.refusals.set(error.code, (this.refusals.get(error.code) ?? 0) + 1);
    }
  }

  /** A change asked while another is pending: a correct leader refuses it (thesis 4.1). */
  private askSecondChange(leader: NodeHost, config: ClusterConfig): void {
    const change: ConfigChange = config.learners.length > 0 ? { remove: [config.learners[0]!] } : { remove: [config.voters[0]!] };
    try {
      const position = leader.raft().proposeConfigChange(change);
      throw new SafetyViolation("one-change-at-a-time", this.cluster.now(), `leader ${leader.id} accepted a second change at index ${position.index} while one was pending (${JSON.stringify(change)})`);
    } catch (error) {
      if (!(error instanceof RaftwalError) || !PENDING_REFUSALS.has(error.code)) throw error;
      this.secondChangesRefused += 1;
    }
  }
}
