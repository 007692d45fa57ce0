/**
 * Snapshot scenarios (Raft paper, section 7): the application compacts every few
 * entries; followers that fall behind the compacted log are caught up with
 * InstallSnapshot, sent in chunks; nodes restart from their snapshots.
 */
import { describe, expect } from "vitest";
import { MessageType } from "../../src/proto/schema.js";
import { commit, makeCluster, others, waitApplied, waitFor, waitForLeader } from "./helpers.js";
import { UNRELIABLE_NETWORK } from "./network.js";
import { converge, NO_FAULTS, runSimulation } from "./simulation.js";
import { seededTest } from "./seeds.js";

describe("snapshots", () => {
  for (const [label, network] of [["reliable", undefined], ["unreliable", UNRELIABLE_NETWORK]] as const) {
    seededTest(`a disconnected follower is caught up by InstallSnapshot (${label} network)`, [301, 302, 303], (seed, testName) => {
      const cluster = makeCluster({ seed, testName, nodeCount: 3, snapshotEveryAppliedEntries: 5, persistDelayTicksMax: 1 });
      if (network) cluster.network.setFaults(network);
      const leader = waitForLeader(cluster, 400);
      commit(cluster, "before", 800);
      const lagging = others(cluster, leader.id)[0]!;
      cluster.network.isolate(lagging);
      let last = { index: 0, term: 0 };
      for (let i = 0; i < 30; i++) last = commit(cluster, `while-away-${i}`, 800);
      const current = cluster.stableLeader()!;
      expect(current.disk.storage.snapshotMeta().index, "leader compacted past the lagging follower").toBeGreaterThan(cluster.node(lagging).stateMachine.appliedIndex);
      cluster.network.heal();
      waitApplied(cluster, last.index, cluster.ids, 1500);
      const follower = cluster.node(lagging);
      expect(follower.disk.snapshotsInstalled, "snapshots installed on the lagging follower").toBeGreaterThanOrEqual(1);
      expect(cluster.network.stats.sent(MessageType.SNAPSHOT)).toBeGreaterThanOrEqual(1);
      for (let i = 0; i < 30; i++) expect(follower.stateMachine.has(`while-away-${i}`)).toBe(true);
      // Same state as the leader once both applied the same index.
      cluster.run(20);
      expect(follower.stateMachine.appliedIndex).toBe(current.stateMachine.appliedIndex);
      expect(follower.stateMachine.hash).toBe(current.stateMachine.hash);
    });
  }

  seededTest("a crashed follower behind the leader's snapshot but within its catch-up tail is caught up by appends", [305, 306, 307], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3, snapshotEveryAppliedEntries: 5, snapshotCatchUpEntries: 40, persistDelayTicksMax: 1 });
    const leader = waitForLeader(cluster, 400);
    commit(cluster, "before", 800);
    const lagging = others(cluster, leader.id)[0]!;
    cluster.crash(lagging);
    let last = { index: 0, term: 0 };
    for (let i = 0; i < 20; i++) last = commit(cluster, `while-down-${i}`, 800);
    const current = cluster.stableLeader()!;
    const behind = cluster.node(lagging).disk.storage.lastIndex();
    expect(current.disk.storage.snapshotMeta().index, "leader snapshotted past the crashed follower's log").toBeGreaterThan(behind);
    expect(current.disk.storage.firstIndex(), "... but keeps the entries after it").toBeLessThanOrEqual(behind + 1);
    cluster.restart(lagging);
    waitApplied(cluster, last.index, cluster.ids, 1500);
    expect(cluster.node(lagging).disk.snapshotsInstalled, "snapshots installed on the follower").toBe(0);
    expect(cluster.network.stats.sent(MessageType.SNAPSHOT)).toBe(0);
    for (let i = 0; i < 20; i++) expect(cluster.node(lagging).stateMachine.has(`while-down-${i}`)).toBe(true);
  });

  seededTest("a crashed follower restarts behind the compacted log and is caught up by InstallSnapshot", [311, 312, 313], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 5, snapshotEveryAppliedEntries: 4, persistDelayTicksMax: 2 });
    const leader = waitForLeader(cluster, 400);
    commit(cluster, "before");
    const [a, b] = others(cluster, leader.id);
    cluster.crash(a!);
    cluster.crash(b!);
    let last = { index: 0, term: 0 };
    for (let i = 0; i < 25; i++) last = commit(cluster, `while-down-${i}`, 800);
    cluster.restart(a!);
    cluster.restart(b!);
    waitApplied(cluster, last.index, cluster.ids, 1500);
    expect(cluster.node(a!).disk.snapshotsInstalled + cluster.node(b!).disk.snapshotsInstalled).toBeGreaterThanOrEqual(2);
  });

  seededTest("all nodes crash and restart from their snapshots", [321, 322, 323], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3, snapshotEveryAppliedEntries: 6 });
    waitForLeader(cluster);
    let last = { index: 0, term: 0 };
    for (let i = 0; i < 20; i++) last = commit(cluster, `pre-${i}`);
    waitApplied(cluster, last.index);
    for (const node of cluster.nodes) expect(node.disk.storage.snapshotMeta().index).toBeGreaterThan(0);
    for (const id of cluster.ids) cluster.crash(id);
    for (const id of cluster.ids) cluster.restart(id);
    for (const node of cluster.nodes) {
      // Restored from the snapshot alone, before any message: the state machine is at the snapshot index.
      const snapshotIndex = node.disk.storage.snapshotMeta().index;
      expect(node.stateMachine.appliedIndex).toBe(snapshotIndex);
      expect(node.stateMachine.has("pre-0")).toBe(true);
    }
    const after = commit(cluster, "post", 800);
    waitApplied(cluster, after.index);
    for (const node of cluster.nodes) for (let i = 0; i < 20; i++) expect(node.stateMachine.has(`pre-${i}`)).toBe(true);
  });

  seededTest("a restart right after a snapshot", [331, 332, 333], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3 });
    const leader = waitForLeader(cluster);
    let last = { index: 0, term: 0 };
    for (let i = 0; i < 8; i++) last = commit(cluster, `x-${i}`);
    waitApplied(cluster, last.index);
    cluster.run(5);
    for (const node of [leader, ...others(cluster, leader.id).map((id) => cluster.node(id))]) {
      // Snapshot at the applied index with nothing outstanding, then crash at once.
      cluster.guard(() => {
        node.pump();
        if (node.idle()) node.snapshotNow();
      });
      const snapshotIndex = node.disk.storage.snapshotMeta().index;
      cluster.crash(node.id);
      cluster.restart(node.id);
      expect(node.stateMachine.appliedIndex).toBe(snapshotIndex);
      const next = commit(cluster, `after-restart-${node.id}`, 800);
      waitApplied(cluster, next.index);
    }
    for (const node of cluster.nodes) expect(node.disk.storage.snapshotMeta().index).toBeGreaterThan(0);
  });

  seededTest("chunked transfer of a multi-megabyte snapshot", [341, 342], (seed, testName) => {
    const snapshotChunkBytes = 256 * 1024;
    const cluster = makeCluster({
      seed,
      testName,
      nodeCount: 3,
      snapshotEveryAppliedEntries: 10,
      snapshotPaddingBytes: 3 * 1024 * 1024,
      core: { electionTimeoutTicks: 10, heartbeatIntervalTicks: 1, snapshotChunkBytes },
    });
    const leader = waitForLeader(cluster);
    const lagging = others(cluster, leader.id)[0]!;
    cluster.network.isolate(lagging);
    let last = { index: 0, term: 0 };
    for (let i = 0; i < 12; i++) last = commit(cluster, `big-${i}`);
    const meta = cluster.stableLeader()!.disk.storage.snapshotMeta();
    expect(meta.sizeBytes).toBeGreaterThan(3 * 1024 * 1024);
    cluster.network.resetStats();
    cluster.network.heal();
    waitApplied(cluster, last.index, cluster.ids, 1500);
    const follower = cluster.node(lagging);
    const chunksNeeded = Math.ceil(meta.sizeBytes / snapshotChunkBytes);
    expect(follower.disk.snapshotsInstalled).toBeGreaterThanOrEqual(1);
    expect(follower.disk.snapshotChunksWritten, "chunks written by the follower").toBeGreaterThanOrEqual(chunksNeeded);
    expect(cluster.network.stats.snapshotChunksSent).toBeGreaterThanOrEqual(chunksNeeded);
    expect(cluster.network.stats.snapshotBytesSent).toBeGreaterThanOrEqual(meta.sizeBytes);
    // No single message carried more than one chunk's worth.
    expect(cluster.network.stats.snapshotBytesSent / cluster.network.stats.snapshotChunksSent).toBeLessThanOrEqual(snapshotChunkBytes);
    expect(follower.stateMachine.has("big-11")).toBe(true);
    converge(cluster, 300, 1500);
  });

  seededTest("crashes of the receiver and of the sender in the middle of a chunked transfer", [345, 346, 347], (seed, testName) => {
    const snapshotChunkBytes = 64 * 1024;
    const cluster = makeCluster({
      seed,
      testName,
      nodeCount: 3,
      persistDelayTicksMax: 1,
      snapshotEveryAppliedEntries: 10,
      snapshotPaddingBytes: 1024 * 1024,
      core: { electionTimeoutTicks: 10, heartbeatIntervalTicks: 1, snapshotChunkBytes, inflightMessagesMax: 2 },
    });
    const leader = waitForLeader(cluster);
    const lagging = others(cluster, leader.id)[0]!;
    const follower = cluster.node(lagging);
    // Receiver crash: cut off, fall behind a snapshot, crash after a few chunks arrived.
    cluster.network.isolate(lagging);
    let last = { index: 0, term: 0 };
    for (let i = 0; i < 12; i++) last = commit(cluster, `a-${i}`);
    cluster.network.heal();
    const chunksBefore = follower.disk.snapshotChunksWritten;
    waitFor(cluster, () => follower.disk.snapshotChunksWritten >= chunksBefore + 3, 300, "a few chunks written");
    expect(follower.disk.snapshotsInstalled).toBe(0);
    cluster.crash(lagging);
    cluster.run(5);
    cluster.restart(lagging);
    waitApplied(cluster, last.index, cluster.ids, 1500);
    expect(follower.disk.snapshotsInstalled).toBe(1);
    // Sender crash: fall behind again, the leader crashes mid-transfer, the next leader finishes.
    cluster.network.isolate(lagging);
    for (let i = 0; i < 12; i++) last = commit(cluster, `b-${i}`);
    const sender = cluster.stableLeader()!;
    cluster.network.heal();
    const chunksMid = follower.disk.snapshotChunksWritten;
    waitFor(cluster, () => follower.disk.snapshotChunksWritten >= chunksMid + 3, 300, "a few chunks of the second snapshot");
    expect(follower.disk.snapshotsInstalled).toBe(1);
    cluster.crash(sender.id);
    const next = commit(cluster, "after-sender-crash", 1500);
    waitApplied(cluster, next.index, cluster.ids.filter((id) => id !== sender.id), 1500);
    expect(follower.disk.snapshotsInstalled, "snapshots installed on the follower").toBeGreaterThanOrEqual(2);
    cluster.restart(sender.id);
    converge(cluster, 300, 1500);
  });

  seededTest("the leader compacts again while a chunked transfer is under way", [348, 349, 350, 273737133], (seed, testName) => {
    const cluster = makeCluster({
      seed,
      testName,
      nodeCount: 3,
      snapshotEveryAppliedEntries: 3,
      // Large enough that one transfer (76 chunks, one in flight) outlasts the sender's two
      // compactions below: at 200 KiB (13 chunks) it finished first for 46 of 300 extra seeds
      // (RAFTWAL_SIM_SEEDS=300, 2026-11-27); at 600 KiB for none of 403, nor of those 46,
      // until the sender held its snapshots back while sending one (src/node/snapshot-policy.ts:
      // it now compacts only when 4 intervals are due), then for 5 of 603 (seeds 273737133,
      // 1914531924, ...); at 1200 KiB for none of 1,206.
      snapshotPaddingBytes: 1200 * 1024,
      core: { electionTimeoutTicks: 10, heartbeatIntervalTicks: 1, snapshotChunkBytes: 16 * 1024, inflightMessagesMax: 1 },
    });
    cluster.network.setFaults({ ...UNRELIABLE_NETWORK, dropRequestProbability: 0, dropReplyProbability: 0, duplicateProbability: 0 });
    const leader = waitForLeader(cluster, 400);
    const lagging = others(cluster, leader.id)[0]!;
    const follower = cluster.node(lagging);
    cluster.network.isolate(lagging);
    for (let i = 0; i < 10; i++) commit(cluster, `before-${i}`, 800);
    const sender = cluster.stableLeader()!;
    cluster.network.heal();
    // Client load during the transfer makes the sender take new snapshots meanwhile: the
    // chunks sent so far belong to a snapshot the sender no longer has.
    cluster.workload.configure({ proposeProbability: 1, inflightMax: 2, batchSizeMax: 1, readProbability: 0 });
    waitFor(cluster, () => follower.disk.snapshotChunksWritten > 0, 300, "the transfer starting");
    const takenAtStart = sender.disk.snapshotsTaken;
    cluster.workload.enabled = true;
    waitFor(cluster, () => sender.disk.snapshotsTaken >= takenAtStart + 2, 300, "the sender compacting twice during the transfer");
    cluster.workload.enabled = false;
    expect(follower.disk.snapshotsInstalled).toBe(0);
    // Once compaction pauses the transfer completes, with an intact payload (the state
    // machine's restore verifies length, padding pattern and hash).
    waitFor(cluster, () => follower.disk.snapshotsInstalled > 0, 1500, "a snapshot installed on the follower");
    converge(cluster, 300, 3000);
  });

  for (const [label, network] of [["reliable", undefined], ["unreliable", UNRELIABLE_NETWORK]] as const) {
    seededTest(`compaction every few entries under crashes and partitions (${label} network)`, [351, 352, 353, 354], (seed, testName) => {
      const report = runSimulation({
        seed,
        testName,
        nodeCount: 5,
        persistDelayTicksMax: 2,
        snapshotEveryAppliedEntries: 5,
        workload: { proposeProbability: 0.6, inflightMax: 4, readProbability: 0.05 },
        faults: {
          ...NO_FAULTS,
          ...(network ? { network } : {}),
          crashProbability: 0.01,
          downMax: 2,
          restartProbability: 0.02,
          crashDuringPersistProbability: 0.002,
          partitionProbability: 0.005,
          healProbability: 0.02,
          isolateProbability: 0.01,
        },
        safetyTicks: 2500,
        electionTicksMax: 600,
        convergenceTicksMax: 2000,
      });
      expect(report.snapshotsInstalled, "InstallSnapshot happened").toBeGreaterThan(0);
      expect(report.acked).toBeGreaterThan(30);
    });
  }
});
