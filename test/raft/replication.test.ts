/**
 * Log replication and commitment: Raft paper sections 5.3 and 5.4.2 (Figures 7 and 8),
 * with fast conflict backup, probe/replicate states, flow control and batching.
 */
import { describe, expect, it } from "vitest";
import type { Message } from "../../src/proto/schema.js";
import { MemoryStorage } from "../../src/raft/index.js";
import { bytes, drain, entry, message, MessageType, Network, newCore, storageWithTerms, text } from "./helpers.js";

const noPreVote = { preVote: false, checkQuorum: false };

/** Node 1 as leader of `voters` at term 1 (pre-vote off), everything persisted. */
function leader(voters = [1, 2, 3], options = {}, storage = new MemoryStorage()) {
  const core = newCore(1, voters, storage, { ...noPreVote, ...options });
  const node = { core, storage };
  for (let i = 0; i < 30 && core.softState().role === "follower"; i++) core.tick();
  drain(node);
  const term = core.softState().term;
  for (const from of voters.slice(1)) core.step(message({ type: MessageType.VOTE_RESPONSE, from, to: 1, term }));
  const sent = drain(node);
  if (core.softState().role !== "leader") throw new Error("not leader");
  return { core, storage, node, sent, term };
}

function appendsTo(messages: Message[], to: number): Message[] {
  return messages.filter((m) => m.type === MessageType.APPEND && m.to === to);
}

function ack(from: number, term: number, index: number): Message {
  return message({ type: MessageType.APPEND_RESPONSE, from, to: 1, term, index });
}

function logTerms(storage: MemoryStorage): number[] {
  const terms: number[] = [];
  for (let i = storage.firstIndex(); i <= storage.lastIndex(); i++) terms.push(storage.term(i));
  return terms;
}

