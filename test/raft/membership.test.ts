/**
 * Cluster membership changes: Raft paper section 6, Raft thesis chapter 4 (learners 4.2.1,
 * the single-server approach 4.2 and its 2015 erratum, removing the leader 4.2.2,
 * disruptive servers 4.2.3, joint consensus 4.3).
 */
import { describe, expect, it } from "vitest";
import { EntryType, type Entry } from "../../src/proto/schema.js";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";
import { encodeConfigEntry } from "../../src/raft/config-log.js";
import type { ConfigChange } from "../../src/raft/config-change.js";
import { MemoryStorage } from "../../src/raft/index.js";
import { bytes, drain, message, MessageType, Network, newCore } from "./helpers.js";

const noPreVote = { preVote: false, checkQuorum: false };

function member(id: number) {
  return { id, peerAddress: `127.0.0.1:${7000 + id}`, apiAddress: "" };
}

/** Proposes a change on `leader` and lets the network settle; returns the config entry's index. */
function change(net: Network, leader: number, request: ConfigChange): number {
  const position = net.core(leader).proposeConfigChange(request);
  net.deliver();
  return position.index;
}

/** A 3-voter cluster led by node 1, with learners added (and caught up) for `learners`. */
function clusterWithLearners(learners: number[], options = {}): Network {
  const net = new Network([1, 2, 3], { ...noPreVote, ...options });
  net.elect(1);
  for (const id of learners) net.addNode(id, [], { ...noPreVote, ...options });
  if (learners.length > 0) change(net, 1, { addLearners: learners.map(member) });
  return net;
}

function configEntry(index: number, term: number, voters: number[], outgoing: number[] = []): Entry {
  const config = { ...clusterConfigOf(voters), votersOutgoing: outgoing };
  return { index, term, type: EntryType.CLUSTER_CONFIG, data: encodeConfigEntry(config) };
}

describe("learners (thesis 4.2.1)", () => {
  it("a learner added to the cluster receives the whole log", () => {
    const net = clusterWithLearners([]);
    net.core(1).propose(bytes("before"));
    net.deliver();
    net.addNode(4, [], noPreVote);
    change(net, 1, { addLearners: [member(4)] });
    net.core(1).propose(bytes("after"));
    net.deliver();
    net.tickAll(1); // the next heartbeat carries the commit index
    expect(net.appliedData(4)).toEqual(["before", "after"]);
    expect(net.core(4).clusterConfig().config.learners).toEqual([4]);
    expect(net.core(1).clusterConfig().config.voters).toEqual([1, 2, 3]);
    // Reference: thesis 4.2.1 ("non-voting members ... the leader replicates entries to them")
  });

  it("a learner's acknowledgements never count toward commitment", () => {
    const net = clusterWithLearners([4]);
    net.isolate(2);
    net.isolate(3);
    const position = net.core(1).propose(bytes("x"));
    net.deliver();
    expect(net.node(4).storage.lastIndex()).toBeGreaterThanOrEqual(position.index);
    expect(net.core(1).commitIndex()).toBeLessThan(position.index);
    // Reference: thesis 4.2.1 (learners are not counted in majorities)
  });

  it("a learner never campaigns, however long it hears nothing", () => {
    const net = clusterWithLearners([4]);
    net.isolate(4);
    net.tick(4, 100);
    net.deliver();
    expect(net.core(4).softState().role).toBe("follower");
    expect(net.sent.filter((m) => m.from === 4 && (m.type === MessageType.VOTE || m.type === MessageType.PRE_VOTE))).toEqual([]);
    // Reference: thesis 4.2.1
  });

  it("a candidate does not count a learner's vote", () => {
    const storage = new MemoryStorage();
    storage.append([configEntry(1, 1, [1, 2, 3])]);
    storage.setHardState({ term: 1, vote: 0, commit: 1 });
    const learnerConfig = { ...clusterConfigOf([1, 2, 3], [4]) };
    storage.append([{ index: 2, term: 1, type: EntryType.CLUSTER_CONFIG, data: encodeConfigEntry(learnerConfig) }]);
    const node = { core: newCore(1, [], storage, noPreVote), storage };
    for (let i = 0; i < 30 && node.core.softState().role === "follower"; i++) node.core.tick();
    drain(node);
    const term = node.core.softState().term;
    node.core.step(message({ type: MessageType.VOTE_RESPONSE, from: 4, to: 1, term }));
    drain(node);
    expect(node.core.softState().role).toBe("candidate");
    node.core.step(message({ type: MessageType.VOTE_RESPONSE, from: 2, to: 1, term }));
    drain(node);
    expect(node.core.softState().role).toBe("leader");
    // Reference: thesis 4.2.1, section 5.2 (a majority of the voters)
  });

  it("promoting a learner that lags the leader is refused with RAFT_ERR_LEARNER_BEHIND", () => {
    const net = clusterWithLearners([4], { learnerLagEntriesMax: 2 });
    net.isolate(4);
    for (let i = 0; i < 5; i++) net.core(1).propose(bytes(`e${i}`));
    net.deliver();
    expect(() => net.core(1).proposeConfigChange({ promote: [4] })).toThrow(expect.objectContaining({ code: "RAFT_ERR_LEARNER_BEHIND" }));
    net.heal();
    net.tickAll(3);
    change(net, 1, { promote: [4] });
    expect(net.core(1).clusterConfig().config.voters).toEqual([1, 2, 3, 4]);
    // Reference: etcd's learner promotion check; thesis 4.2.1 (catch up before voting)
  });
});

