/**
 * The persistence contract (types.ts, outbox.ts, ready.ts): nothing that depends on
 * state not yet durable leaves before advance(); Ready/advance edge cases; restart.
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../src/raft/index.js";
import { bytes, drain, entry, message, MessageType, newCore, persist, storageWithTerms } from "./helpers.js";

const noPreVote = { preVote: false, checkQuorum: false };

describe("persistence contract (Figure 2: persist before responding)", () => {
  it("a follower acknowledges an append only after advance() of the Ready carrying the entries", () => {
    const storage = new MemoryStorage();
    const core = newCore(2, [1, 2, 3], storage, noPreVote);
    core.step(message({ type: MessageType.APPEND, from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: [entry(1, 1, "a")] }));
    const ready = core.ready();
    expect(ready.entries.map((e) => e.index)).toEqual([1]);
    expect(ready.messages.filter((m) => m.type === MessageType.APPEND_RESPONSE)).toEqual([]);
    expect(core.takeMessages()).toEqual([]);
    persist(storage, ready, { chunks: [] });
    core.advance(ready);
    const released = core.takeMessages();
    expect(released.map((m) => [m.type, m.index, m.reject])).toEqual([[MessageType.APPEND_RESPONSE, 1, false]]);
    // Reference: Figure 2 ("Updated on stable storage before responding to RPCs"), section 5.3
  });

  it("an acknowledgement waiting for persistence is dropped when a newer leader truncates the entries it claims", () => {
    // Node 2 takes entries 2..5 of term 2 from leader 1 (the acknowledgement of 5 waits for
    // persistence), then, before they are durable, the leader of term 3 truncates them from 4.
    const storage = new MemoryStorage();
    storage.append([entry(1, 1, "a")]);
    const core = newCore(2, [1, 2, 3], storage, noPreVote);
    const stale = [entry(2, 2, "b"), entry(3, 2, "c"), entry(4, 2, "d"), entry(5, 2, "e")];
    core.step(message({ type: MessageType.APPEND, from: 1, to: 2, term: 2, index: 1, logTerm: 1, entries: stale }));
    core.step(message({ type: MessageType.APPEND, from: 3, to: 2, term: 3, index: 3, logTerm: 2, entries: [entry(4, 3, "x")] }));
    const ready = core.ready();
    expect(ready.entries.map((e) => [e.index, e.term])).toEqual([[2, 2], [3, 2], [4, 3]]);
    persist(storage, ready, { chunks: [] });
    core.advance(ready);
    const acks = core.takeMessages().filter((m) => m.type === MessageType.APPEND_RESPONSE && !m.reject);
    // Leader 1 must not hear "up to 5": its entries 4 and 5 were never durable here.
    expect(acks.filter((m) => m.to === 1 && m.index > 3)).toEqual([]);
    expect(acks.filter((m) => m.to === 3).map((m) => m.index)).toEqual([4]);
    // Reference: Figure 2 ("Updated on stable storage before responding to RPCs"), section 5.3
  });

  it("a vote is granted on the wire only after advance() of the Ready carrying the vote", () => {
    const storage = new MemoryStorage();
    const core = newCore(1, [1, 2, 3], storage, noPreVote);
    core.step(message({ type: MessageType.VOTE, from: 2, to: 1, term: 1 }));
    const ready = core.ready();
    expect(ready.hardState).toEqual({ term: 1, vote: 2, commit: 0 });
    expect(ready.messages).toEqual([]);
    persist(storage, ready, { chunks: [] });
    core.advance(ready);
    expect(core.takeMessages().map((m) => [m.type, m.to, m.reject])).toEqual([[MessageType.VOTE_RESPONSE, 2, false]]);
    // Reference: Figure 2 (votedFor is persistent state), section 5.2
  });

  it("a candidate asks for votes only once its term and self-vote are durable, and wins only then", () => {
    const storage = new MemoryStorage();
    const core = newCore(1, [1, 2, 3], storage, noPreVote);
    for (let i = 0; i < 30 && core.softState().role === "follower"; i++) core.tick();
    expect(core.softState().role).toBe("candidate");
    const votesSent = (messages: { type: MessageType; to: number }[]) => messages.filter((m) => m.type === MessageType.VOTE).map((m) => m.to);
    // Nothing asks for a vote in term 1 while term 1 is not durable (src/raft/messages.ts).
    expect(votesSent(core.takeMessages())).toEqual([]);
    const ready = core.ready();
    expect(ready.hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(votesSent(ready.messages)).toEqual([]);
    // Grants arriving before the self-vote is durable (a majority of peers) elect nobody.
    core.step(message({ type: MessageType.VOTE_RESPONSE, from: 2, to: 1, term: 1 }));
    core.step(message({ type: MessageType.VOTE_RESPONSE, from: 3, to: 1, term: 1 }));
    expect(core.softState().role).toBe("candidate");
    persist(storage, ready, { chunks: [] });
    core.advance(ready);
    expect(storage.hardState()).toMatchObject({ term: 1, vote: 1 });
    expect(core.softState().role).toBe("leader");
    // Released by advance(): the requests leave once the term they ask in is on disk.
    expect(votesSent(core.takeMessages())).toEqual([2, 3]);
    // Reference: section 5.2 and Figure 2 (a leader's term and vote are durable, so it can never win the same term twice)
  });

  it("a candidate that crashes before its term is durable has asked nobody for a vote in it", () => {
    const storage = new MemoryStorage();
    const core = newCore(1, [1, 2, 3], storage, noPreVote);
    for (let i = 0; i < 30 && core.softState().role === "follower"; i++) core.tick();
    const ready = core.ready();
    // The crash: this Ready is never persisted; what left the node is all a peer could have seen.
    const left = [...ready.messages, ...core.takeMessages()];
    expect(left.filter((m) => m.type === MessageType.VOTE)).toEqual([]);
    expect(storage.hardState().term).toBe(0);
    // Reference: REPAIR.md rule 5 (a voter that lost its vote learns every campaign's term from the candidates)
  });

  it("a single-node cluster becomes leader only once its self-vote is durable", () => {
    const storage = new MemoryStorage();
    const core = newCore(1, [1], storage);
    for (let i = 0; i < 30 && core.softState().role === "follower"; i++) core.tick();
    expect(core.softState().role).toBe("candidate");
    const ready = core.ready();
    persist(storage, ready, { chunks: [] });
    core.advance(ready);
    expect(core.softState().role).toBe("leader");
    // Reference: section 5.2, Figure 2
  });

  it("committed entries are handed out only once durable: never ahead of the entries persisted with them", () => {
    const storage = new MemoryStorage();
    const node = { core: newCore(2, [1, 2, 3], storage, noPreVote), storage };
    node.core.step(message({ type: MessageType.APPEND, from: 1, to: 2, term: 1, index: 0, logTerm: 0, commit: 2, entries: [entry(1, 1, "a"), entry(2, 1, "b")] }));
    const first = node.core.ready();
    // Entries 1-2 are in this Ready: the host persists them (step 4) before applying (step 5).
    expect(first.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(first.committedEntries.map((e) => e.index)).toEqual([1, 2]);
    expect(first.hardState?.commit).toBe(2);
    // While it is outstanding, a new entry arrives and is committed: it waits for the next Ready.
    node.core.step(message({ type: MessageType.APPEND, from: 1, to: 2, term: 1, index: 2, logTerm: 1, commit: 3, entries: [entry(3, 1, "c")] }));
    expect(node.core.hasReady()).toBe(false);
    persist(storage, first, { chunks: [] });
    node.core.advance(first);
    const second = node.core.ready();
    expect(second.entries.map((e) => e.index)).toEqual([3]);
    expect(second.committedEntries.map((e) => e.index)).toEqual([3]);
    // Reference: types.ts host loop; Figure 2 ("If commitIndex > lastApplied: increment lastApplied, apply")
  });

  it("takeMessages() hands out safe messages while a Ready is outstanding, never withheld ones", () => {
    const storage = new MemoryStorage();
    const core = newCore(1, [1, 2, 3], storage, noPreVote);
    for (let i = 0; i < 30 && core.softState().role === "follower"; i++) core.tick();
    let ready = core.ready();
    persist(storage, ready, { chunks: [] });
    core.advance(ready);
    core.takeMessages();
    core.step(message({ type: MessageType.VOTE_RESPONSE, from: 2, to: 1, term: 1 }));
    ready = core.ready();
    persist(storage, ready, { chunks: [] });
    core.advance(ready);
    core.takeMessages();
    expect(core.softState().role).toBe("leader");
    // A Ready is outstanding (slow disk); heartbeats keep flowing, an append ack from a lower-term node does not matter.
    core.propose(bytes("x"));
    ready = core.ready();
    core.tick();
    const during = core.takeMessages();
    expect(during.filter((m) => m.type === MessageType.HEARTBEAT).map((m) => m.to)).toEqual([2, 3]);
    core.step(message({ type: MessageType.VOTE, from: 2, to: 1, term: 1 })); // rejected: answered after persistence
    expect(core.takeMessages().filter((m) => m.type === MessageType.VOTE_RESPONSE)).toEqual([]);
    persist(storage, ready, { chunks: [] });
    core.advance(ready);
    // It was queued after that Ready was taken, so it travels with the next one.
    expect(core.takeMessages().filter((m) => m.type === MessageType.VOTE_RESPONSE)).toEqual([]);
    const next = core.ready();
    expect(next.messages.filter((m) => m.type === MessageType.VOTE_RESPONSE)).toEqual([]);
    persist(storage, next, { chunks: [] });
    core.advance(next);
    expect(core.takeMessages().filter((m) => m.type === MessageType.VOTE_RESPONSE).map((m) => [m.to, m.reject])).toEqual([[2, true]]);
    // Reference: thesis section 10.2.1 (messages independent of the disk need not wait for it)
  });
});

describe("Ready and advance", () => {
  it("ready() may not be taken again before advance()", () => {
    const core = newCore(1, [1, 2, 3], new MemoryStorage(), noPreVote);
    core.step(message({ type: MessageType.VOTE, from: 2, to: 1, term: 1 }));
    core.ready();
    expect(core.hasReady()).toBe(false);
    expect(() => core.ready()).toThrow(/advance/);
    // Reference: types.ts host loop, step 2
  });

  it("advance() must be given the outstanding Ready", () => {
    const core = newCore(1, [1, 2, 3], new MemoryStorage(), noPreVote);
    core.step(message({ type: MessageType.VOTE, from: 2, to: 1, term: 1 }));
    const ready = core.ready();
    expect(() => core.advance({ ...ready })).toThrow(/advance/);
    core.advance(ready);
    expect(() => core.advance(ready)).toThrow(/advance/);
    // Reference: types.ts host loop, step 6
  });

  it("soft and hard state appear only when they change; a quiet core has no Ready", () => {
    const storage = new MemoryStorage();
    const node = { core: newCore(1, [1, 2, 3], storage, noPreVote), storage };
    expect(node.core.hasReady()).toBe(false);
    node.core.step(message({ type: MessageType.HEARTBEAT, from: 2, to: 1, term: 4 }));
    const ready = node.core.ready();
    expect(ready.softState).toEqual({ role: "follower", leader: 2, term: 4 });
    expect(ready.hardState).toEqual({ term: 4, vote: 0, commit: 0 });
    persist(storage, ready, { chunks: [] });
    node.core.advance(ready);
    node.core.step(message({ type: MessageType.HEARTBEAT, from: 2, to: 1, term: 4 }));
    const next = node.core.ready();
    expect(next.softState).toBeUndefined();
    expect(next.hardState).toBeUndefined();
    expect(next.messages.map((m) => m.type)).toEqual([MessageType.HEARTBEAT_RESPONSE]);
    node.core.advance(next);
    expect(node.core.hasReady()).toBe(false);
    // Reference: types.ts (Ready fields)
  });

  it("a restarted core resumes from its durable term, vote and commit, and does not re-apply applied entries", () => {
    const storage = storageWithTerms([1, 1, 2], 2);
    storage.setHardState({ term: 2, vote: 3, commit: 3 });
    const core = newCore(1, [1, 2, 3], storage, { ...noPreVote, appliedIndex: 2 });
    expect(core.hardState()).toEqual({ term: 2, vote: 3, commit: 3 });
    const ready = core.ready();
    expect(ready.committedEntries.map((e) => e.index)).toEqual([3]);
    expect(ready.hardState).toBeUndefined();
    core.advance(ready);
    expect(core.appliedIndex()).toBe(3);
    // The durable vote still binds: no vote for another candidate in term 2.
    core.step(message({ type: MessageType.VOTE, from: 2, to: 1, term: 2, index: 3, logTerm: 2 }));
    expect(drain({ core, storage }).map((m) => m.reject)).toEqual([true]);
    // Reference: Figure 2 (persistent state on all servers), section 5.2
  });
});
