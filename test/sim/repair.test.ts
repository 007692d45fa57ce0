/**
 * Storage damage repaired from peers (src/raft/REPAIR.md) under the simulator: damage at
 * rest on a follower, on the leader, on a majority in turn, on several nodes at once and on
 * all of them, of every kind (disk-damage.ts), with crashes, partitions and client load.
 * The checkers watch throughout (checkers.ts, repair-checkers.ts): nothing damaged is ever
 * applied, a recovering node grants no vote and acknowledges nothing it does not hold, no
 * node votes twice where its vote counted, Raft's properties hold. After faults stop every
 * damaged node must be whole again and the cluster converge, unless a quorum lost state at
 * once: then every recovering node that knows its configuration stops loudly with
 * RAFT_ERR_UNREPAIRABLE, and nothing unsafe happened before.
 */
import { describe, expect } from "vitest";
import { Rng } from "../../src/rng.js";
import type { Cluster } from "./cluster.js";
import { DEFAULT_DAMAGE_PLAN, type DamagePlan } from "./damage-faults.js";
import { DAMAGE_KINDS, type DamageKind, type DamageOutcome } from "./disk-damage.js";
import { memberOf } from "../../src/raft/cluster-config.js";
import { addLearnersCaughtUp, commit, makeCluster, others, scenarioMembership, waitFor, waitForLeader } from "./helpers.js";
import { HOSTILE_NETWORK, UNRELIABLE_NETWORK, type NetworkFaults } from "./network.js";
import { converge, NO_FAULTS, randomCoreSettings, runSimulation, type FaultPlan, type SimulationReport } from "./simulation.js";
import { seededTest } from "./seeds.js";

/** Crashes `id`, damages its disk with `kind` at rest, restarts it; returns what was lost. */
function damageAndRestart(cluster: Cluster, id: number, kind: DamageKind, rng: Rng): DamageOutcome {
  cluster.crash(id);
  const outcome = cluster.guard(() => cluster.node(id).damage(kind, rng));
  if (outcome === undefined) return cluster.fail(`node ${id}'s disk holds nothing ${kind} can hit`);
  cluster.restart(id);
  return outcome;
}

function whole(cluster: Cluster, id: number): boolean {
  const node = cluster.node(id);
  return node.alive && node.raft().recovering() === undefined && node.disk.repairMark() === undefined;
}

/** A 3-node cluster under client load with a snapshot every 10 entries and a few older ones kept, 30 commands in. */
function loadedCluster(seed: number, testName: string): Cluster {
  const cluster = makeCluster({ seed, testName, nodeCount: 3, persistDelayTicksMax: 2, snapshotEveryAppliedEntries: 10 });
  waitForLeader(cluster);
  for (let i = 0; i < 30; i++) commit(cluster, `before-${i}`);
  cluster.workload.enabled = true;
  return cluster;
}

/** Until node `id`'s disk holds what `kind` hits: a few log entries above its snapshot, or a snapshot. */
function waitDamageable(cluster: Cluster, id: number, kind: DamageKind): void {
  const storage = () => cluster.node(id).disk.storage;
  const ready = kind === "damage-snapshot" ? () => storage().snapshotMeta().index > 0 : () => storage().lastIndex() - storage().firstIndex() >= 2;
  waitFor(cluster, ready, 1000, `node ${id}'s disk holds what ${kind} hits`);
}

/** Damage `id` with `kind`, then: it restarts repairing and is whole again under load. */
function repairs(cluster: Cluster, id: number, kind: DamageKind): DamageOutcome {
  waitDamageable(cluster, id, kind);
  const outcome = damageAndRestart(cluster, id, kind, cluster.rng.derive(`damage-${id}-${kind}`));
  expect(cluster.node(id).raft().recovering(), `node ${id} restarts repairing (${outcome.detail})`).toBeDefined();
  waitFor(cluster, () => whole(cluster, id), 3000, `node ${id} whole again after ${outcome.detail}`);
  return outcome;
}

function finish(cluster: Cluster): void {
  cluster.workload.enabled = false;
  const end = converge(cluster, 600, 3000);
  expect(end.ended).toBeUndefined();
  expect(cluster.unrepairable).toEqual([]);
}

