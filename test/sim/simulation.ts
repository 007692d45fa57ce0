/**
 * A randomized run: a safety phase with faults drawn from the seed (crashes,
 * restarts, crashes inside persistence, partitions, isolation, an unreliable
 * network) under client load, and membership changes when asked for, then a liveness
 * phase with faults off in which the membership operation under way must complete and
 * the cluster must converge: a leader within a bounded number of ticks, every member
 * applying everything, and every acknowledged command in every member's state machine
 * and log. With storage damage in the fault mix (damage-faults.ts), every damaged node must
 * be whole again after faults stop, unless a quorum of voters lost state: then the run
 * reports how it ended (`RepairEnd`) instead of converging.
 */
import { announceRun, Cluster, type ClusterOptions } from "./cluster.js";
import { damageInjector, type DamagePlan, type DamageStats } from "./damage-faults.js";
import { RELIABLE_NETWORK, type NetworkFaults } from "./network.js";
import { MessageType } from "../../src/proto/schema.js";
import { describeClusterConfig } from "../../src/raft/cluster-config.js";
import { MembershipWorkload, type CompletedOperation, type MembershipWorkloadOptions } from "./membership-workload.js";
import type { CoreSettings, NodeHost } from "./node-host.js";
import type { Rng } from "../../src/rng.js";

export interface FaultPlan {
  network: NetworkFaults;
  /** Per tick: crash one random live node (never more than `downMax` down). */
  crashProbability: number;
  downMax: number;
  /** Per tick: crash the node that currently leads (Figure 8 style), within `downMax`. */
  leaderCrashProbability: number;
  /** Per tick: restart one random crashed node. */
  restartProbability: number;
  /** Per Ready: crash somewhere inside its persistence (counts toward `downMax`). */
  crashDuringPersistProbability: number;
  /** Per tick: split the nodes into random groups / heal / isolate one node. */
  partitionProbability: number;
  healProbability: number;
  isolateProbability: number;
  /** Per tick: the leader starts a leadership transfer to a random node. */
  transferProbability: number;
  /**
   * Probability that the sender's host reports a message lost to a partition
   * (reportUnreachable, and reportSnapshot(peer, false) for a snapshot chunk).
   */
  reportUnreachableProbability: number;
  /** Per tick: one random live node takes an application snapshot now (irregular compaction). */
  snapshotNowProbability: number;
  /**
   * Slow disks during the safety phase: a Ready becomes durable up to this many ticks
   * after it is taken (0: the cluster's own persistDelayTicksMax). With fsync slower
   * than the election timeout no election can succeed, so the liveness phase goes
   * back to the cluster's setting.
   */
  slowDiskTicksMax: number;
  /** Storage damage at rest (damage-faults.ts); none when absent. */
  damage?: DamagePlan;
}

export const NO_FAULTS: FaultPlan = {
  network: RELIABLE_NETWORK,
  crashProbability: 0,
  downMax: 0,
  leaderCrashProbability: 0,
  restartProbability: 0,
  crashDuringPersistProbability: 0,
  partitionProbability: 0,
  healProbability: 0,
  isolateProbability: 0,
  transferProbability: 0,
  reportUnreachableProbability: 0,
  snapshotNowProbability: 0,
  slowDiskTicksMax: 0,
};

export interface SimulationOptions extends ClusterOptions {
  faults: FaultPlan;
  safetyTicks: number;
  /** After faults stop, a stable leader must appear within this many ticks. */
  electionTicksMax: number;
  /** ... and the cluster must converge within this many more. */
  convergenceTicksMax: number;
  /** Called on the cluster before the run starts (extra hooks, listeners). */
  setup?: (cluster: Cluster) => void;
  /** Membership changes during the safety phase (membership-workload.ts); none when absent. */
  membership?: Partial<MembershipWorkloadOptions>;
  /** After faults stop, the membership operation under way must complete within this many ticks. Default 3000. */
  membershipFinishTicksMax?: number;
}

export interface MembershipReport {
  completed: CompletedOperation[];
  changesProposed: number;
  secondChangesRefused: number;
  refusals: Record<string, number>;
  nodesCreated: number;
  nodesRetired: number;
  /** The voters and learners of the leader's configuration at the end. */
  finalVoters: number[];
  finalLearners: number[];
}