describe("log replication (section 5.3)", () => {
  it("a new leader appends an empty entry of its term and replicates it", () => {
    const { core, storage, sent, term } = leader();
    expect(storage.lastIndex()).toBe(1);
    expect(storage.term(1)).toBe(term);
    expect(storage.entries(1, 2, 100)[0].data.length).toBe(0);
    expect(appendsTo(sent, 2)[0].entries.map((e) => e.index)).toEqual([1]);
    expect(core.commitIndex()).toBe(0);
    // Reference: section 5.4.2 and thesis section 6.4 ("each leader commit a blank no-op entry into the log at the start of its term")
  });

  it("the leader appends a proposal to its log and sends it to every follower", () => {
    const { core, node, term } = leader();
    core.step(ack(2, term, 1));
    core.step(ack(3, term, 1));
    drain(node);
    const position = core.propose(bytes("x"));
    expect(position).toEqual({ index: 2, term });
    const out = drain(node);
    for (const to of [2, 3]) {
      const appends = appendsTo(out, to);
      expect(appends.length).toBe(1);
      expect(text(appends[0].entries.at(-1)!.data)).toBe("x");
    }
    expect(node.storage.lastIndex()).toBe(2);
    // Reference: section 5.3 ("The leader appends the command to its log as a new entry, then issues AppendEntries RPCs in parallel")
  });

  it("an entry replicated on a majority is committed and applied by the leader", () => {
    const { core, node, term } = leader();
    core.propose(bytes("x"));
    drain(node);
    expect(core.commitIndex()).toBe(0);
    core.step(ack(2, term, 2));
    expect(core.commitIndex()).toBe(2);
    const ready = core.ready();
    expect(ready.committedEntries.map((e) => e.index)).toEqual([1, 2]);
    core.advance(ready);
    // Reference: section 5.3 ("A log entry is committed once the leader that created the entry has replicated it on a majority")
  });

  it("followers learn the commit index from the leader and apply in order", () => {
    const net = new Network([1, 2, 3], noPreVote);
    net.elect(1);
    for (const data of ["a", "b", "c"]) net.core(1).propose(bytes(data));
    net.deliver();
    net.tickAll(2); // heartbeats carry the commit index
    for (const id of [1, 2, 3]) expect(net.appliedData(id)).toEqual(["a", "b", "c"]);
    // Reference: section 5.3 ("Once a follower learns that a log entry is committed, it applies the entry to its local state machine (in log order)")
  });

  it("a follower rejects an append whose previous entry it does not hold (consistency check)", () => {
    const storage = storageWithTerms([1, 1]);
    const node = { core: newCore(2, [1, 2, 3], storage, noPreVote), storage };
    node.core.step(message({ type: MessageType.APPEND, from: 1, to: 2, term: 2, index: 2, logTerm: 2, entries: [entry(3, 2)] }));
    const [reply] = drain(node);
    expect(reply).toMatchObject({ type: MessageType.APPEND_RESPONSE, reject: true, index: 2 });
    expect(storage.lastIndex()).toBe(2);
    // Reference: section 5.3 ("If the follower does not find an entry in its log with the same index and term, then it refuses the new entries")
  });

  it("a follower deletes a conflicting entry and all that follow it, then appends the leader's", () => {
    const storage = storageWithTerms([1, 1, 2, 2]);
    const node = { core: newCore(2, [1, 2, 3], storage, noPreVote), storage };
    node.core.step(message({ type: MessageType.APPEND, from: 1, to: 2, term: 3, index: 2, logTerm: 1, entries: [entry(3, 3)] }));
    const [reply] = drain(node);
    expect(reply).toMatchObject({ reject: false, index: 3 });
    expect(logTerms(storage)).toEqual([1, 1, 3]);
    // Reference: section 5.3 / Figure 2 ("If an existing entry conflicts with a new one ... delete the existing entry and all that follow it")
  });

  it("a follower keeps its later entries when a delayed append brings entries it already has", () => {
    const storage = storageWithTerms([1, 1, 1, 1]);
    const node = { core: newCore(2, [1, 2, 3], storage, noPreVote), storage };
    node.core.step(message({ type: MessageType.APPEND, from: 1, to: 2, term: 1, index: 1, logTerm: 1, entries: [entry(2, 1)] }));
    const [reply] = drain(node);
    expect(reply).toMatchObject({ reject: false, index: 2 });
    expect(storage.lastIndex()).toBe(4);
    // Reference: Figure 2 ("If an existing entry conflicts with a new one" — only a conflict truncates)
  });

  it("the leader repairs every follower log of Figure 7", () => {
    // Figure 7: the leader's log and followers (a)-(f), by entry terms.
    const logs: Record<number, number[]> = {
      1: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6],
      2: [1, 1, 1, 4, 4, 5, 5, 6, 6], // (a)
      3: [1, 1, 1, 4], // (b)
      4: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], // (c)
      5: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], // (d)
      6: [1, 1, 1, 4, 4, 4, 4], // (e)
      7: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], // (f)
    };
    const ids = [1, 2, 3, 4, 5, 6, 7];
    const storages = new Map(ids.map((id) => [id, storageWithTerms(logs[id], 7)]));
    const net = new Network(ids, noPreVote, storages);
    net.elect(1);
    expect(net.core(1).softState().term).toBe(8);
    net.core(1).propose(bytes("after"));
    net.deliver();
    const expected = [...logs[1], 8, 8];
    for (const id of ids) expect(logTerms(net.node(id).storage), `node ${id}`).toEqual(expected);
    // Reference: section 5.3, Figure 7 ("the leader handles inconsistencies by forcing the followers' logs to duplicate its own")
  });

  it("fast backup: the leader skips a whole conflicting term per round trip", () => {
    // The follower holds 60 entries the leader does not, from three terms (2, 3, 4).
    const common = [1, 1, 1, 1, 1];
    const follower = [...common, ...Array(20).fill(2), ...Array(20).fill(3), ...Array(20).fill(4)];
    const leaderLog = [...common, ...Array(60).fill(5)];
    const storages = new Map([
      [1, storageWithTerms(leaderLog, 5)],
      [2, storageWithTerms(follower, 5)],
      [3, storageWithTerms(leaderLog, 5)],
    ]);
    const net = new Network([1, 2, 3], noPreVote, storages);
    net.partition([2], [1, 3]);
    net.elect(1);
    net.heal();
    net.sent.length = 0;
    net.core(1).propose(bytes("x"));
    net.tickAll(3); // the first heartbeat response restarts probing of node 2
    const rejections = net.sent.filter((m) => m.type === MessageType.APPEND_RESPONSE && m.from === 2 && m.reject);
    // Without the hint this would take about 60 round trips; with it, one per term or fewer.
    expect(rejections.length).toBeLessThanOrEqual(3);
    expect(logTerms(net.node(2).storage)).toEqual(logTerms(net.node(1).storage));
    // Reference: section 5.3 ("the follower can include the term of the conflicting entry and the first index it stores for that term")
  });

  it("a rejection carries the follower's last index when its log is shorter than the probe", () => {
    const storage = storageWithTerms([1, 1, 1]);
    const node = { core: newCore(2, [1, 2, 3], storage, noPreVote), storage };
    node.core.step(message({ type: MessageType.APPEND, from: 1, to: 2, term: 2, index: 10, logTerm: 2 }));
    const [reply] = drain(node);
    expect(reply).toMatchObject({ reject: true, index: 10, rejectHint: 3, rejectTerm: 1 });
    // Reference: section 5.3 (conflict hint)
  });
});