describe("storage damage repaired from peers: scenarios", () => {
  for (const [i, kind] of DAMAGE_KINDS.entries()) {
    seededTest(`a follower, ${kind}`, [601 + i], (seed, testName) => {
      const cluster = loadedCluster(seed, testName);
      const follower = others(cluster, waitForLeader(cluster).id)[0]!;
      const outcome = repairs(cluster, follower, kind);
      expect(outcome.hardStateLost || outcome.lostFromIndex > 0).toBe(true);
      finish(cluster);
    });

    seededTest(`the leader, ${kind}`, [611 + i], (seed, testName) => {
      const cluster = loadedCluster(seed, testName);
      const leader = waitForLeader(cluster).id;
      repairs(cluster, leader, kind);
      // A lost log needs a leader to refill it: another node led meanwhile (a lost hard state
      // is repaired by the voters' answers alone, and the node may lead again at once).
      if (kind !== "damage-hard-state") expect(cluster.leaderHistory.some((h) => h.leader !== leader)).toBe(true);
      finish(cluster);
    });
  }

  seededTest("a flipped record above the snapshot keeps the catch-up tail behind it; one in the tail leaves the log empty at the snapshot", [695], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3, persistDelayTicksMax: 2, snapshotEveryAppliedEntries: 10, snapshotCatchUpEntries: 6 });
    const follower = others(cluster, waitForLeader(cluster).id)[0]!;
    const disk = () => cluster.node(follower).disk;
    const holdsTailAndMore = () => disk().storage.firstIndex() <= disk().storage.snapshotMeta().index && disk().storage.lastIndex() >= disk().storage.snapshotMeta().index + 2;
    for (let i = 0; !holdsTailAndMore(); i++) {
      if (i === 200) cluster.fail(`node ${follower} never held a tail and two entries above its snapshot`);
      commit(cluster, `before-${i}`);
    }
    cluster.crash(follower);
    const { index: snapshotIndex } = disk().storage.snapshotMeta();
    const firstIndex = disk().storage.firstIndex();
    cluster.node(follower).damageRecordAt(snapshotIndex + 2);
    expect([disk().storage.firstIndex(), disk().storage.lastIndex()]).toEqual([firstIndex, snapshotIndex + 1]);
    expect(disk().storage.snapshotMeta().index).toBe(snapshotIndex);
    cluster.restart(follower);
    waitFor(cluster, () => whole(cluster, follower), 3000, `node ${follower} whole again, its tail kept`);

    cluster.crash(follower);
    const tailStart = disk().storage.firstIndex();
    const snapshotNow = disk().storage.snapshotMeta().index;
    expect(tailStart).toBeLessThan(snapshotNow);
    cluster.node(follower).damageRecordAt(tailStart);
    expect([disk().storage.firstIndex(), disk().storage.lastIndex()]).toEqual([snapshotNow + 1, snapshotNow]);
    cluster.restart(follower);
    waitFor(cluster, () => whole(cluster, follower), 3000, `node ${follower} whole again from its snapshot`);
    finish(cluster);
  });

  seededTest("its newest snapshot damaged while its catch-up tail reaches back to the older one: it restarts there with its log, nothing lost; every snapshot lost empties the log and repairs", [696], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3, persistDelayTicksMax: 2, snapshotEveryAppliedEntries: 10, snapshotCatchUpEntries: 15 });
    const follower = others(cluster, waitForLeader(cluster).id)[0]!;
    const disk = () => cluster.node(follower).disk;
    const reachesOlder = () => disk().snapshots().length >= 3 && disk().storage.firstIndex() - 1 <= disk().snapshots()[1]!.meta.index;
    for (let i = 0; !reachesOlder(); i++) {
      if (i === 200) cluster.fail(`node ${follower} never held three snapshots with its log reaching back to the second`);
      commit(cluster, `before-${i}`);
    }
    cluster.crash(follower);
    const [, older] = disk().snapshots();
    const log = [disk().storage.firstIndex(), disk().storage.lastIndex()];
    const kept = cluster.node(follower).damageNewestSnapshots(1);
    expect(kept.lostFromIndex).toBe(0);
    expect(disk().repairMark()).toBeUndefined();
    expect(disk().storage.snapshotMeta().index).toBe(older!.meta.index);
    expect([disk().storage.firstIndex(), disk().storage.lastIndex()]).toEqual(log);
    cluster.restart(follower);
    expect(cluster.node(follower).raft().recovering(), "nothing lost: no repair").toBeUndefined();
    cluster.run(50);

    // Every snapshot damaged: the log, compacted up to the tail behind the newest, does not
    // reach back to the start, so it restarts empty with no snapshot and is repaired.
    cluster.crash(follower);
    const snapshotsNow = disk().snapshots();
    expect(disk().storage.firstIndex()).toBeGreaterThan(1);
    const lost = cluster.node(follower).damageNewestSnapshots(snapshotsNow.length);
    expect(lost.lostFromIndex).toBe(1);
    expect(disk().repairMark()).toBeDefined();
    cluster.restart(follower);
    expect(cluster.node(follower).raft().recovering()).toBeDefined();
    waitFor(cluster, () => whole(cluster, follower), 3000, `node ${follower} whole again`);
    finish(cluster);
  });

  seededTest("a majority in turn (every node, one after the other), with a partition between", [621, 622], (seed, testName) => {
    const cluster = loadedCluster(seed, testName);
    const rng = cluster.rng.derive("kinds");
    for (const id of rng.shuffled(cluster.ids)) {
      repairs(cluster, id, rng.pick(DAMAGE_KINDS));
      cluster.network.isolate(rng.pick(cluster.ids));
      cluster.run(60);
      cluster.network.heal();
    }
    finish(cluster);
  });

  seededTest("a crash during the repair restarts still repairing, with the union of what was lost", [631], (seed, testName) => {
    const cluster = loadedCluster(seed, testName);
    const follower = others(cluster, waitForLeader(cluster).id)[0]!;
    cluster.network.isolate(follower);
    const rng = cluster.rng.derive("damage");
    const log = damageAndRestart(cluster, follower, "flip-record", rng);
    cluster.run(30);
    damageAndRestart(cluster, follower, "damage-hard-state", rng);
    const recovering = cluster.node(follower).raft().recovering();
    expect(recovering).toMatchObject({ hardStateLost: true });
    expect(recovering!.lostFromIndex).toBeGreaterThan(0);
    expect(recovering!.targetIndex).toBeGreaterThanOrEqual(log.lostToIndex);
    expect(cluster.node(follower).disk.repairMark()).toMatchObject({ logLost: true, hardStateLost: true });
    cluster.network.heal();
    waitFor(cluster, () => whole(cluster, follower), 3000, `node ${follower} whole again`);
    finish(cluster);
  });

  seededTest("a majority at once while the leader stays: the leader repairs both", [641], (seed, testName) => {
    const cluster = loadedCluster(seed, testName);
    const leader = waitForLeader(cluster).id;
    const [a, b] = others(cluster, leader) as [number, number];
    const rng = cluster.rng.derive("damage");
    damageAndRestart(cluster, a, "flip-record", rng);
    damageAndRestart(cluster, b, "damage-snapshot", rng);
    waitFor(cluster, () => whole(cluster, a) && whole(cluster, b), 3000, `nodes ${a} and ${b} whole again`);
    finish(cluster);
  });

  seededTest("a node whose damage took every configuration naming it (its log cut before the entry that added it, the founders since removed) waits for the leader and is repaired", [691, 692], (seed, testName) => {
    // No snapshots: the new members get the whole log, the founding configuration included.
    const cluster = makeCluster({ seed, testName, nodeCount: 3, persistDelayTicksMax: 2, snapshotEveryAppliedEntries: 0 });
    waitForLeader(cluster);
    for (let i = 0; i < 10; i++) commit(cluster, `before-${i}`);
    const membership = scenarioMembership(cluster, cluster.rng.derive("membership"));
    addLearnersCaughtUp(cluster, membership, [4, 5]);
    membership.begin("joint", [{ promote: [4, 5], remove: [1, 2] }]);
    waitFor(cluster, () => !membership.busy(), 1500, "voters {3, 4, 5}");
    cluster.workload.enabled = true;
    const victim = cluster.node(4);
    const added = victim.disk.configEntries().find((indexed) => memberOf(indexed.config, 4) !== undefined)!.index;
    cluster.crash(4);
    const rng = cluster.rng.derive("damage");
    const outcome = cluster.guard(() => victim.damageRecordAt(rng.between(victim.disk.storage.firstIndex(), added)));
    // What it kept names only the founders {1, 2, 3}, now removed, or nothing.
    expect(memberOf(victim.disk.latestConfig().config, 4), outcome.detail).toBeUndefined();
    cluster.restart(4);
    expect(victim.raft().recovering()).toBeDefined();
    waitFor(cluster, () => whole(cluster, 4), 3000, `node 4 whole again after ${outcome.detail}`);
    expect(victim.raft().clusterConfig().config.voters).toEqual([3, 4, 5]);
    finish(cluster);
    // Reference: REPAIR.md rule 6 (only a configuration naming the node is one to judge by), MEMBERSHIP.md rule 8 (messages from non-members)
  });

  seededTest("all nodes at once: every node that knows its configuration stops as unrepairable, nothing unsafe", [651, 652], (seed, testName) => {
    const cluster = loadedCluster(seed, testName);
    cluster.workload.enabled = false;
    const rng = cluster.rng.derive("damage");
    for (const id of cluster.ids) cluster.crash(id);
    for (const id of cluster.ids) {
      cluster.node(id).damage("damage-hard-state", rng);
      cluster.node(id).damage(rng.pick(DAMAGE_KINDS), rng);
    }
    const terms = cluster.leaderHistory.length;
    for (const id of cluster.ids) cluster.restart(id);
    cluster.run(600);
    // No leader could be elected: every voter is recovering and grants no vote.
    expect(cluster.leaderHistory.length).toBe(terms);
    for (const node of cluster.nodes) {
      const knowsConfig = node.disk.latestConfig().config.voters.length > 0;
      if (knowsConfig) expect(node.unrepairable, `node ${node.id} stopped`).toMatch(/quorum of voters is recovering/);
      else expect(node.alive && node.raft().recovering()).toBeTruthy();
    }
    expect(cluster.unrepairable.length).toBeGreaterThan(0);
  });
});

