/**
 * PreVote and CheckQuorum (Raft thesis, sections 9.6 and 6.2), ReadIndex (section
 * 6.4) and leadership transfer (section 3.10).
 */
import { describe, expect } from "vitest";
import { MessageType } from "../../src/proto/schema.js";
import { commit, makeCluster, others, waitApplied, waitFor, waitForLeader } from "./helpers.js";
import { UNRELIABLE_NETWORK } from "./network.js";
import { NO_FAULTS, runSimulation } from "./simulation.js";
import { seededTest } from "./seeds.js";

describe("PreVote and CheckQuorum", () => {
  seededTest("a partitioned follower rejoining neither bumps the term nor deposes the leader", [401, 402, 403], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 5 });
    const leader = waitForLeader(cluster);
    commit(cluster, "before");
    const term = leader.raft().softState().term;
    const follower = others(cluster, leader.id)[0]!;
    cluster.network.isolate(follower);
    cluster.run(400);
    expect(cluster.network.stats.sent(MessageType.PRE_VOTE), "the isolated follower tried to pre-campaign").toBeGreaterThan(0);
    expect(cluster.soft(follower)!.term, "PreVote: no term bump while isolated").toBe(term);
    cluster.network.heal();
    cluster.run(200);
    expect(leader.raft().softState()).toMatchObject({ role: "leader", term });
    expect(cluster.soft(follower)).toMatchObject({ role: "follower", term, leader: leader.id });
    const next = commit(cluster, "after");
    waitApplied(cluster, next.index);
  });

  seededTest("a leader in a minority steps down; the majority elects another", [411, 412, 413], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 5 });
    const leader = waitForLeader(cluster);
    const [buddy, ...majority] = others(cluster, leader.id);
    cluster.network.partition([[leader.id, buddy!], majority]);
    const ticks = waitFor(cluster, () => leader.raft().softState().role !== "leader", 60, "the minority leader stepping down");
    expect(ticks).toBeGreaterThan(0);
    const next = waitForLeader(cluster, 300);
    expect(majority).toContain(next.id);
    // It never comes back as leader while cut off.
    cluster.run(200);
    expect(leader.raft().softState().role).not.toBe("leader");
    cluster.network.heal();
    const after = commit(cluster, "healed", 600);
    waitApplied(cluster, after.index);
  });
});

describe("ReadIndex", () => {
  seededTest("reads on the leader and on followers see every write acknowledged before them", [421, 422, 423], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3 });
    waitForLeader(cluster);
    const served: string[] = [];
    for (let i = 0; i < 10; i++) {
      commit(cluster, `w-${i}`);
      for (const node of cluster.nodes) {
        const id = cluster.workload.readOn(node);
        served.push(id);
      }
      cluster.run(10);
    }
    waitFor(cluster, () => served.every((id) => cluster.workload.wasServed(id)), 300, "every read served");
    expect(cluster.workload.readsServed).toBe(30);
  });

  seededTest("a deposed leader partitioned away must not answer reads", [431, 432, 433], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 5 });
    const old = waitForLeader(cluster);
    commit(cluster, "w-before");
    cluster.network.isolate(old.id);
    const early = cluster.workload.readOn(old);
    const fresh = waitForLeader(cluster, 300);
    expect(fresh.id).not.toBe(old.id);
    commit(cluster, "w-after", 600);
    const late = cluster.workload.readOn(old);
    cluster.run(300);
    expect(cluster.workload.wasServed(early), "read started on the isolated leader").toBe(false);
    expect(cluster.workload.wasServed(late), "read started on the deposed leader").toBe(false);
    expect(cluster.workload.readsServedBy.get(old.id) ?? []).toEqual([]);
    // Reads on the new leader work, and any later read anywhere sees w-after.
    const good = cluster.workload.readOn(fresh);
    waitFor(cluster, () => cluster.workload.wasServed(good), 100, "read on the new leader");
    cluster.network.heal();
    cluster.run(100);
    const healed = cluster.workload.readOn(old);
    waitFor(cluster, () => cluster.workload.wasServed(healed), 300, "read on the old leader after healing");
  });

  seededTest("a new leader answers reads only at or above its first entry of its own term", [436, 437, 438], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 5 });
    const old = waitForLeader(cluster);
    for (let i = 0; i < 5; i++) commit(cluster, `w-${i}`);
    const readIndexes = new Map<string, number>();
    cluster.readListeners.push((_node, readState) => readIndexes.set(new TextDecoder().decode(readState.requestId), readState.index));
    cluster.crash(old.id);
    // Catch the new leader on the very tick it takes office, before its no-op can commit.
    waitFor(cluster, () => cluster.leaders().length > 0, 300, "a new leader");
    const fresh = cluster.leaders()[0]!;
    const term = fresh.raft().softState().term;
    const requestId = cluster.workload.readOn(fresh);
    waitFor(cluster, () => cluster.workload.wasRefused(requestId) || cluster.workload.wasServed(requestId), 200, "the read served or refused");
    console.log(`[sim] fresh leader's read ${cluster.workload.wasServed(requestId) ? "served" : "refused"}`);
    if (cluster.workload.wasServed(requestId)) {
      const storage = fresh.disk.storage;
      let firstOfTerm = 0;
      for (let index = storage.firstIndex(); index <= storage.lastIndex() && firstOfTerm === 0; index++) if (storage.term(index) === term) firstOfTerm = index;
      expect(firstOfTerm, "the new leader's first entry").toBeGreaterThan(0);
      expect(readIndexes.get(requestId)!, "read index of a fresh leader's read").toBeGreaterThanOrEqual(firstOfTerm);
    }
    cluster.restart(old.id);
  });

  seededTest("linearizable reads under crashes, partitions and an unreliable network", [441, 442, 443, 444, 445], (seed, testName) => {
    const report = runSimulation({
      seed,
      testName,
      nodeCount: 5,
      persistDelayTicksMax: 2,
      workload: { proposeProbability: 0.6, inflightMax: 4, readProbability: 0.4 },
      faults: {
        ...NO_FAULTS,
        network: UNRELIABLE_NETWORK,
        crashProbability: 0.01,
        leaderCrashProbability: 0.005,
        downMax: 2,
        restartProbability: 0.05,
        partitionProbability: 0.01,
        healProbability: 0.02,
        isolateProbability: 0.01,
      },
      safetyTicks: 2500,
      electionTicksMax: 600,
      convergenceTicksMax: 2000,
    });
    expect(report.readsServed).toBeGreaterThan(50);
  });
});