export interface SimulationReport {
  seed: number;
  ticks: number;
  acked: number;
  proposals: number;
  crashes: number;
  terms: number;
  readsServed: number;
  snapshotsInstalled: number;
  electionTicks: number;
  convergenceTicks: number;
  membership?: MembershipReport;
  /** Damage struck (with a damage plan). */
  damage?: DamageStats;
  /** Set when a quorum of voters lost state: the run ended there, without converging (electionTicks and convergenceTicks are then -1). */
  ended?: RepairEnd;
}

/**
 * How a run ended when a quorum of voters lost state at once (several nodes damaged):
 *   - "unrepairable": nodes stopped with RAFT_ERR_UNREPAIRABLE (REPAIR.md, rule 6);
 *   - "quorum-lost": no leader could appear after faults stopped, a quorum of voters still
 *     repairing, and none of them stopped: each one's damage took every configuration
 *     entry, so it cannot judge (it waits for a leader, as a joining node does).
 */
export interface RepairEnd {
  reason: "unrepairable" | "quorum-lost";
  tick: number;
  /** The nodes that stopped, or (quorum-lost) those still repairing. */
  nodes: number[];
}

/**
 * Core settings drawn from the seed: timeouts, flow-control limits small enough to
 * matter (one message in flight, tiny messages and snapshot chunks), PreVote and
 * CheckQuorum on or off. Safety must hold for every combination.
 */
export function randomCoreSettings(rng: Rng): CoreSettings {
  const electionTimeoutTicks = rng.between(6, 20);
  return {
    electionTimeoutTicks,
    heartbeatIntervalTicks: rng.between(1, Math.max(1, Math.floor(electionTimeoutTicks / 4))),
    preVote: rng.chance(0.75),
    checkQuorum: rng.chance(0.75),
    messageBytesMax: rng.pick([16, 64, 1024, 1 << 20]),
    inflightMessagesMax: rng.pick([1, 2, 8, 256]),
    inflightBytesMax: rng.pick([64, 4096, 16 << 20]),
    // One chunk travels per round trip: tiny chunks of a large snapshot take thousands of ticks.
    snapshotChunkBytes: rng.pick([128, 1024, 1 << 20]),
    committedBytesPerReadyMax: rng.pick([8, 1024, 64 << 20]),
    uncommittedBytesMax: rng.pick([64, 1024, 256 << 20]),
  };
}

/** Random groups: 2 or 3 non-empty groups (the nodes shuffled). */
export function randomPartition(rng: Rng, ids: readonly number[]): number[][] {
  const shuffled = rng.shuffled(ids);
  const groupCount = Math.min(shuffled.length, rng.between(2, 3));
  const cuts = new Set<number>();
  while (cuts.size < groupCount - 1) cuts.add(rng.between(1, shuffled.length - 1));
  const sortedCuts = [...cuts].sort((a, b) => a - b);
  const groups: number[][] = [];
  let start = 0;
  for (const cut of [...sortedCuts, shuffled.length]) {
    groups.push(shuffled.slice(start, cut));
    start = cut;
  }
  return groups;
}

