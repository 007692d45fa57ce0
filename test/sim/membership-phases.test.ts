/**
 * A crash in every phase of a joint change (Raft thesis 4.3), on the leader and on a
 * follower, with message loss and a partition around it: {1,2,3} with learners 4 and 5
 * becomes {x,4,5}, two of the three voters (a majority of C_old) leaving through
 * C_old,new. The phases, as the logs show them:
 *   - not-durable: the leader just accepted the change; no disk holds the joint entry;
 *   - on-a-minority: the first disk holds it, nobody has committed it;
 *   - committed-not-left: the leader just committed it; the entry that leaves it (C_new)
 *     is in the leader's memory only;
 *   - leave-appended: a disk holds C_new, nobody has committed it;
 *   - leave-committed: a node just committed C_new.
 * The victim crashes at the first moment the phase holds (checked after every message
 * and every Ready), comes back later, and the change must complete: asked again by the
 * operator when it was lost, finished by a new leader when it inherited it half done.
 * Every checker runs throughout; the liveness phase must converge on C_new.
 */
import { describe, expect } from "vitest";
import type { ClusterConfig } from "../../src/proto/schema.js";
import { Rng } from "../../src/rng.js";
import type { Cluster } from "./cluster.js";
import { logTermOf } from "./core-internals.js";
import { addLearnersCaughtUp, makeCluster, scenarioMembership, waitFor, waitForLeader } from "./helpers.js";
import { RELIABLE_NETWORK } from "./network.js";
import type { NodeHost } from "./node-host.js";
import { converge } from "./simulation.js";
import { seededTest } from "./seeds.js";

const PHASES = ["not-durable", "on-a-minority", "committed-not-left", "leave-appended", "leave-committed"] as const;
type Phase = (typeof PHASES)[number];
type Victim = "leader" | "follower";

interface EntryId {
  index: number;
  term: number;
}

function isJoint(config: ClusterConfig): boolean {
  return config.votersOutgoing.length > 0;
}

function holds(node: NodeHost, entry: EntryId): boolean {
  const storage = node.disk.storage;
  return entry.index >= storage.firstIndex() && entry.index <= storage.lastIndex() && storage.term(entry.index) === entry.term;
}

/** Where the joint change stands, from the disks and the nodes' commit indexes. */
class JointChangeTracker {
  /** The newest joint entry any disk held, and the entry leaving it. */
  joint: EntryId | undefined;
  leave: EntryId | undefined;

  constructor(private readonly cluster: Cluster) {}

  phase(): Phase | undefined {
    this.update();
    if (this.leave !== undefined) return this.committed(this.leave) ? "leave-committed" : "leave-appended";
    if (this.joint !== undefined) return this.committed(this.joint) ? "committed-not-left" : "on-a-minority";
    return undefined;
  }

  private update(): void {
    for (const node of this.cluster.nodes) {
      const storage = node.disk.storage;
      for (const { index, config } of node.disk.configEntries()) {
        const entry = { index, term: storage.term(index) };
        if (isJoint(config)) {
          if (this.joint === undefined || entry.term > this.joint.term || (entry.term === this.joint.term && index > this.joint.index)) {
            this.joint = entry;
            this.leave = undefined;
          }
        } else if (this.joint !== undefined && this.leave === undefined && index > this.joint.index && holds(node, this.joint)) {
          this.leave = entry;
        }
      }
    }
  }

  /** Some live node has committed `entry` (in memory: the leader knows first). */
  private committed(entry: EntryId): boolean {
    return this.cluster.nodes.some((n) => n.alive && n.raft().commitIndex() >= entry.index && logTermOf(n.raft(), entry.index) === entry.term);
  }
}

/** Three voters under load with learners 4 and 5 caught up, ready for the joint change. */
function clusterWithLearners(seed: number, testName: string, rng: Rng): { cluster: Cluster; membership: ReturnType<typeof scenarioMembership> } {
  const cluster = makeCluster({
    seed,
    testName,
    nodeCount: 3,
    core: { electionTimeoutTicks: rng.between(8, 14), heartbeatIntervalTicks: 1, preVote: rng.chance(0.7), checkQuorum: rng.chance(0.7) },
    persistDelayTicksMax: rng.between(0, 3),
    workload: { proposeProbability: 0.3, inflightMax: 3, readProbability: 0.05 },
  });
  const membership = scenarioMembership(cluster, rng.derive("membership"), { secondChangeProbability: 0.3, retryTicksMax: 10 });
  cluster.workload.enabled = true;
  waitForLeader(cluster);
  addLearnersCaughtUp(cluster, membership, [4, 5]);
  return { cluster, membership };
}