describe("leadership transfer", () => {
  seededTest("transfer to an up-to-date follower: it leads the next term at once", [451, 452, 453], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3, core: { electionTimeoutTicks: 20, heartbeatIntervalTicks: 2 } });
    const leader = waitForLeader(cluster, 300);
    commit(cluster, "before");
    const term = leader.raft().softState().term;
    const target = others(cluster, leader.id)[0]!;
    cluster.guard(() => leader.raft().transferLeadership(target));
    // Faster than an election timeout: TimeoutNow makes the target campaign at once.
    waitFor(cluster, () => cluster.soft(target)!.role === "leader", 15, "the transfer target leading");
    expect(cluster.soft(target)!.term).toBe(term + 1);
    expect(cluster.network.stats.sent(MessageType.TIMEOUT_NOW)).toBeGreaterThanOrEqual(1);
    const after = commit(cluster, "after");
    waitApplied(cluster, after.index);
  });

  seededTest("transfer to a lagging follower catches it up first", [461, 462], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3, core: { electionTimeoutTicks: 30, heartbeatIntervalTicks: 2 } });
    const leader = waitForLeader(cluster, 300);
    const target = others(cluster, leader.id)[0]!;
    cluster.network.isolate(target);
    let last = { index: 0, term: 0 };
    for (let i = 0; i < 20; i++) last = commit(cluster, `lag-${i}`);
    cluster.network.heal();
    cluster.guard(() => leader.raft().transferLeadership(target));
    waitFor(cluster, () => cluster.soft(target)!.role === "leader", 60, "the lagging target leading");
    expect(cluster.node(target).disk.storage.lastIndex()).toBeGreaterThanOrEqual(last.index);
    const after = commit(cluster, "after");
    waitApplied(cluster, after.index);
  });

  seededTest("transfer to an unreachable node is abandoned after an election timeout", [471, 472], (seed, testName) => {
    const electionTimeoutTicks = 20;
    const cluster = makeCluster({ seed, testName, nodeCount: 5, core: { electionTimeoutTicks, heartbeatIntervalTicks: 2 } });
    const leader = waitForLeader(cluster, 300);
    const term = leader.raft().softState().term;
    const target = others(cluster, leader.id)[0]!;
    cluster.crash(target);
    cluster.guard(() => leader.raft().transferLeadership(target));
    cluster.run(3 * electionTimeoutTicks);
    expect(leader.raft().softState()).toMatchObject({ role: "leader", term });
    const after = commit(cluster, "after-abandon");
    expect(after.term).toBe(term);
    cluster.restart(target);
    waitApplied(cluster, after.index);
  });
});