/** Installs the fault injector as a tick hook; returns a switch to turn it off, and the damage it struck. */
export function injectFaults(cluster: Cluster, plan: FaultPlan): { stop: () => void; damage?: DamageStats } {
  const rng = cluster.rng.derive("faults");
  const damage = plan.damage ? damageInjector(cluster, plan.damage, cluster.rng.derive("damage")) : undefined;
  let active = true;
  cluster.network.setFaults(plan.network);
  for (const node of cluster.nodes) node.configure({ crashDuringPersistProbability: plan.crashDuringPersistProbability });
  if (plan.slowDiskTicksMax > 0) for (const node of cluster.nodes) node.configure({ persistDelayTicksMax: plan.slowDiskTicksMax });
  cluster.tickHooks.push(() => {
    if (!active) return;
    const live = cluster.nodes.filter((n) => n.alive);
    const down = cluster.downIds();
    if (down.length > 0 && rng.chance(plan.restartProbability)) cluster.restart(rng.pick(down));
    else if (live.length > 0 && down.length < plan.downMax && rng.chance(plan.crashProbability)) cluster.crash(rng.pick(live).id);
    else if (down.length < plan.downMax && rng.chance(plan.leaderCrashProbability)) {
      const leader = cluster.leaders()[0];
      if (leader) cluster.crash(leader.id);
    }
    if (rng.chance(plan.partitionProbability)) cluster.network.partition(randomPartition(rng, cluster.ids));
    else if (rng.chance(plan.healProbability)) cluster.network.heal();
    else if (rng.chance(plan.isolateProbability)) cluster.network.isolate(rng.pick(cluster.ids));
    if (rng.chance(plan.transferProbability)) {
      const leader = cluster.leaders()[0];
      const voters = leader ? leader.raft().clusterConfig().config.voters.filter((id) => id !== leader.id) : [];
      if (leader && voters.length > 0) cluster.guard(() => leader.raft().transferLeadership(rng.pick(voters)));
    }
    if (rng.chance(plan.snapshotNowProbability)) {
      const idle = cluster.nodes.filter((n) => n.alive && n.idle());
      if (idle.length > 0) {
        const node = rng.pick(idle);
        cluster.guard(() => node.snapshotNow());
      }
    }
    damage?.step();
    // A crash inside persistence may take more nodes down than downMax; bring one back.
    if (cluster.downIds().length > plan.downMax) cluster.restart(rng.pick(cluster.downIds()));
  });
  cluster.network.onUnreachable = (message) => {
    if (!active || !rng.chance(plan.reportUnreachableProbability)) return;
    const sender = cluster.node(message.from);
    if (!sender.alive) return;
    sender.raft().reportUnreachable(message.to);
    if (message.type === MessageType.SNAPSHOT) sender.raft().reportSnapshot(message.to, false);
  };
  return {
    ...(damage ? { damage: damage.stats } : {}),
    stop: () => {
      active = false;
      cluster.network.heal();
      cluster.network.setFaults(RELIABLE_NETWORK);
      for (const node of cluster.nodes) node.configure({ crashDuringPersistProbability: 0, persistDelayTicksMax: cluster.options.persistDelayTicksMax ?? 0 });
      for (const id of cluster.downIds()) cluster.restart(id);
    },
  };
}

/** One line per node, for failure messages. */
export function describeCluster(cluster: Cluster): string {
  return cluster.nodes
    .map((n) => {
      if (!n.alive) return `  node ${n.id}: ${n.retired ? "retired (removed)" : n.unrepairable !== undefined ? "stopped: unrepairable" : "down"}${n.disk.repairMark() ? ` repairing ${JSON.stringify(n.disk.repairMark())}` : ""}`;
      const soft = n.raft().softState();
      const hard = n.raft().hardState();
      const storage = n.disk.storage;
      const config = n.raft().clusterConfig();
      const recovering = n.raft().recovering();
      return `  node ${n.id}: ${soft.role} term ${soft.term} leader ${soft.leader} commit ${hard.commit} applied ${n.stateMachine.appliedIndex} log [${storage.firstIndex()}..${storage.lastIndex()}] snapshot ${storage.snapshotMeta().index} config ${config.index}: ${describeClusterConfig(config.config)}${recovering ? ` recovering ${JSON.stringify(recovering)}` : ""}`;
    })
    .join("\n");
}

/** A member repairing storage damage: its core is recovering, or its disk still carries the repair mark. */
function repairing(node: NodeHost): boolean {
  return node.disk.repairMark() !== undefined || (node.alive && node.raft().recovering() !== undefined);
}

/** The run ended with nodes stopped as unrepairable, if any did. */
function unrepairableEnd(cluster: Cluster): RepairEnd | undefined {
  if (cluster.unrepairable.length === 0) return undefined;
  return { reason: "unrepairable", tick: cluster.unrepairable[0]!.tick, nodes: cluster.unrepairable.map((u) => u.node) };
}

/**
 * A quorum of the voters of the newest configuration any disk holds (every node that may
 * run, when no disk holds one any more) is repairing: no leader can appear.
 */
