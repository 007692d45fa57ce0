/**
 * Tests of the simulator itself: the PRNG replays, the network does what its fault
 * mix says, the state machine's snapshot round-trips and detects damage, and every
 * checker fires on a synthetic violation (a checker that cannot fail checks nothing).
 */
import { describe, expect, it } from "vitest";
import { emptyMessage, MessageType, type Message } from "../../src/proto/schema.js";
import type { RaftLogStorage } from "../../src/raft/types.js";
import { Checkers, SafetyViolation } from "./checkers.js";
import { Network, RELIABLE_NETWORK, isReply } from "./network.js";
import { Rng } from "../../src/rng.js";
import { encodeCommand, StateMachine } from "./state-machine.js";
import { TickQueue, VirtualClock } from "./time.js";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";

describe("Rng", () => {
  it("replays the same sequence from the same seed and differs across seeds", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const seqA = Array.from({ length: 50 }, () => a.nextUint32());
    const seqB = Array.from({ length: 50 }, () => b.nextUint32());
    const seqC = Array.from({ length: 50 }, () => c.nextUint32());
    expect(seqA).toEqual(seqB);
    expect(seqA).not.toEqual(seqC);
    expect(new Set(seqA).size).toBe(50);
  });

  it("derives streams from (seed, label), not from the parent's position", () => {
    const a = new Rng(7);
    const b = new Rng(7);
    b.nextUint32();
    b.nextUint32();
    expect(a.derive("node-1").nextUint32()).toBe(b.derive("node-1").nextUint32());
    expect(a.derive("node-1").nextUint32()).not.toBe(a.derive("node-2").nextUint32());
  });

  it("draws floats in [0, 1) and integers within inclusive bounds", () => {
    const rng = new Rng(1);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const f = rng.float();
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(1);
      const n = rng.between(3, 6);
      expect(n).toBeGreaterThanOrEqual(3);
      expect(n).toBeLessThanOrEqual(6);
      seen.add(n);
    }
    expect([...seen].sort()).toEqual([3, 4, 5, 6]);
  });
});

describe("TickQueue", () => {
  it("hands items out by due tick, ties in insertion order", () => {
    const q = new TickQueue<string>();
    q.push(5, "e1");
    q.push(2, "b");
    q.push(5, "e2");
    q.push(1, "a");
    expect(q.popDue(0)).toEqual([]);
    expect(q.popDue(4)).toEqual(["a", "b"]);
    expect(q.popDue(10)).toEqual(["e1", "e2"]);
    expect(q.size).toBe(0);
  });
});

function message(from: number, to: number, type: MessageType = MessageType.APPEND, index = 0): Message {
  return { ...emptyMessage(), type, from, to, term: 1, index };
}

function makeNetwork(seed = 1) {
  const clock = new VirtualClock();
  const network = new Network({ rng: new Rng(seed), clock, nodeIds: [1, 2, 3, 4, 5] });
  const deliverAt = (ticks: number) => {
    const out: Message[] = [];
    for (let i = 0; i < ticks; i++) {
      clock.advance();
      out.push(...network.deliverDue());
    }
    return out;
  };
  return { clock, network, deliverAt };
}