describe("changes of one voter (thesis 4.2)", () => {
  it("a change of one voter goes straight to the new configuration, in force on append", () => {
    const net = clusterWithLearners([4]);
    net.isolate(2);
    net.isolate(3);
    net.core(1).proposeConfigChange({ promote: [4] });
    // In force on the leader at once, before it commits (thesis 4.1).
    const pending = net.core(1).clusterConfig();
    expect(pending.config.voters).toEqual([1, 2, 3, 4]);
    expect(pending.config.votersOutgoing).toEqual([]);
    expect(pending.index).toBeGreaterThan(net.core(1).commitIndex());
    net.heal();
    net.deliver();
    expect(net.core(1).commitIndex()).toBeGreaterThanOrEqual(pending.index);
    for (const id of [2, 3, 4]) expect(net.core(id).clusterConfig().config.voters).toEqual([1, 2, 3, 4]);
    // Reference: thesis 4.1 ("a server always uses the latest configuration in its log"), 4.2
  });

  it("a second change is refused while the first is not committed", () => {
    const net = clusterWithLearners([4, 5]);
    net.isolate(2);
    net.isolate(3);
    net.core(1).proposeConfigChange({ promote: [4] });
    expect(() => net.core(1).proposeConfigChange({ promote: [5] })).toThrow(expect.objectContaining({ code: "RAFT_ERR_CONFIG_CHANGE_IN_PROGRESS" }));
    // Reference: thesis 4.1 ("a leader does not begin a new configuration change until the previous one is committed")
  });

  it("a new leader refuses a change until it has committed an entry of its own term", () => {
    const net = new Network([1, 2, 3], noPreVote);
    net.elect(1);
    net.isolate(1);
    // Node 2 wins term 2 but its no-op has not reached anyone yet.
    net.partition([2], [3]);
    const core2 = net.core(2);
    for (let i = 0; i < 100 && core2.softState().role !== "candidate"; i++) core2.tick();
    net.processReadies();
    core2.step(message({ type: MessageType.VOTE_RESPONSE, from: 3, to: 2, term: core2.softState().term }));
    net.processReadies();
    expect(core2.softState().role).toBe("leader");
    expect(() => core2.proposeConfigChange({ remove: [1] })).toThrow(expect.objectContaining({ code: "RAFT_ERR_LEADER_NOT_READY" }));
    net.heal();
    net.isolate(1);
    net.tickAll(2);
    change(net, 2, { remove: [1] });
    expect(net.core(2).clusterConfig().config.voters).toEqual([2, 3]);
    // Reference: Ongaro, raft-dev 2015 "bug in single-server membership changes" (thesis 4.1 erratum)
  });

  it("removing the last voter is refused; so is an unknown member, a reused id and an empty change", () => {
    const net = new Network([1], noPreVote);
    net.elect(1);
    net.deliver();
    const core = net.core(1);
    expect(() => core.proposeConfigChange({ remove: [1] })).toThrow(expect.objectContaining({ code: "RAFT_ERR_LAST_VOTER" }));
    expect(() => core.proposeConfigChange({ remove: [7] })).toThrow(expect.objectContaining({ code: "RAFT_ERR_UNKNOWN_MEMBER" }));
    expect(() => core.proposeConfigChange({ promote: [7] })).toThrow(expect.objectContaining({ code: "RAFT_ERR_UNKNOWN_MEMBER" }));
    expect(() => core.proposeConfigChange({})).toThrow(expect.objectContaining({ code: "RAFT_ERR_INVALID_CONFIG_CHANGE" }));
    change(net, 1, { addLearners: [member(2)] });
    change(net, 1, { remove: [2] });
    expect(net.core(1).clusterConfig().config.removed).toEqual([2]);
    expect(() => core.proposeConfigChange({ addLearners: [member(2)] })).toThrow(expect.objectContaining({ code: "RAFT_ERR_INVALID_CONFIG_CHANGE" }));
    // Reference: thesis 4.2; etcd (ids of removed members are never reused)
  });

  it("an uncommitted configuration overwritten by a new leader puts the previous one back in force", () => {
    const net = clusterWithLearners([4]);
    net.isolate(1);
    net.core(1).proposeConfigChange({ promote: [4] });
    net.deliver();
    expect(net.core(1).clusterConfig().config.voters).toEqual([1, 2, 3, 4]);
    net.elect(2);
    net.heal();
    net.tickAll(2);
    expect(net.core(1).softState().leader).toBe(2);
    expect(net.core(1).clusterConfig().config.voters).toEqual([1, 2, 3]);
    expect(net.core(1).clusterConfig().config.learners).toEqual([4]);
    // Reference: thesis 4.1 (a configuration entry, like any uncommitted entry, may be removed), section 5.3
  });
});