function quorumLostEnd(cluster: Cluster): RepairEnd | undefined {
  let newest = cluster.nodes[0]!.disk.latestConfig();
  for (const node of cluster.nodes) if (node.disk.latestConfig().index > newest.index) newest = node.disk.latestConfig();
  const everyone = cluster.nodes.filter((n) => !n.retired).map((n) => n.id);
  const voters = newest.config.voters.length > 0 ? newest.config.voters : everyone;
  const damaged = voters.filter((id) => cluster.has(id) && repairing(cluster.node(id)));
  if (damaged.length * 2 <= voters.length) return undefined;
  return { reason: "quorum-lost", tick: cluster.now(), nodes: damaged };
}

/**
 * Liveness: with faults off, a leader within `electionTicksMax`, then a probe
 * command acknowledged and every member of the leader's configuration applied up to it
 * within `convergenceTicksMax` (nodes removed from the cluster are not waited for), and
 * every member whole again (no repair under way). A repairing node is whole once its log
 * reaches what it may have held (REPAIR.md, rule 4), which may be beyond the leader's log:
 * probes keep coming (one every 100 ticks) while a member repairs. When a quorum of voters
 * lost state, the run may end instead (`ended`, RepairEnd): nodes stop as unrepairable, or
 * no leader appears while a quorum is still repairing.
 */
export function converge(cluster: Cluster, electionTicksMax: number, convergenceTicksMax: number): { electionTicks: number; convergenceTicks: number; ended?: RepairEnd } {
  let ended = unrepairableEnd(cluster);
  const within = (done: () => boolean, ticksMax: number, what: string): number => {
    for (let i = 0; i <= ticksMax; i++) {
      ended ??= unrepairableEnd(cluster);
      if (ended !== undefined || cluster.guard(done)) return i;
      cluster.tick();
    }
    ended ??= quorumLostEnd(cluster);
    if (ended !== undefined) return -1;
    return cluster.fail(`liveness: ${what} not reached within ${ticksMax} ticks\n${describeCluster(cluster)}`);
  };
  const electionTicks = within(() => cluster.stableLeader() !== undefined, electionTicksMax, "a stable leader after faults stopped");
  if (ended !== undefined) return { electionTicks: -1, convergenceTicks: -1, ended };
  // Probe: a fresh command through the leader, retried (as a new command) if it does not commit.
  const probeRetryTicks = 100;
  let probe: string | undefined;
  let probeTick = -Infinity;
  const converged = (): boolean => {
    const acked = probe !== undefined ? cluster.workload.ackedAt.get(probe) : undefined;
    const members = cluster.members().map((id) => cluster.node(id));
    if (!acked || (members.some(repairing) && cluster.now() - probeTick >= probeRetryTicks)) {
      const leader = cluster.stableLeader();
      if (leader && cluster.now() - probeTick >= probeRetryTicks) {
        probe = `probe-${cluster.now()}`;
        probeTick = cluster.now();
        cluster.workload.tryProposeCommand(leader, probe);
      }
      return false;
    }
    return members.length > 0 && members.every((node) => node.alive && node.stateMachine.appliedIndex >= acked.index && !repairing(node));
  };
  const convergenceTicks = within(converged, convergenceTicksMax, "convergence (a probe command applied on every member, every member whole)");
  if (ended !== undefined) return { electionTicks: -1, convergenceTicks: -1, ended };
  const members = cluster.members().map((id) => cluster.node(id));
  checkAckedEverywhere(cluster, members);
  checkLogsAgree(cluster, members);
  return { electionTicks, convergenceTicks };
}

/** Every acknowledged command is in every node's state machine, and in its log unless compacted. */
export function checkAckedEverywhere(cluster: Cluster, nodes: readonly NodeHost[] = cluster.nodes): void {
  cluster.guard(() => {
    for (const command of cluster.workload.acked) {
      const at = cluster.workload.ackedAt.get(command)!;
      for (const node of nodes) {
        if (!node.stateMachine.has(command)) cluster.fail(`acknowledged "${command}" (index ${at.index}) missing from node ${node.id}'s state machine`);
        const storage = node.disk.storage;
        if (at.index > storage.snapshotMeta().index) {
          if (at.index > storage.lastIndex()) cluster.fail(`acknowledged "${command}" (index ${at.index}) beyond node ${node.id}'s log`);
          const [entry] = storage.entries(at.index, at.index + 1, Number.MAX_SAFE_INTEGER);
          if (!entry || entry.term !== at.term || new TextDecoder().decode(entry.data) !== command) {
            cluster.fail(`node ${node.id}'s log lacks acknowledged "${command}" at index ${at.index}`);
          }
        }
      }
    }
  });
}