describe("commitment (section 5.4.2)", () => {
  it("a leader does not commit an entry of an earlier term by counting replicas (Figure 8)", () => {
    // Index 2 (term 2) is on nodes 1 and 2, a majority, but was never committed.
    const storage = storageWithTerms([1, 2], 2);
    const { core, node, term } = leader([1, 2, 3], {}, storage);
    expect(term).toBe(3);
    core.step(ack(2, term, 2));
    drain(node);
    expect(core.commitIndex()).toBe(0);
    // Once an entry of the current term is replicated on a majority, everything before it commits.
    core.step(ack(2, term, 3));
    expect(core.commitIndex()).toBe(3);
    // Reference: section 5.4.2, Figure 8 ("Raft never commits log entries from previous terms by counting replicas")
  });

  it("the leader counts itself toward a majority only for entries it has persisted", () => {
    const { core, node, term } = leader();
    core.propose(bytes("x"));
    const ready = core.ready(); // entry 2 handed out, not yet durable
    core.step(ack(2, term, 2));
    expect(core.commitIndex()).toBe(1);
    node.storage.append(ready.entries);
    core.advance(ready);
    expect(core.commitIndex()).toBe(2);
    // Reference: thesis section 10.2.1 (the leader may send before persisting, but counts itself only once persisted)
  });

  it("a majority of followers commits without the leader's own copy", () => {
    const { core, term } = leader();
    core.propose(bytes("x"));
    core.ready(); // not advanced
    core.step(ack(2, term, 2));
    core.step(ack(3, term, 2));
    expect(core.commitIndex()).toBe(2);
    // Reference: section 5.3 (a majority of the servers), thesis section 10.2.1
  });
});