describe("joint consensus (thesis 4.3)", () => {
  it("a change of several voters goes through C_old,new and leaves it by itself once committed", () => {
    const net = clusterWithLearners([4, 5]);
    const jointIndex = net.core(1).proposeConfigChange({ promote: [4, 5], remove: [2, 3] }).index;
    const joint = net.core(1).clusterConfig();
    expect(joint.config.voters).toEqual([1, 4, 5]);
    expect(joint.config.votersOutgoing).toEqual([1, 2, 3]);
    net.deliver();
    const left = net.core(1).clusterConfig();
    expect(left.index).toBeGreaterThan(jointIndex);
    expect(left.config).toMatchObject({ voters: [1, 4, 5], votersOutgoing: [], removed: [2, 3] });
    expect(net.core(1).commitIndex()).toBeGreaterThanOrEqual(left.index);
    // Reference: thesis 4.3 ("once C_old,new has been committed ... the leader can create ... C_new")
  });

  it.each([
    { cut: [4, 5], holder: 2, why: "a majority of C_old {1,2,3} but only 1 of C_new {1,4,5}" },
    { cut: [2, 3], holder: 4, why: "a majority of C_new {1,4,5} but only 1 of C_old {1,2,3}" },
  ])("while joint, an entry does not commit with $why", ({ cut, holder }) => {
    const net = clusterWithLearners([4, 5]);
    for (const id of cut) net.isolate(id);
    const jointIndex = net.core(1).proposeConfigChange({ promote: [4, 5], remove: [2, 3] }).index;
    net.deliver();
    expect(net.node(holder).storage.lastIndex()).toBeGreaterThanOrEqual(jointIndex);
    expect(net.core(1).commitIndex()).toBeLessThan(jointIndex);
    net.heal();
    net.tickAll(3);
    expect(net.core(1).commitIndex()).toBeGreaterThan(jointIndex);
    // Reference: thesis 4.3 ("agreement ... requires separate majorities from both")
  });

  it("while joint, an election needs a majority of both halves", () => {
    const storage = new MemoryStorage();
    storage.append([configEntry(1, 1, [1, 4, 5], [1, 2, 3])]);
    storage.setHardState({ term: 1, vote: 0, commit: 1 });
    const node = { core: newCore(1, [], storage, noPreVote), storage };
    for (let i = 0; i < 30 && node.core.softState().role === "follower"; i++) node.core.tick();
    drain(node);
    const term = node.core.softState().term;
    for (const from of [2, 3]) node.core.step(message({ type: MessageType.VOTE_RESPONSE, from, to: 1, term }));
    drain(node);
    expect(node.core.softState().role).toBe("candidate");
    node.core.step(message({ type: MessageType.VOTE_RESPONSE, from: 4, to: 1, term }));
    drain(node);
    expect(node.core.softState().role).toBe("leader");
    // Reference: thesis 4.3
  });

  it("a new leader that inherits a joint configuration leaves it once its first entry commits", () => {
    const net = clusterWithLearners([4, 5]);
    net.core(1).proposeConfigChange({ promote: [4, 5], remove: [3] });
    // The joint entry reaches everyone, but no acknowledgement reaches node 1: it never commits it.
    net.filters.push((m) => !(m.to === 1 && m.type === MessageType.APPEND_RESPONSE));
    net.deliver();
    expect(net.core(1).commitIndex()).toBeLessThan(net.core(1).clusterConfig().index);
    net.heal();
    net.isolate(1);
    net.elect(4);
    net.deliver();
    const config = net.core(4).clusterConfig();
    expect(config.config.votersOutgoing).toEqual([]);
    expect(config.config.voters).toEqual([1, 2, 4, 5]);
    expect(net.core(4).commitIndex()).toBeGreaterThanOrEqual(config.index);
    // Reference: thesis 4.3; a joint entry is committed under its own configuration before C_new is appended
  });
});

