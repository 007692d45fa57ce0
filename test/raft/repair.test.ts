/**
 * Protocol-aware recovery in the core (src/raft/recovery.ts, REPAIR.md; Alagappan et al.,
 * FAST'18): a node that lost durable state never lets the loss count toward a quorum, and
 * is repaired from the leader.
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../src/raft/index.js";
import { bytes, drain, entry, message, MessageType, Network, newCore, takeReady } from "./helpers.js";
import { EntryType, type Message } from "../../src/proto/schema.js";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";
import { encodeConfigEntry } from "../../src/raft/config-log.js";

const options = { preVote: false, checkQuorum: false };

/** A 3-node cluster led by 1 with `count` committed entries everywhere. */
function clusterWith(count: number): Network {
  const net = new Network([1, 2, 3], options);
  net.elect(1);
  for (let i = 0; i < count; i++) net.core(1).propose(bytes(`e${i}`));
  net.deliver();
  net.tickAll(1);
  return net;
}

/** Restarts node `id` as if its storage had lost the log from `lostFrom` on (the host truncated it there). */
function restartWithLostLog(net: Network, id: number, lostFrom: number): void {
  const old = net.node(id);
  const lostTo = old.storage.lastIndex();
  const storage = new MemoryStorage();
  const kept = [];
  for (let i = 1; i < lostFrom; i++) kept.push(old.storage.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0]);
  storage.append(kept);
  const hard = old.storage.hardState();
  storage.setHardState({ ...hard, commit: Math.min(hard.commit, lostFrom - 1) });
  net.nodes.set(id, { ...old, core: newCore(id, [1, 2, 3], storage, { ...options, damage: { lostFromIndex: lostFrom, lostToIndex: lostTo, hardStateLost: false } }), storage, applied: [] });
}

function sentBy(net: Network, id: number, type: number): Message[] {
  return net.sent.filter((m) => m.from === id && m.type === type);
}

describe("a node that lost part of its log", () => {
  it("neither campaigns nor grants votes until the leader has refilled its log", () => {
    const net = clusterWith(5);
    net.isolate(1);
    restartWithLostLog(net, 2, 3);
    net.sent.length = 0;
    expect(net.core(2).recovering()).toMatchObject({ lostFromIndex: 3 });
    net.tick(2, 50);
    net.deliver();
    expect(sentBy(net, 2, MessageType.VOTE)).toEqual([]);
    // Node 3 campaigns: node 2 must refuse (its short log no longer shows what it promised).
    const core3 = net.core(3);
    for (let i = 0; i < 60 && core3.softState().role !== "candidate"; i++) core3.tick();
    net.deliver();
    const answers = net.sent.filter((m) => m.from === 2 && m.type === MessageType.VOTE_RESPONSE);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.every((m) => m.reject)).toBe(true);
    expect(core3.softState().role).not.toBe("leader");
    // Reference: FAST'18 CTRL (no vote while entries are lost), section 5.4.1 (the vote rests on the log)
  });

  it("tells the leader where its log ends; the leader resends from there, and then it is whole again", () => {
    const net = clusterWith(6);
    restartWithLostLog(net, 2, 4);
    net.tickAll(2);
    const repair = sentBy(net, 2, MessageType.REPAIR);
    expect(repair[0]).toMatchObject({ to: 1, index: 4 });
    expect(net.sent.some((m) => m.from === 1 && m.to === 2 && m.type === MessageType.REPAIR_RESPONSE)).toBe(true);
    net.tickAll(3);
    expect(net.node(2).storage.lastIndex()).toBe(net.node(1).storage.lastIndex());
    expect(net.core(2).recovering()).toBeUndefined();
    // Reference: FAST'18 CTRL (repair from the leader), section 5.3 (the leader resends what the follower lacks)
  });

  it("the leader stops counting the old match index: a commit needs the repaired copy", () => {
    const net = clusterWith(4);
    net.isolate(3);
    restartWithLostLog(net, 2, 2);
    // Node 2 talks to the leader but drops every append: it stays behind.
    net.filters.push((m) => !(m.to === 2 && m.type === MessageType.APPEND));
    net.tickAll(2);
    const position = net.core(1).propose(bytes("new"));
    net.deliver();
    net.tickAll(2);
    expect(net.core(1).commitIndex()).toBeLessThan(position.index);
    // Reference: FAST'18 CTRL (a lost entry is never counted toward a quorum)
  });

  it("a heartbeat crediting it with more than it holds does not move its commit past its log", () => {
    const storage = new MemoryStorage();
    storage.append([entry(1, 1, "a"), entry(2, 1, "b")]);
    storage.setHardState({ term: 1, vote: 0, commit: 2 });
    const node = { core: newCore(2, [1, 2, 3], storage, { ...options, damage: { lostFromIndex: 3, lostToIndex: 9, hardStateLost: false } }), storage };
    node.core.step(message({ type: MessageType.HEARTBEAT, from: 1, to: 2, term: 1, commit: 9 }));
    drain(node);
    expect(node.core.commitIndex()).toBe(2);
  });
});