/** Crashes, partitions, an unreliable network and compaction: the fault mix the damage comes on top of. */
function faultMix(network = UNRELIABLE_NETWORK): FaultPlan {
  return {
    ...NO_FAULTS,
    network,
    crashProbability: 0.01,
    leaderCrashProbability: 0.005,
    restartProbability: 0.05,
    downMax: 1,
    crashDuringPersistProbability: 0.01,
    partitionProbability: 0.005,
    healProbability: 0.02,
    isolateProbability: 0.003,
    snapshotNowProbability: 0.01,
  };
}

/**
 * A randomized run (core settings from the seed, snapshot chunks of at least `chunkBytesMin`)
 * with `damage` on top of the fault mix; logs and returns its report.
 */
function damageRun(seed: number, testName: string, nodeCount: number, network: NetworkFaults, damage: Partial<DamagePlan>, chunkBytesMin = 0): SimulationReport {
  const core = randomCoreSettings(new Rng(seed).derive("core"));
  core.snapshotChunkBytes = Math.max(core.snapshotChunkBytes ?? 0, chunkBytesMin);
  const report = runSimulation({
    seed,
    testName,
    nodeCount,
    core,
    persistDelayTicksMax: 2,
    snapshotEveryAppliedEntries: 20,
    snapshotCatchUpEntries: new Rng(seed).derive("catch-up tail").pick([0, 5]),
    initialElectionTickAdvance: new Rng(seed).derive("election tick advance").chance(0.5),
    faults: { ...faultMix(network), damage: { ...DEFAULT_DAMAGE_PLAN, ...damage } },
    safetyTicks: 2000,
    electionTicksMax: 1000,
    convergenceTicksMax: 3000,
  });
  console.log(`[sim] report ${JSON.stringify(report)}`);
  return report;
}