describe("the configuration survives everything (thesis 4.1, section 7)", () => {
  it("a restart recovers the configuration from the log, with a change in flight", () => {
    const net = clusterWithLearners([4]);
    net.isolate(2);
    net.isolate(3);
    net.core(1).proposeConfigChange({ promote: [4] });
    net.deliver();
    const before = net.core(1).clusterConfig();
    const restarted = net.restart(1, [1, 2, 3], noPreVote);
    expect(restarted.core.clusterConfig()).toEqual(before);
    // Reference: thesis 4.1 (the configuration is in the log)
  });

  it("the configuration at the host's applied index stays readable while a leader's snapshot is installed", () => {
    const storage = new MemoryStorage();
    storage.append([configEntry(1, 1, [1, 2, 3]), { index: 2, term: 1, type: EntryType.NORMAL, data: bytes("a") }]);
    storage.setHardState({ term: 1, vote: 0, commit: 2 });
    const node = { core: newCore(2, [], storage, noPreVote), storage, incoming: { chunks: [] as Uint8Array[] } };
    drain(node);
    expect(node.core.appliedIndex()).toBe(2);
    // A snapshot at 50 with another configuration arrives (in one chunk): accepted, not yet installed by the host.
    const meta = { index: 50, term: 2, sizeBytes: 1, config: clusterConfigOf([1, 2, 3, 4]) };
    node.core.step(message({ type: MessageType.SNAPSHOT, from: 1, to: 2, term: 2, snapshot: { meta, offset: 0, data: new Uint8Array([9]), done: true } }));
    expect(node.core.clusterConfig()).toMatchObject({ index: 50, config: { voters: [1, 2, 3, 4] } });
    // The host may still snapshot what it applied before: the configuration there is the old one.
    expect(node.core.clusterConfigAt(2).voters).toEqual([1, 2, 3]);
    // Reference: section 7 (InstallSnapshot), thesis 4.1
  });

  it("a learner added after compaction gets the configuration with the snapshot", () => {
    const net = clusterWithLearners([]);
    for (let i = 0; i < 5; i++) net.core(1).propose(bytes(`e${i}`));
    net.deliver();
    for (const id of [1, 2, 3]) {
      const node = net.node(id);
      const index = node.core.appliedIndex();
      const meta = { index, term: node.storage.term(index), sizeBytes: 1, config: node.core.clusterConfigAt(index) };
      node.storage.createSnapshot(meta, new Uint8Array([1]));
      node.storage.compact(index);
      node.core.snapshotTaken(meta);
    }
    net.addNode(4, [], noPreVote);
    change(net, 1, { addLearners: [member(4)] });
    net.tickAll(3);
    expect(net.node(4).storage.snapshotMeta().config.voters).toEqual([1, 2, 3]);
    expect(net.core(4).clusterConfig().config).toEqual(net.core(1).clusterConfig().config);
    // Reference: section 7 ("the snapshot also includes ... the latest configuration"), thesis 5.1
  });
});