describe("Network", () => {
  it("delivers a copy after the delay, through the wire codec", () => {
    const { network, deliverAt } = makeNetwork();
    const sent = { ...message(1, 2), entries: [{ term: 1, index: 1, type: 0 as const, data: encodeCommand("x") }] };
    network.send(sent);
    const [got] = deliverAt(1);
    expect(got).toBeDefined();
    expect(got).not.toBe(sent);
    expect(new TextDecoder().decode(got!.entries[0]!.data)).toBe("x");
    expect(network.stats.sent(MessageType.APPEND)).toBe(1);
    expect(network.stats.appendEntriesSent).toBe(1);
  });

  it("partitions, isolates and heals; a partition also cuts messages in flight", () => {
    const { network, deliverAt } = makeNetwork();
    network.partition([[1, 2], [3, 4, 5]]);
    expect(network.connected(1, 2)).toBe(true);
    expect(network.connected(1, 3)).toBe(false);
    network.send(message(1, 3));
    network.send(message(1, 2));
    expect(deliverAt(1).map((m) => m.to)).toEqual([2]);
    network.heal();
    network.isolate(4);
    expect(network.connected(4, 5)).toBe(false);
    expect(network.connected(3, 5)).toBe(true);
    network.heal();
    network.send(message(1, 3));
    network.partition([[1], [2, 3, 4, 5]]);
    expect(deliverAt(2)).toEqual([]);
  });

  it("drops only replies when only replies are lossy", () => {
    const { network, deliverAt } = makeNetwork();
    network.setFaults({ ...RELIABLE_NETWORK, dropReplyProbability: 1 });
    network.send(message(1, 2, MessageType.APPEND));
    network.send(message(2, 1, MessageType.APPEND_RESPONSE));
    network.send(message(2, 1, MessageType.VOTE_RESPONSE));
    const got = deliverAt(1);
    expect(got.map((m) => m.type)).toEqual([MessageType.APPEND]);
    expect(isReply(message(1, 2, MessageType.HEARTBEAT_RESPONSE))).toBe(true);
  });

  it("duplicates, delays and reorders per its fault mix", () => {
    const { network, deliverAt } = makeNetwork(3);
    network.setFaults({ ...RELIABLE_NETWORK, duplicateProbability: 0.5, delayTicksMin: 1, delayTicksMax: 5, longDelayProbability: 0.1, longDelayTicksMax: 100 });
    for (let i = 0; i < 200; i++) network.send(message(1, 2, MessageType.APPEND, i));
    const got = deliverAt(101);
    expect(got.length).toBe(200 + network.stats.duplicated);
    expect(network.stats.duplicated).toBeGreaterThan(50);
    const order = got.map((m) => m.index);
    let maxSeen = -1;
    let overtaken = 0;
    for (const index of order) {
      if (index < maxSeen) overtaken++;
      maxSeen = Math.max(maxSeen, index);
    }
    expect(overtaken).toBeGreaterThan(100);
    expect(Math.max(...order.slice(-5))).toBeGreaterThan(0);
  });
});

describe("StateMachine", () => {
  it("round-trips through its snapshot, padding included, and detects damage", () => {
    const sm = new StateMachine();
    sm.apply(1, new Uint8Array(0));
    sm.apply(2, encodeCommand("a"));
    sm.apply(3, encodeCommand("b"));
    const data = sm.serialize(10_000);
    const copy = StateMachine.deserialize(data);
    expect(copy.appliedIndex).toBe(3);
    expect(copy.hash).toBe(sm.hash);
    expect(copy.has("a") && copy.has("b")).toBe(true);
    const damaged = data.slice();
    damaged[data.length - 5] ^= 1;
    expect(() => StateMachine.deserialize(damaged)).toThrow(/padding/);
    expect(() => StateMachine.deserialize(data.subarray(0, data.length - 1))).toThrow(/bytes/);
    expect(() => sm.apply(5, encodeCommand("gap"))).toThrow(/apply 5 after 3/);
  });
});

/** A tiny read-only log for checker tests: terms[i] is the term at index i+1. */
function fakeLog(terms: number[], snapshotIndex = 0, snapshotTerm = 0): RaftLogStorage {
  return {
    hardState: () => ({ term: 0, vote: 0, commit: 0 }),
    snapshotMeta: () => ({ index: snapshotIndex, term: snapshotTerm, config: clusterConfigOf([]), sizeBytes: 0 }),
    firstIndex: () => snapshotIndex + 1,
    typedEntryIndexes: () => [],
    lastIndex: () => terms.length,
    term: (index: number) => (index === snapshotIndex ? snapshotTerm : index === 0 ? 0 : terms[index - 1]!),
    entries: () => [],
    readSnapshotChunk: () => new Uint8Array(0),
  };
}

const entry = (index: number, term: number, command = `c${index}`) => ({ index, term, type: 0 as const, data: encodeCommand(command) });

