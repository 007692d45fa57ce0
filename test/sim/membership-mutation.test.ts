/**
 * The membership checkers must be able to fail. A core that switches from {1,2,3} to
 * {3,4,5} in one step, without the joint configuration (thesis 4.3: "it is not possible
 * to atomically switch all of the servers at once, so the cluster can potentially split
 * into two independent majorities"), is built here by hand: the leader's log gets the
 * unsafe configuration entry directly (core-internals.ts), as if its proposeConfigChange
 * had no joint path. A partition puts the leader with 4 and 5 on one side (a majority of
 * {3,4,5}) and the two other old voters on the other (a majority of {1,2,3}).
 *
 * With the config-transition checker off, the deep checkers must catch it: two leaders
 * of one term (election safety), a leader of a later term writing over an entry the other
 * side committed (leader completeness, usually first), or two different entries committed
 * at one index (state machine safety). With it on, it reports the unsafe step as soon as
 * a disk holds it.
 * The same partition around a correct joint change breaks nothing.
 */
import { describe, expect, it } from "vitest";
import { clusterConfigCodec, EntryType } from "../../src/proto/schema.js";
import { Rng } from "../../src/rng.js";
import { SimulationFailure, simMember, type Cluster } from "./cluster.js";
import { appendAsLeader } from "./core-internals.js";
import { addLearnersCaughtUp, makeCluster, scenarioMembership } from "./helpers.js";
import { RELIABLE_NETWORK } from "./network.js";
import { converge } from "./simulation.js";

const SEEDS = [9101, 9102, 9103, 9104];

/** {1,2,3} with learners 4 and 5 caught up, then the two sides of the partition set; returns the leader's id. */
function splitClusterWithLearners(cluster: Cluster, rng: Rng): number {
  const membership = scenarioMembership(cluster, rng.derive("membership"));
  const leader = addLearnersCaughtUp(cluster, membership, [4, 5]);
  membership.enabled = false;
  cluster.network.partition([[leader.id, 4, 5], [1, 2, 3].filter((id) => id !== leader.id)]);
  cluster.network.setFaults({ ...RELIABLE_NETWORK, dropRequestProbability: 0.05, dropReplyProbability: 0.05, delayTicksMax: 3 });
  return leader.id;
}

/** Runs the scenario; returns the failure's first line, or undefined when nothing was caught. */
function scenario(seed: number, testName: string, change: "unsafe-one-step" | "joint", checkTransitions: boolean): string | undefined {
  const rng = new Rng(seed).derive("scenario");
  const core = { electionTimeoutTicks: rng.between(8, 14), heartbeatIntervalTicks: 1, preVote: rng.chance(0.5), checkQuorum: rng.chance(0.5) };
  const cluster = makeCluster({ seed, testName, nodeCount: 3, core, persistDelayTicksMax: rng.between(0, 2), workload: { proposeProbability: 0.5, inflightMax: 4, readProbability: 0 } });
  cluster.checkers.membership.checkTransitions = checkTransitions;
  try {
    cluster.workload.enabled = true;
    const leader = splitClusterWithLearners(cluster, rng);
    const core = cluster.node(leader).raft();
    if (change === "unsafe-one-step") {
      const unsafe = { voters: [3, 4, 5], votersOutgoing: [], learners: [], members: [3, 4, 5].map(simMember), removed: [1, 2] };
      cluster.guard(() => appendAsLeader(core, { type: EntryType.CLUSTER_CONFIG, data: clusterConfigCodec.encode(unsafe) }));
    } else {
      cluster.guard(() => core.proposeConfigChange({ promote: [4, 5], remove: [1, 2] }));
    }
    cluster.run(400);
    cluster.workload.enabled = false;
    cluster.network.heal();
    cluster.network.setFaults(RELIABLE_NETWORK);
    converge(cluster, 600, 2000);
    return undefined;
  } catch (error) {
    if (!(error instanceof SimulationFailure)) throw error;
    return error.message.split("\n")[0]!;
  }
}

describe("the simulator catches a core that changes the voters in one step", () => {
  it("{1,2,3} -> {3,4,5} without joint consensus: two majorities, caught by election safety, leader completeness or state machine safety", () => {
    const caught = SEEDS.map((seed) => scenario(seed, "one-step switch of voters, deep checkers", "unsafe-one-step", false));
    console.log(caught.join("\n"));
    for (const failure of caught) {
      expect(failure, "every seed catches the unsafe core").toBeDefined();
      expect(failure).toMatch(/seed 91\d\d, tick \d+: safety violation \[(election-safety|leader-completeness|state-machine-safety)\]/);
    }
    expect(caught.filter((failure) => /\[(election-safety|state-machine-safety)\]/.test(failure!)).length, "seeds caught as two leaders of a term or two entries committed at an index").toBeGreaterThanOrEqual(1);
  });

  it("the config-transition checker reports the unsafe step as soon as a disk holds it", () => {
    const caught = SEEDS.map((seed) => scenario(seed, "one-step switch of voters, transition checker", "unsafe-one-step", true));
    console.log(caught.join("\n"));
    for (const failure of caught) expect(failure).toMatch(/safety violation \[config-transition\].*4 voters changed in one step/);
  });

  it("the same partition around a joint change breaks nothing", () => {
    for (const seed of SEEDS) expect(scenario(seed, "joint change under the same partition", "joint", true)).toBeUndefined();
  });
});