describe("a node that lost its term and vote", () => {
  function lostHardState(voters = [1, 2, 3], lostFromIndex = 0) {
    const storage = new MemoryStorage();
    storage.append([entry(1, 3, "a")]);
    const core = newCore(2, voters, storage, { ...options, damage: { lostFromIndex, lostToIndex: 1, hardStateLost: true } });
    return { core, storage };
  }

  /** Voter `from`'s answer to the latest term probe it got from node 2 (the round's nonce echoed). */
  function answer(sent: Message[], from: number, term: number, reject = false): Message {
    const probe = sent.filter((m) => m.type === MessageType.TERM_PROBE && m.to === from).at(-1);
    if (probe === undefined) throw new Error(`no term probe was sent to ${from}`);
    return message({ type: MessageType.TERM_PROBE_RESPONSE, from, to: 2, term, reject, index: probe.index });
  }

  it("does not vote until every other voter told its term; then takes the highest with a vote for itself", () => {
    const node = lostHardState();
    for (let i = 0; i < 30; i++) node.core.tick();
    const probes = drain(node).filter((m) => m.type === MessageType.TERM_PROBE);
    expect([...new Set(probes.map((m) => m.to))].sort()).toEqual([1, 3]);
    // One answer is not enough: the voter that did not answer may be the candidate it voted for.
    node.core.step(answer(probes, 1, 5));
    drain(node);
    node.core.step(message({ type: MessageType.VOTE, from: 3, to: 2, term: 7, index: 1, logTerm: 3 }));
    expect(drain(node).find((m) => m.type === MessageType.VOTE_RESPONSE)?.reject).toBe(true);
    node.core.step(answer(probes, 3, 7));
    drain(node);
    expect(node.core.recovering()).toBeUndefined();
    // It may have voted in 7: it takes 7 with a vote for itself, never for another in 7...
    expect(node.core.hardState()).toMatchObject({ term: 7, vote: 2 });
    node.core.step(message({ type: MessageType.VOTE, from: 1, to: 2, term: 7, index: 1, logTerm: 3 }));
    expect(drain(node).find((m) => m.type === MessageType.VOTE_RESPONSE)?.reject).toBe(true);
    // ... and votes normally in later terms.
    node.core.step(message({ type: MessageType.VOTE, from: 1, to: 2, term: 8, index: 1, logTerm: 3 }));
    expect(drain(node).find((m) => m.type === MessageType.VOTE_RESPONSE)?.reject).toBe(false);
    // Reference: FAST'18 CTRL (learn the term from the voters), Figure 2 (at most one vote per term)
  });

  it("five voters: answers that meet every majority are not enough, a candidate it voted for may win later with that vote", () => {
    // Node 2 voted for 5 in term 9, then lost that; 5's campaign goes on, and 1, 3 and 4 have not
    // heard of term 9 yet. Were 2 to take their term 4, it could vote for another candidate in 9
    // while 5 still wins 9 with its old vote and two of 1, 3, 4: two leaders in term 9.
    const node = lostHardState([1, 2, 3, 4, 5]);
    for (let i = 0; i < 30; i++) node.core.tick();
    const probes = drain(node);
    for (const from of [1, 3, 4]) node.core.step(answer(probes, from, 4));
    drain(node);
    expect(node.core.recovering()).toMatchObject({ hardStateLost: true });
    node.core.step(answer(probes, 5, 9));
    drain(node);
    expect(node.core.recovering()).toBeUndefined();
    expect(node.core.hardState()).toMatchObject({ term: 9, vote: 2 });
    // Reference: Figure 3 (Election Safety), FAST'18 CTRL
  });

  it("an answer to an earlier round does not count: it may be older than the damage", () => {
    const node = lostHardState();
    for (let i = 0; i < 10; i++) node.core.tick();
    const early = drain(node);
    for (let i = 0; i < 10; i++) node.core.tick();
    const late = drain(node);
    node.core.step(answer(early, 1, 5));
    node.core.step(answer(late, 3, 6));
    drain(node);
    expect(node.core.recovering()).toMatchObject({ hardStateLost: true });
    node.core.step(answer(late, 1, 5));
    drain(node);
    expect(node.core.hardState()).toMatchObject({ term: 6, vote: 2 });
  });

  it("voters recovering themselves must answer too, but do not count among the whole voters that meet every majority", () => {
    const three = lostHardState();
    for (let i = 0; i < 10; i++) three.core.tick();
    const probes = drain(three);
    three.core.step(answer(probes, 1, 5));
    three.core.step(answer(probes, 3, 9, true));
    drain(three);
    expect(three.core.recovering()).toMatchObject({ hardStateLost: true });
    // Five voters: three whole ones meet every majority; the recovering one is no live candidate.
    const five = lostHardState([1, 2, 3, 4, 5]);
    for (let i = 0; i < 10; i++) five.core.tick();
    const asked = drain(five);
    for (const from of [1, 3, 4]) five.core.step(answer(asked, from, 5));
    five.core.step(answer(asked, 5, 9, true));
    drain(five);
    expect(five.core.recovering()).toBeUndefined();
    expect(five.core.hardState()).toMatchObject({ term: 9, vote: 2 });
  });

  it("is whole only once the term and vote it took are durable: the host then removes its repair mark", () => {
    const node = lostHardState();
    for (let i = 0; i < 10; i++) node.core.tick();
    const ready = takeReady(node);
    // The answers arrive while the Ready that sent the probes is being made durable.
    node.core.step(answer(ready.messages, 1, 5));
    node.core.step(answer(ready.messages, 3, 6));
    node.core.advance(ready);
    // Term 6 and the vote for itself are not durable yet: were the host to remove its mark now and
    // crash, it would restart with neither, free to vote again in term 6.
    expect(node.core.recovering()).toMatchObject({ hardStateLost: false });
    expect(node.storage.hardState().term).toBeLessThan(6);
    drain(node);
    expect(node.storage.hardState()).toMatchObject({ term: 6, vote: 2 });
    expect(node.core.recovering()).toBeUndefined();
    // Reference: Figure 2 ("updated on stable storage before responding to RPCs"), REPAIR.md rule 5
  });

  it("with its log lost too, waits for the log first: its configuration may lack the voters its lost vote was cast among", () => {
    const node = lostHardState([1, 2, 3], 2);
    for (let i = 0; i < 30; i++) node.core.tick();
    const probes = drain(node);
    node.core.step(answer(probes, 1, 5));
    node.core.step(answer(probes, 3, 5));
    drain(node);
    expect(node.core.recovering()).toMatchObject({ hardStateLost: true, lostFromIndex: 2 });
  });

  it("a node whose damage took every configuration entry does not stop as unrepairable: it waits for a leader", () => {
    // The whole log lost (a damaged newest snapshot, no older one): no configuration, no voter to ask.
    const storage = new MemoryStorage();
    const core = newCore(2, [], storage, { ...options, damage: { lostFromIndex: 1, lostToIndex: 9, hardStateLost: false } });
    const node = { core, storage };
    for (let i = 0; i < 200; i++) core.tick();
    drain(node);
    expect(core.recovering()).toMatchObject({ lostFromIndex: 1 });
    // A leader makes contact: within a round of asking, it is asked to repair from index 1.
    core.step(message({ type: MessageType.HEARTBEAT, from: 1, to: 2, term: 3 }));
    for (let i = 0; i < 10; i++) core.tick();
    expect(drain(node).find((m) => m.type === MessageType.REPAIR)).toMatchObject({ to: 1, index: 1 });
    // Reference: FAST'18 CTRL (a node repairs from the leader), REPAIR.md rule 6 (only a quorum of recovering voters is unrepairable)
  });

  it("a node whose damage kept only a configuration from before it was added does not judge by it: it waits for a leader", () => {
    // Node 4, a learner that got the whole log from a leader that had not compacted: the damage
    // took the entry that added it, and kept the founding configuration {1, 2, 3} at index 1.
    const storage = new MemoryStorage();
    storage.append([{ index: 1, term: 1, type: EntryType.CLUSTER_CONFIG, data: encodeConfigEntry(clusterConfigOf([1, 2, 3])) }]);
    storage.setHardState({ term: 3, vote: 0, commit: 1 });
    const core = newCore(4, [], storage, { ...options, damage: { lostFromIndex: 2, lostToIndex: 9, hardStateLost: false } });
    const node = { core, storage };
    // The voters of that old configuration say they are recovering (a quorum of it), and no leader
    // is heard of for many election timeouts: the cluster's configuration may count other voters.
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 10; i++) core.tick();
      const probes = drain(node).filter((m) => m.type === MessageType.TERM_PROBE);
      for (const from of [1, 2]) core.step(message({ type: MessageType.TERM_PROBE_RESPONSE, from, to: 4, term: 3, reject: true, index: probes.at(-1)!.index }));
    }
    drain(node);
    expect(core.recovering()).toMatchObject({ lostFromIndex: 2 });
    core.step(message({ type: MessageType.HEARTBEAT, from: 3, to: 4, term: 3 }));
    expect(drain(node).find((m) => m.type === MessageType.REPAIR)).toMatchObject({ to: 3, index: 2 });
    // Reference: REPAIR.md rule 6 (only a configuration naming the node is one to judge by), MEMBERSHIP.md (the configuration is the latest in the log)
  });

  it("stops loudly too when the leader it heard from is gone: it cannot campaign, so its term and leader never change", () => {
    const node = lostHardState();
    node.core.step(message({ type: MessageType.HEARTBEAT, from: 1, to: 2, term: 3 }));
    drain(node);
    expect(node.core.softState().leader).toBe(1);
    expect(() => {
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 10; i++) node.core.tick();
        node.core.step(answer(drain(node), 3, 3, true));
      }
    }).toThrow(expect.objectContaining({ code: "RAFT_ERR_UNREPAIRABLE" }));
    // Reference: REPAIR.md rule 6 (no leader for three election timeouts), section 5.2 (a follower that hears nothing for an election timeout assumes no leader)
  });

  it("stops loudly when a quorum is recovering and no leader appears: it never invents data", () => {
    const node = lostHardState();
    expect(() => {
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 10; i++) node.core.tick();
        node.core.step(answer(drain(node), 3, 4, true));
      }
    }).toThrow(expect.objectContaining({ code: "RAFT_ERR_UNREPAIRABLE" }));
  });
});