describe("storage damage repaired from peers: randomized", () => {
  // "In turn a majority" needs the first repair to end within the run: damage waits while a
  // node repairs. A node that needs the leader's snapshot must get it within one leader's term,
  // with no crash of its own and no newer snapshot in between, and while it repairs it does not
  // vote (src/raft/REPAIR.md, rule 1): the other two voters must both be up, connected and agree.
  // With 128-byte chunks a 1.3 to 3.9 KiB snapshot (11 to 31 chunks) rarely makes it. Seed
  // 1713432803 drew them: node 1, damaged at tick 303, repaired 28 ticks after faults stopped
  // (no leader for 1,013 of its 1,697 ticks under faults, 1 of 26 transfers started installed);
  // with faults kept on to tick 6000 it was still repairing. Over 1,500 seeds, 6% of repairs
  // with 128-byte chunks lasted over 600 ticks, 0.6% with larger ones. So chunks of 1 KiB or
  // more here (2,499 seeds: a second node damaged by tick 1,240 in every one); the other
  // randomized damage tests keep the tiny chunks. Seed 1803772105 found two votes in one term
  // (a candidate asked for votes before its term was durable; src/raft/messages.ts).
  seededTest("one node at a time (followers, leaders, in turn a majority), every kind, crashes and partitions", [661, 662, 663, 664, 665, 666, 1803772105], (seed, testName) => {
    const report = damageRun(seed, testName, 3, UNRELIABLE_NETWORK, { probability: 0.01 }, 1024);
    expect(report.ended).toBeUndefined();
    expect(report.damage!.nodesDamaged.length).toBeGreaterThanOrEqual(2);
  });

  seededTest("five nodes, a hostile network, one node at a time", [671], (seed, testName) => {
    expect(damageRun(seed, testName, 5, HOSTILE_NETWORK, { probability: 0.01 }).ended).toBeUndefined();
  });

  seededTest("several nodes at once: repaired, or ended as unrepairable (a quorum lost state), always safe", [681, 682, 683, 684], (seed, testName) => {
    const report = damageRun(seed, testName, 3, UNRELIABLE_NETWORK, { probability: 0.004, overlap: "several" });
    // Only damaged nodes stop (each while a quorum had lost state: unrepairable-justified).
    if (report.ended) expect(report.damage!.nodesDamaged).toEqual(expect.arrayContaining(report.ended.nodes));
  });
});
