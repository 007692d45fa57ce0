/**
 * Election scenarios (Raft paper, section 5.2): a leader is elected at start, a new
 * one after the leader is lost, none in a minority, and the right thing happens
 * across many random partitions of 7 nodes.
 */
import { describe, expect } from "vitest";
import { makeCluster, others, waitForLeader } from "./helpers.js";
import { randomPartition } from "./simulation.js";
import { seededTest } from "./seeds.js";

describe("election", () => {
  seededTest("initial election: one leader, all agree, and it stays without faults", [1, 2, 3, 4], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3 });
    const leader = waitForLeader(cluster, 100);
    const term = leader.raft().softState().term;
    expect(term).toBeGreaterThanOrEqual(1);
    cluster.run(300);
    for (const node of cluster.nodes) {
      const soft = node.raft().softState();
      expect(soft.term, `node ${node.id} term`).toBe(term);
      expect(soft.leader, `node ${node.id} leader`).toBe(leader.id);
    }
    expect(cluster.leaders().map((n) => n.id)).toEqual([leader.id]);
  });

  seededTest("re-election after leader loss, and the old leader rejoins as follower", [11, 12, 13, 14], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3 });
    const first = waitForLeader(cluster, 100);
    const firstTerm = first.raft().softState().term;
    cluster.network.isolate(first.id);
    const second = waitForLeader(cluster, 200);
    expect(second.id).not.toBe(first.id);
    expect(second.raft().softState().term).toBeGreaterThan(firstTerm);
    // The old leader rejoins: there is still exactly one leader, the cluster agrees on it.
    cluster.network.heal();
    cluster.run(100);
    const leader = waitForLeader(cluster, 200);
    const term = leader.raft().softState().term;
    expect(first.raft().softState().role).not.toBe("leader");
    expect(first.raft().softState().term).toBe(term);
    // Losing the second leader too: the remaining two elect a third term's leader.
    cluster.crash(leader.id);
    const third = waitForLeader(cluster, 200);
    expect(third.id).not.toBe(leader.id);
    expect(third.raft().softState().term).toBeGreaterThan(term);
  });

  seededTest("no leader in a minority, and PreVote keeps the minority's terms still", [21, 22, 23], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 5 });
    const leader = waitForLeader(cluster, 150);
    const term = leader.raft().softState().term;
    // Take three nodes (the leader among them) away: two remain.
    const remaining = others(cluster, leader.id).slice(0, 2);
    for (const id of cluster.ids) if (!remaining.includes(id)) cluster.crash(id);
    cluster.run(500);
    for (const id of remaining) {
      const soft = cluster.soft(id)!;
      expect(soft.role, `node ${id}`).not.toBe("leader");
      expect(soft.term, `node ${id} term (PreVote: no term bumps without a quorum)`).toBe(term);
    }
    expect(cluster.stableLeader()).toBeUndefined();
    // A third node comes back: a majority again, a leader again.
    const back = cluster.ids.find((id) => !remaining.includes(id) && id !== leader.id)!;
    cluster.restart(back);
    const next = waitForLeader(cluster, 300);
    expect([...remaining, back]).toContain(next.id);
  });

  seededTest("many random partitions of 7 nodes: a leader in every majority group, none elsewhere", [31, 32, 33], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 7 });
    const rng = cluster.rng.derive("partitions");
    waitForLeader(cluster, 200);
    let majorityRounds = 0;
    for (let round = 0; round < 25; round++) {
      const groups = randomPartition(rng, cluster.ids);
      cluster.network.partition(groups);
      cluster.run(150);
      const majority = groups.find((g) => g.length * 2 > cluster.ids.length);
      // Nodes that believe they lead in the current highest term all sit in one group.
      if (majority) {
        majorityRounds++;
        const leader = cluster.stableLeader();
        expect(leader, `round ${round}: majority group ${majority.join(",")} without a leader`).toBeDefined();
        expect(majority).toContain(leader!.id);
      } else {
        expect(cluster.stableLeader(), `round ${round}: a leader without a majority (${JSON.stringify(groups)})`).toBeUndefined();
      }
      // In every minority group nobody stays leader (CheckQuorum) once an election timeout passed.
      for (const group of groups) {
        if (group === majority) continue;
        for (const id of group) expect(cluster.soft(id)!.role, `round ${round}: node ${id} in minority ${group.join(",")}`).not.toBe("leader");
      }
    }
    expect(majorityRounds).toBeGreaterThan(5);
    cluster.network.heal();
    waitForLeader(cluster, 300);
  });
});