describe("probe, replicate and flow control (section 5.3, etcd-style)", () => {
  it("in probe state the leader sends one append at a time until the follower answers", () => {
    const { core, node, term } = leader();
    for (let i = 0; i < 5; i++) {
      core.propose(bytes(`p${i}`));
      const out = drain(node);
      expect(appendsTo(out, 2).length).toBe(0); // the no-op probe is still unanswered
    }
    core.step(ack(2, term, 1));
    expect(core.progress().find((p) => p.id === 2)!.state).toBe("replicate");
    const out = drain(node);
    expect(appendsTo(out, 2).length).toBe(1);
    expect(appendsTo(out, 2)[0].entries.map((e) => e.index)).toEqual([2, 3, 4, 5, 6]);
    // Reference: section 5.3 (probing for the match point one request at a time)
  });

  it("in replicate state the leader pipelines up to inflightMessagesMax appends", () => {
    const { core, node, term } = leader([1, 2, 3], { inflightMessagesMax: 3 });
    core.step(ack(2, term, 1));
    drain(node);
    let sent = 0;
    for (let i = 0; i < 6; i++) {
      core.propose(bytes(`p${i}`));
      sent += appendsTo(drain(node), 2).length;
    }
    expect(sent).toBe(3);
    core.step(ack(2, term, 3)); // frees the first two
    const out = appendsTo(drain(node), 2);
    expect(out.length).toBe(1);
    expect(out[0].entries.map((e) => e.index)).toEqual([5, 6, 7]);
    // Reference: section 5.3 (pipelining), flow control by in-flight count
  });

  it("the in-flight byte limit pauses a follower before the count limit does", () => {
    const { core, node, term } = leader([1, 2, 3], { inflightBytesMax: 250 });
    core.step(ack(2, term, 1));
    drain(node);
    let sent = 0;
    for (let i = 0; i < 6; i++) {
      core.propose(new Uint8Array(100));
      sent += appendsTo(drain(node), 2).length;
    }
    expect(sent).toBe(3); // 100 + 100 + 100 >= 250 bytes: paused
    // Reference: section 5.3, flow control by in-flight bytes
  });

  it("an append message carries at most messageBytesMax of entries (but at least one entry)", () => {
    const { core, node, term } = leader([1, 2, 3], { messageBytesMax: 250 });
    core.step(ack(2, term, 1));
    drain(node);
    core.proposeBatch([new Uint8Array(100), new Uint8Array(100), new Uint8Array(100), new Uint8Array(400)]);
    const appends = appendsTo(drain(node), 2);
    expect(appends.map((m) => m.entries.length)).toEqual([2, 1, 1]);
    // Reference: section 5.3 (AppendEntries may carry "more than one for efficiency"); max message size
  });

  it("proposals made between two Readies travel to each follower in one append", () => {
    const { core, node, term } = leader();
    core.step(ack(2, term, 1));
    drain(node);
    for (let i = 0; i < 10; i++) core.propose(bytes(`p${i}`));
    core.proposeBatch([bytes("q0"), bytes("q1")]);
    const appends = appendsTo(drain(node), 2);
    expect(appends.length).toBe(1);
    expect(appends[0].entries.length).toBe(12);
    // Reference: section 5.3 (batching)
  });

  it("a replicate-state follower that rejects goes back to probe and is repaired", () => {
    const { core, node, term } = leader();
    core.step(ack(2, term, 1));
    core.propose(bytes("x"));
    drain(node);
    core.step(message({ type: MessageType.APPEND_RESPONSE, from: 2, to: 1, term, index: 1, reject: true, rejectHint: 0, rejectTerm: 0 }));
    expect(core.progress().find((p) => p.id === 2)!.state).toBe("replicate"); // stale: index 1 already matched
    core.step(message({ type: MessageType.APPEND_RESPONSE, from: 2, to: 1, term, index: 2, reject: true, rejectHint: 1, rejectTerm: term }));
    expect(core.progress().find((p) => p.id === 2)).toMatchObject({ state: "probe", next: 2 });
    // Reference: section 5.3 ("After a rejection, the leader decrements nextIndex and retries")
  });

  it("an idle leader sends only heartbeats, one per follower per interval", () => {
    const net = new Network([1, 2, 3], { ...noPreVote, heartbeatIntervalTicks: 2 });
    net.elect(1);
    net.tickAll(2);
    net.sent.length = 0;
    net.tickAll(20);
    const fromLeader = net.sent.filter((m) => m.from === 1);
    expect(fromLeader.every((m) => m.type === MessageType.HEARTBEAT)).toBe(true);
    expect(fromLeader.length).toBe(20);
    // Reference: section 5.2 ("Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries)")
  });

  it("a follower that lost every append is re-probed when it answers a heartbeat", () => {
    const net = new Network([1, 2, 3], noPreVote);
    net.elect(1);
    net.tickAll(1);
    net.filters.push((m) => !(m.type === MessageType.APPEND && m.to === 3));
    for (let i = 0; i < 3; i++) net.core(1).propose(bytes(`lost-${i}`));
    net.deliver();
    expect(net.core(1).progress().find((p) => p.id === 3)!.state).toBe("replicate");
    net.heal();
    net.tickAll(2); // no new proposal: the heartbeat response alone must repair node 3
    expect(net.appliedData(3)).toEqual(["lost-0", "lost-1", "lost-2"]);
    // Reference: section 5.3 ("the leader retries AppendEntries RPCs indefinitely ... until all followers eventually store all log entries")
  });

  it("reportUnreachable moves a replicating follower back to probe", () => {
    const { core, node, term } = leader();
    core.step(ack(2, term, 1));
    drain(node);
    expect(core.progress().find((p) => p.id === 2)!.state).toBe("replicate");
    core.reportUnreachable(2);
    expect(core.progress().find((p) => p.id === 2)).toMatchObject({ state: "probe", next: 2 });
    // Reference: section 5.3; etcd's ReportUnreachable
  });

  it("proposals beyond uncommittedBytesMax are dropped with RAFT_ERR_PROPOSAL_DROPPED", () => {
    const { core, node, term } = leader([1, 2, 3], { uncommittedBytesMax: 300 });
    core.propose(new Uint8Array(200));
    expect(() => core.propose(new Uint8Array(200))).toThrow(expect.objectContaining({ code: "RAFT_ERR_PROPOSAL_DROPPED" }));
    drain(node);
    core.step(ack(2, term, 2));
    drain(node); // the committed entry is handed out: its bytes no longer count
    expect(core.propose(new Uint8Array(200)).index).toBe(3);
    // Reference: flow control for proposals (etcd's MaxUncommittedEntriesSize)
  });

  it("an empty proposal is refused (empty entries are the leader's no-ops)", () => {
    const { core } = leader();
    expect(() => core.propose(new Uint8Array(0))).toThrow(expect.objectContaining({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" }));
    // Reference: section 5.4.2 / thesis 6.4 (the no-op entry), types.ts host loop step 5
  });

  it("a leader ignores answers from nodes outside the configuration: they never count toward a commit", () => {
    const { core, node, term } = leader();
    const position = core.propose(bytes("x"));
    drain(node);
    // Node 9 is no member: its acknowledgement must not make {1, 9} look like a majority.
    core.step(ack(9, term, position.index));
    drain(node);
    expect(core.commitIndex()).toBeLessThan(position.index);
    expect(core.progress().map((p) => p.id)).not.toContain(9);
    // Reference: section 5.3 ("replicated it on a majority of the servers"), thesis 4.1
  });
});
