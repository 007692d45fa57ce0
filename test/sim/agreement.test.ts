/**
 * Agreement scenarios (Raft paper, section 5.3-5.4): commands commit with a
 * majority, not without one; a deposed leader's uncommitted entries are repaired;
 * conflicting suffixes are backed over quickly; message counts stay linear.
 */
import { describe, expect } from "vitest";
import { MessageType } from "../../src/proto/schema.js";
import { commit, makeCluster, others, waitApplied, waitForLeader } from "./helpers.js";
import { seededTest } from "./seeds.js";
import { encodeCommand } from "./state-machine.js";

describe("agreement", () => {
  seededTest("basic agreement: every command commits, in order, on every node", [101, 102, 103], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3 });
    waitForLeader(cluster);
    let previous = 0;
    for (let i = 0; i < 20; i++) {
      const { index } = commit(cluster, `basic-${i}`);
      expect(index).toBeGreaterThan(previous);
      previous = index;
      waitApplied(cluster, index);
    }
    // Every node applied the same commands in the same order.
    const orders = cluster.nodes.map((n) => n.stateMachine.commands.map(([, c]) => c).join(" "));
    expect(new Set(orders).size).toBe(1);
    expect(orders[0]).toBe(Array.from({ length: 20 }, (_, i) => `basic-${i}`).join(" "));
  });

  seededTest("follower failure: commits continue with a majority, stop without one", [111, 112, 113], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3 });
    const leader = waitForLeader(cluster);
    commit(cluster, "before");
    const [f1, f2] = others(cluster, leader.id);
    cluster.network.isolate(f1!);
    const { index } = commit(cluster, "one-follower-down");
    waitApplied(cluster, index, [leader.id, f2!]);
    // Both followers gone: the leader accepts the proposal but it never commits.
    cluster.network.isolate(f2!);
    const position = cluster.guard(() => leader.raft().propose(encodeCommand("no-majority")));
    cluster.run(200);
    expect(cluster.nodes.some((n) => n.stateMachine.has("no-majority"))).toBe(false);
    expect(cluster.nodes.every((n) => n.stateMachine.appliedIndex < position.index)).toBe(true);
    // Heal: the cluster makes progress again and agrees.
    cluster.network.heal();
    const after = commit(cluster, "after-heal", 800);
    waitApplied(cluster, after.index);
  });

  seededTest("leader failure: a new leader commits, the old one catches up on return", [121, 122, 123], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3 });
    const leader = waitForLeader(cluster);
    commit(cluster, "first");
    cluster.network.isolate(leader.id);
    const second = commit(cluster, "second", 600);
    const third = commit(cluster, "third", 600);
    expect(third.index).toBeGreaterThan(second.index);
    cluster.network.heal();
    waitApplied(cluster, third.index, cluster.ids, 600);
    expect(leader.stateMachine.has("second") && leader.stateMachine.has("third")).toBe(true);
  });

  seededTest("too many failures: with 3 of 5 followers gone nothing commits; all recovers after", [131, 132], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 5 });
    const leader = waitForLeader(cluster);
    const { index: baseIndex } = commit(cluster, "base");
    waitApplied(cluster, baseIndex);
    const gone = others(cluster, leader.id).slice(0, 3);
    for (const id of gone) cluster.crash(id);
    const position = cluster.guard(() => leader.raft().propose(encodeCommand("doomed")));
    expect(position.index).toBe(baseIndex + 1);
    cluster.run(300);
    for (const node of cluster.nodes.filter((n) => n.alive)) {
      expect(node.raft().hardState().commit, `node ${node.id} commit`).toBe(baseIndex);
      expect(node.stateMachine.has("doomed")).toBe(false);
    }
    for (const id of gone) cluster.restart(id);
    const after = commit(cluster, "after-restart", 800);
    waitApplied(cluster, after.index);
  });

  seededTest("concurrent proposals: many in one tick, singles and batches, all commit at distinct indexes", [141, 142, 143], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 5 });
    const leader = waitForLeader(cluster);
    const positions: number[] = [];
    for (let i = 0; i < 30; i++) positions.push(cluster.propose(leader.id, `single-${i}`).index);
    const batch = Array.from({ length: 40 }, (_, i) => `batch-${i}`);
    const batchPosition = cluster.guard(() => leader.raft().proposeBatch(batch.map(encodeCommand)));
    batch.forEach((command, i) => cluster.workload.track(leader.id, batchPosition.index + i, batchPosition.term, command));
    for (let i = 0; i < 40; i++) positions.push(batchPosition.index + i);
    expect(new Set(positions).size).toBe(70);
    const last = Math.max(...positions);
    waitApplied(cluster, last);
    expect(cluster.workload.acked.length).toBe(70);
    for (const node of cluster.nodes) {
      const order = node.stateMachine.commands.map(([index, command]) => `${index}:${command}`);
      expect(order).toEqual(cluster.nodes[0]!.stateMachine.commands.map(([index, command]) => `${index}:${command}`));
    }
  });

  seededTest("a partitioned leader rejoins with divergent uncommitted entries, which are discarded", [151, 152, 153], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 3 });
    const leader1 = waitForLeader(cluster);
    commit(cluster, "common");
    cluster.network.isolate(leader1.id);
    // The isolated leader accepts proposals that can never commit.
    for (let i = 0; i < 3; i++) cluster.propose(leader1.id, `lost-${i}`);
    const leader2 = waitForLeader(cluster, 300);
    expect(leader2.id).not.toBe(leader1.id);
    commit(cluster, "new-term-1");
    // Now leader2 is cut off and leader1 returns.
    cluster.network.heal();
    cluster.network.isolate(leader2.id);
    const x = commit(cluster, "while-leader2-away", 600);
    cluster.network.heal();
    const y = commit(cluster, "all-together", 600);
    expect(y.index).toBeGreaterThan(x.index);
    waitApplied(cluster, y.index);
    for (const node of cluster.nodes) {
      for (let i = 0; i < 3; i++) expect(node.stateMachine.has(`lost-${i}`), `node ${node.id} applied lost-${i}`).toBe(false);
      for (const c of ["common", "new-term-1", "while-leader2-away", "all-together"]) expect(node.stateMachine.has(c)).toBe(true);
    }
  });

  seededTest("fast backup over 50+ divergent entries per follower needs few round trips", [161, 162, 163], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 5 });
    const leader1 = waitForLeader(cluster);
    commit(cluster, "start");
    // Leader and one follower cut off together; the leader piles up 60 uncommitted entries.
    const [partner, ...rest] = others(cluster, leader1.id);
    cluster.network.partition([[leader1.id, partner!], rest]);
    for (let i = 0; i < 60; i++) cluster.propose(leader1.id, `stale-a-${i}`);
    // The other three elect a leader and commit 60 entries at the same indexes.
    for (let i = 0; i < 60; i++) commit(cluster, `good-a-${i}`, 800);
    const leader2 = cluster.stableLeader()!;
    expect(rest).toContain(leader2.id);
    cluster.network.resetStats();
    // leader2 and one more are cut off; leader2 piles up 60 more. The new majority includes
    // leader1 and partner, whose 60 stale entries its leader must back over.
    const [keep, ...gone] = rest.filter((id) => id !== leader2.id);
    cluster.network.partition([[leader2.id, keep!], [...gone, leader1.id, partner!]]);
    for (let i = 0; i < 60; i++) cluster.propose(leader2.id, `stale-b-${i}`);
    let last = { index: 0, term: 0 };
    for (let i = 0; i < 60; i++) last = commit(cluster, `good-b-${i}`, 800);
    // A new term in the majority: the next leader starts probing at its own last index,
    // past the 60 stale entries of leader2 and keep.
    const leader3 = cluster.stableLeader()!;
    cluster.crash(leader3.id);
    cluster.restart(leader3.id);
    waitForLeader(cluster, 400);
    cluster.network.heal();
    const final = commit(cluster, "final", 800);
    waitApplied(cluster, final.index, cluster.ids, 800);
    const stats = cluster.network.stats;
    console.log(`[sim] repair traffic: ${stats.describe()}`);
    // Four followers backed over 60 entries each; one rejection per entry would be 240.
    expect(stats.appendRejectionsSent, stats.describe()).toBeGreaterThan(0);
    expect(stats.appendRejectionsSent, stats.describe()).toBeLessThanOrEqual(16);
    expect(last.index).toBeLessThan(final.index);
    for (const node of cluster.nodes) {
      expect(node.stateMachine.has("stale-a-0") || node.stateMachine.has("stale-b-0")).toBe(false);
      expect(node.stateMachine.has("good-b-59")).toBe(true);
    }
  });

  seededTest("an idle leader sends about one heartbeat per follower per heartbeat interval", [171, 172], (seed, testName) => {
    const heartbeatIntervalTicks = 3;
    const cluster = makeCluster({ seed, testName, nodeCount: 5, core: { electionTimeoutTicks: 20, heartbeatIntervalTicks } });
    const leader = waitForLeader(cluster, 300);
    commit(cluster, "warm-up");
    cluster.run(50);
    cluster.network.resetStats();
    const ticks = 600;
    cluster.run(ticks);
    const stats = cluster.network.stats;
    const followers = cluster.ids.length - 1;
    const budget = followers * Math.ceil(ticks / heartbeatIntervalTicks);
    expect(stats.sentFrom(leader.id), stats.describe()).toBeLessThanOrEqual(Math.ceil(budget * 1.1) + followers);
    expect(stats.sentFrom(leader.id), stats.describe()).toBeGreaterThanOrEqual(Math.floor(budget * 0.5));
    // Followers only answer; nobody campaigns.
    expect(stats.sent(MessageType.PRE_VOTE) + stats.sent(MessageType.VOTE)).toBe(0);
    expect(stats.sent(MessageType.APPEND), stats.describe()).toBe(0);
  });

  seededTest("agreement on N commands costs O(N) messages, not O(N^2)", [181, 182], (seed, testName) => {
    const cluster = makeCluster({ seed, testName, nodeCount: 5, core: { electionTimeoutTicks: 20, heartbeatIntervalTicks: 5 } });
    waitForLeader(cluster, 300);
    commit(cluster, "warm-up");
    const measure = (count: number, tag: string) => {
      cluster.network.resetStats();
      for (let i = 0; i < count; i++) commit(cluster, `${tag}-${i}`);
      const stats = cluster.network.stats;
      return { messages: stats.sent(MessageType.APPEND) + stats.sent(MessageType.APPEND_RESPONSE), entries: stats.appendEntriesSent, stats };
    };
    const small = measure(40, "small");
    const large = measure(160, "large");
    const followers = cluster.ids.length - 1;
    // One append and one response per follower per command, give or take.
    expect(large.messages, large.stats.describe()).toBeLessThanOrEqual(160 * followers * 3);
    // Every entry travels to every follower about once (no resending of the log).
    expect(large.entries, large.stats.describe()).toBeLessThanOrEqual(Math.ceil(160 * followers * 1.2));
    expect(large.entries).toBeGreaterThanOrEqual(160 * followers);
    // Four times the commands, about four times the messages.
    expect(large.messages / small.messages).toBeLessThan(5.5);
  });
});