/** After convergence: every node's durable log has the same term at every index they all hold. */
export function checkLogsAgree(cluster: Cluster, nodes: readonly NodeHost[] = cluster.nodes): void {
  cluster.guard(() => {
    const storages = nodes.map((n) => n.disk.storage);
    const from = Math.max(...storages.map((s) => s.firstIndex()));
    const to = Math.min(...storages.map((s) => s.lastIndex()));
    for (let index = from; index <= to; index++) {
      const terms = storages.map((s) => s.term(index));
      if (terms.some((t) => t !== terms[0])) cluster.fail(`logs disagree at index ${index} after convergence: terms ${terms.join(",")}`);
    }
  });
}

export function runSimulation(options: SimulationOptions): SimulationReport {
  announceRun(options.seed, options.testName, ` core ${JSON.stringify(options.core ?? {})}`);
  const cluster = new Cluster(options);
  options.setup?.(cluster);
  const faults = injectFaults(cluster, options.faults);
  const membership = options.membership ? new MembershipWorkload(cluster, cluster.rng.derive("membership"), options.membership) : undefined;
  if (membership) cluster.tickHooks.push(() => membership.step());
  cluster.workload.enabled = true;
  if (membership) membership.enabled = true;
  cluster.run(options.safetyTicks);
  faults.stop();
  cluster.workload.enabled = false;
  if (membership) finishMembership(cluster, membership, options.membershipFinishTicksMax ?? 3000);
  const { electionTicks, convergenceTicks, ended } = converge(cluster, options.electionTicksMax, options.convergenceTicksMax);
  if (ended !== undefined) {
    // Ended without converging: the checkers keep watching the nodes left for an election bound more.
    cluster.run(options.electionTicksMax);
    if (ended.reason === "unrepairable") ended.nodes = cluster.unrepairable.map((u) => u.node);
  }
  return {
    ...(membership ? { membership: membershipReport(cluster, membership) } : {}),
    ...(faults.damage ? { damage: faults.damage } : {}),
    ...(ended ? { ended } : {}),
    seed: options.seed,
    ticks: cluster.now(),
    acked: cluster.workload.acked.length,
    proposals: cluster.workload.proposalsStarted,
    crashes: cluster.nodes.reduce((sum, n) => sum + n.crashes, 0),
    terms: cluster.leaderHistory.length,
    readsServed: cluster.workload.readsServed,
    snapshotsInstalled: cluster.nodes.reduce((sum, n) => sum + n.disk.snapshotsInstalled, 0),
    electionTicks,
    convergenceTicks,
  };
}


/** Liveness of membership: with faults off, the operation under way completes; no new one starts. */
function finishMembership(cluster: Cluster, membership: MembershipWorkload, ticksMax: number): void {
  membership.startsAllowed = false;
  for (let i = 0; membership.busy() && cluster.unrepairable.length === 0; i++) {
    if (i >= ticksMax) cluster.fail(`liveness: the membership operation under way did not complete within ${ticksMax} ticks after faults stopped\n${describeCluster(cluster)}`);
    cluster.tick();
  }
  membership.enabled = false;
}

function membershipReport(cluster: Cluster, membership: MembershipWorkload): MembershipReport {
  const config = cluster.stableLeader()?.raft().clusterConfig().config;
  return {
    completed: membership.completed,
    changesProposed: membership.changesProposed,
    secondChangesRefused: membership.secondChangesRefused,
    refusals: Object.fromEntries(membership.refusals),
    nodesCreated: cluster.nodes.length,
    nodesRetired: cluster.nodes.filter((n) => n.retired).length,
    finalVoters: config?.voters ?? [],
    finalLearners: config?.learners ?? [],
  };
}