function jointChangeWithCrash(seed: number, testName: string, phase: Phase, victim: Victim): void {
  const rng = new Rng(seed).derive("scenario");
  const { cluster, membership } = clusterWithLearners(seed, testName, rng);

  const leaving = rng.shuffled([1, 2, 3]).slice(0, 2);
  const target = [...[1, 2, 3].filter((id) => !leaving.includes(id)), 4, 5].sort((a, b) => a - b);
  const tracker = new JointChangeTracker(cluster);
  let firstProposal: EntryId | undefined;
  let crashed: { id: number; tick: number; restartTick: number; wasLeader: boolean } | undefined;
  let partitionEndTick = -1;

  const crash = (leader: NodeHost | undefined, config: ClusterConfig): void => {
    const followers = [...config.voters, ...config.votersOutgoing].filter((id) => id !== leader?.id && cluster.node(id).alive);
    const id = victim === "leader" ? leader?.id : followers.length > 0 ? rng.pick(followers) : undefined;
    if (id === undefined) return;
    cluster.crash(id);
    crashed = { id, tick: cluster.now(), restartTick: cluster.now() + rng.between(5, 150), wasLeader: id === leader?.id };
    // Half of the runs also cut one node off for a while around the crash.
    if (rng.chance(0.5)) {
      cluster.network.isolate(rng.pick(cluster.ids));
      partitionEndTick = cluster.now() + rng.between(20, 120);
    }
  };
  membership.onProposed = (leader, position) => {
    firstProposal ??= position;
    if (phase === "not-durable" && crashed === undefined) crash(leader, leader.raft().clusterConfig().config);
  };
  cluster.stepWatchers.push(() => {
    if (crashed !== undefined || phase === "not-durable" || tracker.phase() !== phase) return;
    const leader = cluster.leaders()[0];
    crash(leader, leader?.raft().clusterConfig().config ?? cluster.node(target[2]!).disk.latestConfig().config);
  });
  cluster.tickHooks.push(() => {
    if (crashed && !cluster.node(crashed.id).alive && !cluster.node(crashed.id).retired && cluster.now() >= crashed.restartTick) cluster.restart(crashed.id);
    if (cluster.now() === partitionEndTick) cluster.network.heal();
  });

  cluster.network.setFaults({ ...RELIABLE_NETWORK, dropRequestProbability: 0.05, dropReplyProbability: 0.05, duplicateProbability: 0.02, delayTicksMax: 3 });
  membership.begin("joint", [{ promote: [4, 5], remove: leaving }]);
  waitFor(cluster, () => !membership.busy() && crashed !== undefined && cluster.now() > partitionEndTick, 4000, `the joint change to ${target.join(",")} completed with a crash in phase ${phase}`);

  cluster.workload.enabled = false;
  cluster.network.setFaults(RELIABLE_NETWORK);
  cluster.network.heal();
  for (const id of cluster.downIds()) cluster.restart(id);
  converge(cluster, 600, 3000);
  const leader = cluster.stableLeader()!;
  const config = leader.raft().clusterConfig().config;
  expect(config.voters, "the voters after the change").toEqual(target);
  expect(config.votersOutgoing, "the joint configuration was left").toEqual([]);
  for (const id of leaving) expect(config.removed, `node ${id} removed`).toContain(id);
  if (phase === "not-durable" && victim === "leader") {
    // The first joint entry died with the leader's memory: the change went through a later proposal.
    expect(cluster.nodes.some((n) => holds(n, firstProposal!)), "the lost joint entry is on no disk").toBe(false);
  }
  if (phase === "committed-not-left" && crashed!.wasLeader) {
    // A new leader inherited the committed joint configuration and left it: C_new is of a later term.
    const joint = tracker.joint!;
    const leave = leader.disk.configEntries().find((c) => c.index > joint.index)!;
    expect(holds(leader, joint), "the committed joint entry is in the new leader's log").toBe(true);
    expect(leader.disk.storage.term(leave.index), "the term of the entry leaving the joint configuration").toBeGreaterThan(joint.term);
  }
}

describe("a crash in every phase of a joint change", () => {
  for (const phase of PHASES) {
    for (const victim of ["leader", "follower"] as const) {
      const base = 7000 + PHASES.indexOf(phase) * 20 + (victim === "leader" ? 0 : 10);
      seededTest(`joint change {1,2,3} -> {x,4,5}: the ${victim} crashes, phase ${phase}`, [base + 1, base + 2], (seed, testName) => jointChangeWithCrash(seed, testName, phase, victim));
    }
  }
});
