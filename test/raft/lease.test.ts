/** Lease-based reads (Raft thesis section 6.4.1; src/raft/lease.ts): off by default. */
import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../src/raft/index.js";
import { bytes, MessageType, Network, newCore, text } from "./helpers.js";

const lease = { readMode: "lease" as const, checkQuorum: true };

function leaderWithLease(): Network {
  const net = new Network([1, 2, 3], lease);
  net.elect(1);
  net.core(1).propose(bytes("w"));
  net.deliver();
  net.tickAll(1); // a heartbeat round acknowledged by every voter
  return net;
}

function heartbeatsSince(net: Network, mark: number): number {
  return net.sent.slice(mark).filter((m) => m.type === MessageType.HEARTBEAT).length;
}

describe("lease reads (thesis 6.4.1)", () => {
  it("within the lease the leader answers a read at once, without a heartbeat round", () => {
    const net = leaderWithLease();
    const mark = net.sent.length;
    net.core(1).readIndex(bytes("r"));
    net.processReadies();
    expect(net.node(1).readStates.map((r) => [text(r.requestId), r.index])).toEqual([["r", net.core(1).commitIndex()]]);
    expect(heartbeatsSince(net, mark)).toBe(0);
    // Reference: thesis 6.4.1 ("the leader would use a lease ... to avoid the heartbeat round")
  });

  it("once a quorum has not acknowledged a heartbeat within the lease, a read waits for a heartbeat round", () => {
    const net = leaderWithLease();
    net.filters.push((m) => m.type !== MessageType.HEARTBEAT_RESPONSE);
    for (let i = 0; i < 8; i++) net.core(1).tick(); // 10 ticks election timeout, 2 ticks drift: lease over
    net.deliver();
    net.core(1).readIndex(bytes("late"));
    net.deliver();
    expect(net.node(1).readStates).toEqual([]);
    net.heal();
    net.tickAll(1);
    expect(net.node(1).readStates.map((r) => text(r.requestId))).toEqual(["late"]);
  });

  it("no lease read after the leader started a leadership transfer", () => {
    const net = leaderWithLease();
    net.core(1).transferLeadership(2);
    net.core(1).readIndex(bytes("r"));
    net.processReadies();
    expect(net.node(1).readStates).toEqual([]);
    // Reference: thesis 3.10 (the transferee campaigns at once, bypassing the lease)
  });

  it("needs CheckQuorum: the lease rests on voters ignoring campaigns while they hear from a leader", () => {
    expect(() => newCore(1, [1, 2, 3], new MemoryStorage(), { readMode: "lease", checkQuorum: false })).toThrow(/needs checkQuorum/);
  });
});
