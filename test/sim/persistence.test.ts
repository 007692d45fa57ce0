/**
 * Persistence scenarios: a restart keeps only what was durable (Figure 2:
 * "Persistent state on all servers"), and the cluster stays safe and live through
 * restarts of one, several and all nodes, through Figure 8's repeated leader crashes
 * on a hostile network, and through churn under client load.
 */
import { describe, expect } from "vitest";
import { commit, makeCluster, others, waitApplied, waitForLeader } from "./helpers.js";
import { HOSTILE_NETWORK, UNRELIABLE_NETWORK } from "./network.js";
import { converge, NO_FAULTS, runSimulation } from "./simulation.js";
import { seededTest } from "./seeds.js";

describe("persistence", () => {
  seededTest("restart of one, several and all nodes keeps every committed command", [201, 202, 203], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 5, persistDelayTicksMax: 2 });
    const leader = waitForLeader(cluster);
    const committed: string[] = [];
    const commitOne = (tag: string) => {
      committed.push(tag);
      return commit(cluster, tag, 800);
    };
    commitOne("a");
    // One follower.
    const follower = others(cluster, leader.id)[0]!;
    cluster.crash(follower);
    commitOne("b");
    cluster.restart(follower);
    // The leader.
    cluster.crash(leader.id);
    commitOne("c");
    cluster.restart(leader.id);
    // Several (a minority, then a majority).
    cluster.crash(1);
    cluster.crash(2);
    commitOne("d");
    cluster.crash(3);
    cluster.run(50);
    for (const id of [1, 2, 3]) cluster.restart(id);
    commitOne("e");
    // All at once.
    for (const id of cluster.ids) cluster.crash(id);
    for (const id of cluster.ids) cluster.restart(id);
    // Straight after restart the state machines hold nothing beyond their snapshots (none here).
    expect(cluster.nodes.every((n) => n.stateMachine.appliedIndex === 0)).toBe(true);
    const last = commitOne("f");
    waitApplied(cluster, last.index, cluster.ids, 800);
    for (const node of cluster.nodes) for (const c of committed) expect(node.stateMachine.has(c), `node ${node.id} lost ${c}`).toBe(true);
  });

  seededTest("a crash inside persistence, at every crash point, loses nothing acknowledged", [211, 212], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3, persistDelayTicksMax: 1 });
    waitForLeader(cluster);
    const points = ["before-persist", "after-chunks", "after-snapshot", "after-entries", "after-hard-state", "after-apply"] as const;
    let round = 0;
    for (const point of points) {
      for (const node of cluster.nodes) {
        node.crashAtNextPersist = point;
        cluster.workload.enabled = true;
        cluster.run(15);
        cluster.workload.enabled = false;
        if (!node.alive) cluster.restart(node.id);
        for (const other of cluster.nodes) other.crashAtNextPersist = undefined;
        commit(cluster, `round-${round++}`, 800);
      }
    }
    expect(cluster.nodes.reduce((sum, n) => sum + n.crashes, 0)).toBeGreaterThanOrEqual(points.length * 2);
    converge(cluster, 500, 1500);
  });

  seededTest("Figure 8 on a hostile network: repeated leader crashes with long reordering", [221, 222, 223, 224, 225, 226, 227, 228], (seed, testName) => {
    const report = runSimulation({
      seed,
      testName,
      nodeCount: 5,
      persistDelayTicksMax: 2,
      workload: { proposeProbability: 0.5, inflightMax: 3, readProbability: 0 },
      faults: {
        ...NO_FAULTS,
        network: HOSTILE_NETWORK,
        leaderCrashProbability: 0.02,
        crashProbability: 0.005,
        downMax: 2,
        restartProbability: 0.05,
      },
      safetyTicks: 3000,
      electionTicksMax: 600,
      convergenceTicksMax: 2000,
    });
    expect(report.crashes).toBeGreaterThan(10);
    expect(report.terms).toBeGreaterThan(5);
    expect(report.acked).toBeGreaterThan(20);
  });

  seededTest("churn: random crashes, restarts and partitions under client load", [231, 232, 233, 234, 235, 236, 237, 238], (seed, testName) => {
    const report = runSimulation({
      seed,
      testName,
      nodeCount: 5,
      persistDelayTicksMax: 3,
      workload: { proposeProbability: 0.6, inflightMax: 5, readProbability: 0.05 },
      faults: {
        ...NO_FAULTS,
        network: UNRELIABLE_NETWORK,
        crashProbability: 0.02,
        leaderCrashProbability: 0.005,
        downMax: 2,
        restartProbability: 0.05,
        crashDuringPersistProbability: 0.002,
        partitionProbability: 0.01,
        healProbability: 0.02,
        isolateProbability: 0.005,
      },
      safetyTicks: 3000,
      electionTicksMax: 600,
      convergenceTicksMax: 2000,
    });
    expect(report.crashes).toBeGreaterThan(20);
    expect(report.acked).toBeGreaterThan(30);
  });
});