describe("Checkers fire on violations", () => {
  const setup = () => {
    const clock = new VirtualClock();
    clock.advance();
    return new Checkers(clock);
  };

  it("two leaders in one term", () => {
    const checkers = setup();
    const log = fakeLog([]);
    checkers.observeNodeState(1, { role: "leader", term: 2, leader: 1 }, { term: 2, vote: 1, commit: 0 }, log);
    checkers.observeNodeState(2, { role: "follower", term: 2, leader: 1 }, { term: 2, vote: 1, commit: 0 }, log);
    expect(() => checkers.observeNodeState(3, { role: "leader", term: 2, leader: 3 }, { term: 2, vote: 3, commit: 0 }, log)).toThrow(SafetyViolation);
  });

  it("log matching: same index and term, different data or different predecessor", () => {
    const checkers = setup();
    checkers.afterDurableEntries(1, fakeLog([1, 2]), [entry(1, 1), entry(2, 2)]);
    expect(() => checkers.afterDurableEntries(2, fakeLog([1, 2]), [entry(2, 2, "other")])).toThrow(/log-matching/);
    expect(() => checkers.afterDurableEntries(3, fakeLog([3, 2]), [entry(2, 2)])).toThrow(/log-matching/);
  });

  it("commit going backwards, a changed vote, commit beyond the durable log", () => {
    const checkers = setup();
    checkers.afterDurableHardState(1, { term: 2, vote: 1, commit: 2 }, fakeLog([1, 2]));
    expect(() => checkers.afterDurableHardState(1, { term: 2, vote: 1, commit: 1 }, fakeLog([1, 2]))).toThrow(/commit-monotonic/);
    expect(() => checkers.afterDurableHardState(1, { term: 2, vote: 3, commit: 2 }, fakeLog([1, 2]))).toThrow(/one-vote-per-term/);
    expect(() => checkers.afterDurableHardState(1, { term: 3, vote: 0, commit: 5 }, fakeLog([1, 2]))).toThrow(/commit-durable/);
    checkers.observeNodeState(2, { role: "follower", term: 3, leader: 0 }, { term: 3, vote: 0, commit: 4 }, fakeLog([]));
    expect(() => checkers.observeNodeState(2, { role: "follower", term: 3, leader: 0 }, { term: 3, vote: 0, commit: 3 }, fakeLog([]))).toThrow(/commit-monotonic/);
  });

  it("apply gaps, applying twice, different data applied at one index, damaged bytes applied", () => {
    const checkers = setup();
    const log = fakeLog([1, 1, 1]);
    checkers.afterDurableEntries(9, log, [entry(1, 1), entry(2, 1)]);
    checkers.onStart(1, 0, { term: 0, vote: 0, commit: 0 });
    checkers.onApply(1, entry(1, 1), 11, log, 1);
    expect(() => checkers.onApply(1, entry(3, 1), 33, log, 1)).toThrow(/apply-order/);
    checkers.onStart(2, 0, { term: 0, vote: 0, commit: 0 });
    expect(() => checkers.onApply(2, entry(1, 1, "different"), 12, log, 1)).toThrow(/state-machine-safety/);
    checkers.onStart(3, 0, { term: 0, vote: 0, commit: 0 });
    checkers.onApply(3, entry(1, 1), 11, log, 1);
    expect(() => checkers.onApply(3, entry(1, 1), 11, log, 1)).toThrow(/apply-order/);
    checkers.onStart(4, 0, { term: 0, vote: 0, commit: 0 });
    expect(() => checkers.onApply(4, entry(1, 1), 11, fakeLog([]), 1)).toThrow(/apply-durable/);
    // The first node to apply index 2 applies other bytes than were written there (a damaged record kept).
    checkers.onStart(5, 0, { term: 0, vote: 0, commit: 0 });
    checkers.onApply(5, entry(1, 1), 11, log, 1);
    expect(() => checkers.onApply(5, entry(2, 1, "flipped"), 22, log, 1)).toThrow(/applied-intact/);
  });

  it("leader completeness: a later leader without a committed entry, or writing over it", () => {
    const checkers = setup();
    checkers.afterDurableHardState(1, { term: 2, vote: 1, commit: 2 }, fakeLog([1, 2]));
    expect(() => checkers.observeNodeState(4, { role: "leader", term: 3, leader: 4 }, { term: 3, vote: 4, commit: 0 }, fakeLog([1, 1]))).toThrow(/leader-completeness/);
    expect(() => checkers.afterDurableEntries(5, fakeLog([1, 3]), [entry(2, 3)])).toThrow(/leader-completeness/);
    // An entry of an older term at a committed index is a stale leader's, not a violation.
    checkers.afterDurableEntries(6, fakeLog([1, 1]), [entry(2, 1)]);
    // A node truncating an entry at or below its own durable commit.
    expect(() => checkers.beforeDurableEntries(1, fakeLog([1, 2]), [entry(2, 4)])).toThrow(/no-committed-truncation/);
  });

  it("durability: a restart must find the hard state that was persisted", () => {
    const checkers = setup();
    checkers.afterDurableHardState(1, { term: 2, vote: 1, commit: 0 }, fakeLog([]));
    expect(() => checkers.onStart(1, 0, { term: 1, vote: 0, commit: 0 })).toThrow(/durability/);
  });
});