describe("removing members (thesis 4.2.2, 4.2.3)", () => {
  it("a leader that removes itself leads without counting itself, then hands over and steps down", () => {
    const net = clusterWithLearners([]);
    net.isolate(3);
    const index = net.core(1).proposeConfigChange({ remove: [1] }).index;
    net.deliver();
    // {1, 2} acknowledged, but 1 does not count: {2} is not a majority of {2, 3}.
    expect(net.core(1).softState().role).toBe("leader");
    expect(net.core(1).commitIndex()).toBeLessThan(index);
    net.heal();
    net.tickAll(2);
    expect(net.core(1).softState().role).toBe("follower");
    expect([2, 3]).toContain(net.core(2).softState().leader);
    expect(net.sent.some((m) => m.type === MessageType.TIMEOUT_NOW && m.from === 1)).toBe(true);
    const leader = net.core(2).softState().leader;
    net.core(leader).propose(bytes("after"));
    net.deliver();
    expect(net.appliedData(2)).toContain("after");
    // Reference: thesis 4.2.2 ("the leader ... steps down once the C_new entry is committed")
  });

  it("a removed member that missed its removal does not disrupt the cluster", () => {
    const net = new Network([1, 2, 3], { preVote: true, checkQuorum: true });
    net.elect(1);
    net.isolate(3);
    change(net, 1, { remove: [3] });
    expect(net.core(1).clusterConfig().config.voters).toEqual([1, 2]);
    const term = net.core(1).softState().term;
    net.heal();
    net.tick(3, 50);
    for (let i = 0; i < 5; i++) net.tickAll(1);
    expect(net.core(1).softState()).toMatchObject({ role: "leader", term });
    expect(net.core(2).softState().term).toBe(term);
    // Reference: thesis 4.2.3 (PreVote, and ignoring RequestVote while a leader is known)
  });

  it("a node whose log does not yet make it a voter grants its vote once its leader is silent for an election timeout", () => {
    // Node 4 is a learner in its log, but a later configuration (not yet on node 4) made it a
    // voter: the other voters may need its vote. It heard from leader 1, then nothing more.
    // The draw 0 makes its randomized election timeout exactly the base: the lease must end
    // all the same, for it is measured from the last word of the leader.
    const storage = new MemoryStorage();
    storage.append([configEntry(1, 1, [1, 2, 3]), { index: 2, term: 1, type: EntryType.CLUSTER_CONFIG, data: encodeConfigEntry(clusterConfigOf([1, 2, 3], [4])) }]);
    storage.setHardState({ term: 1, vote: 0, commit: 2 });
    const node = { core: newCore(4, [], storage, { preVote: true, checkQuorum: true, random: () => 0 }), storage };
    node.core.step(message({ type: MessageType.HEARTBEAT, from: 1, to: 4, term: 2, commit: 2 }));
    drain(node);
    expect(node.core.softState().leader).toBe(1);
    for (let i = 0; i < 30; i++) node.core.tick();
    drain(node);
    node.core.step(message({ type: MessageType.PRE_VOTE, from: 2, to: 4, term: 3, index: 5, logTerm: 2 }));
    node.core.step(message({ type: MessageType.VOTE, from: 2, to: 4, term: 3, index: 5, logTerm: 2 }));
    const answers = drain(node).filter((m) => m.to === 2);
    expect(answers.map((m) => [m.type, m.reject])).toEqual([
      [MessageType.PRE_VOTE_RESPONSE, false],
      [MessageType.VOTE_RESPONSE, false],
    ]);
    // Reference: thesis 4.1 ("a server grants its vote to a candidate that is not part of the server's latest configuration"), 4.2.3 (the lease: "within the minimum election timeout of hearing from a current leader")
  });

  it("CheckQuorum counts voters only: a leader that hears only from a learner steps down", () => {
    const net = clusterWithLearners([4], { checkQuorum: true });
    net.isolate(2);
    net.isolate(3);
    net.tickAll(25);
    expect(net.core(1).softState().role).not.toBe("leader");
    // Reference: thesis 6.2 (a leader without a quorum steps down), 4.2.1
  });

  it("leadership cannot be transferred to a learner", () => {
    const net = clusterWithLearners([4]);
    expect(() => net.core(1).transferLeadership(4)).toThrow(expect.objectContaining({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" }));
    // Reference: thesis 3.10 (the transferee must be a voter)
  });
});
