/** Linearizable reads with ReadIndex (Raft thesis, section 6.4). */
import { describe, expect, it } from "vitest";
import type { ClusterConfig } from "../../src/proto/schema.js";
import { ReadOnly } from "../../src/raft/read-only.js";
import { bytes, MessageType, Network, text, type Options } from "./helpers.js";

describe("ReadIndex (thesis section 6.4)", () => {
  it("the leader answers a read with its commit index after a heartbeat round confirms its leadership", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.core(1).propose(bytes("w"));
    net.deliver();
    const commit = net.core(1).commitIndex();
    net.core(1).readIndex(bytes("r1"));
    net.deliver();
    expect(net.node(1).readStates.map((r) => [text(r.requestId), r.index])).toEqual([["r1", commit]]);
    // Reference: thesis section 6.4 ("The leader needs to make sure it hasn't been superseded ... it sends a new round of heartbeats")
  });

  it("a read is not answered while only a minority confirms the leadership", () => {
    const net = new Network([1, 2, 3, 4, 5]);
    net.elect(1);
    net.filters.push((m) => !(m.type === MessageType.HEARTBEAT_RESPONSE && [3, 4, 5].includes(m.from)));
    net.core(1).readIndex(bytes("r"));
    net.deliver();
    net.tickAll(3);
    expect(net.node(1).readStates).toEqual([]);
    net.heal();
    net.tickAll(1);
    expect(net.node(1).readStates.map((r) => text(r.requestId))).toEqual(["r"]);
    // Reference: thesis section 6.4 ("a majority of the cluster")
  });

  it("a new leader serves no read until it has committed an entry of its own term", () => {
    // Become leader, but hold back every append acknowledgement so the no-op does not commit.
    const fresh = new Network([1, 2, 3]);
    fresh.filters.push((m) => m.type !== MessageType.APPEND_RESPONSE);
    fresh.elect(1);
    fresh.core(1).readIndex(bytes("early"));
    fresh.tickAll(3);
    expect(fresh.core(1).commitIndex()).toBe(0);
    expect(fresh.node(1).readStates).toEqual([]);
    fresh.heal();
    fresh.tickAll(3);
    expect(fresh.core(1).commitIndex()).toBeGreaterThanOrEqual(1);
    expect(fresh.node(1).readStates.map((r) => [text(r.requestId), r.index])).toEqual([["early", 1]]);
    // Reference: thesis section 6.4 ("If the leader has not yet marked an entry from its current term committed, it waits until it has done so")
  });

  it("a follower forwards a read to the leader and receives the read index", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.core(1).propose(bytes("w"));
    net.deliver();
    net.core(2).readIndex(bytes("via-2"));
    net.deliver();
    expect(net.node(2).readStates.map((r) => [text(r.requestId), r.index])).toEqual([["via-2", net.core(1).commitIndex()]]);
    expect(net.node(1).readStates).toEqual([]);
    // Reference: thesis section 6.4 ("followers could ... request the current commit index from the leader")
  });

  it("a deposed leader never answers a read it was still confirming", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(1);
    net.core(1).readIndex(bytes("stale"));
    net.deliver();
    // The others elect a new leader and move on.
    for (let i = 0; i < 100 && ![2, 3].some((id) => net.core(id).softState().role === "leader"); i++) net.tickAll(1);
    const newLeader = [2, 3].find((id) => net.core(id).softState().role === "leader")!;
    net.core(newLeader).propose(bytes("after"));
    net.deliver();
    // The old leader hears of the new term (its heartbeat responses are lost until now).
    net.heal();
    net.tickAll(5);
    expect(net.core(1).softState().role).toBe("follower");
    net.tickAll(20);
    expect(net.node(1).readStates).toEqual([]);
    // Reference: thesis section 6.4 (a leader must confirm it has not been superseded before answering)
  });

  it("reads on a non-leader without a known leader fail with RAFT_ERR_NOT_LEADER", () => {
    const net = new Network([1, 2, 3]);
    expect(() => net.core(2).readIndex(bytes("r"))).toThrow(expect.objectContaining({ code: "RAFT_ERR_NOT_LEADER", leaderId: 0 }));
    net.elect(1);
    net.tickAll(1);
    expect(() => net.core(2).propose(bytes("p"))).toThrow(expect.objectContaining({ code: "RAFT_ERR_NOT_LEADER", leaderId: 1 }));
    // Reference: section 5.1 ("If a client contacts a follower, the follower redirects it to the leader")
  });

  it("reads issued together are confirmed by one heartbeat round and answered in order", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.sent.length = 0;
    for (const id of ["a", "b", "c"]) net.core(1).readIndex(bytes(id));
    net.deliver();
    expect(net.node(1).readStates.map((r) => text(r.requestId))).toEqual(["a", "b", "c"]);
    expect(net.sent.filter((m) => m.type === MessageType.HEARTBEAT).length).toBe(2);
    // Reference: thesis section 6.4 (batching reads)
  });

  it("reads arriving while a round is in flight wait for it and share the next round: one round in flight at a time", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.sent.length = 0;
    const heartbeats = () => net.sent.filter((m) => m.type === MessageType.HEARTBEAT).length;
    /** Delivers what is queued now (one hop), then lets every node handle its Ready. */
    const hop = () => {
      for (const m of net.queue.splice(0, net.queue.length)) net.core(m.to).step(m);
      net.processReadies();
    };
    net.core(1).readIndex(bytes("a"));
    net.processReadies();
    expect(heartbeats()).toBe(2);
    for (const id of ["b", "c"]) net.core(1).readIndex(bytes(id));
    net.processReadies();
    // "a"'s round is in flight: "b" and "c" do not start another.
    expect(heartbeats()).toBe(2);
    hop(); // the followers answer "a"'s round
    hop(); // the leader counts the answers: "a" is confirmed, and the next round leaves for "b" and "c"
    expect(net.node(1).readStates.map((r) => text(r.requestId))).toEqual(["a"]);
    // That round goes to one follower: with the leader, a quorum (roundTargets).
    expect(heartbeats()).toBe(3);
    net.deliver();
    expect(net.node(1).readStates.map((r) => text(r.requestId))).toEqual(["a", "b", "c"]);
    expect(heartbeats()).toBe(3);
    // Reference: thesis section 6.4 (a read's heartbeat round must start after the read arrived)
  });

  describe("a read round goes to a quorum, not to every peer", () => {
    const readHeartbeats = (net: Network) => net.sent.filter((m) => m.type === MessageType.HEARTBEAT && m.context.length > 0);
    /** Leader 1 of `ids`, one read already confirmed by a round to every peer (which ranks the followers). */
    const afterFirstRound = (ids: number[], options: Options = {}): Network => {
      const net = new Network(ids, options);
      net.elect(1);
      net.core(1).readIndex(bytes("first"));
      net.deliver();
      expect(readHeartbeats(net).map((m) => m.to)).toEqual(ids.slice(1));
      net.sent.length = 0;
      return net;
    };

    it("goes to the followers that answered the last round first, as few as make a quorum with the leader", () => {
      for (const ids of [[1, 2, 3], [1, 2, 3, 4, 5]]) {
        const net = afterFirstRound(ids);
        net.core(1).readIndex(bytes("next"));
        net.deliver();
        expect(net.node(1).readStates.map((r) => text(r.requestId))).toEqual(["first", "next"]);
        // The network delivers in order: the lowest ids answered first.
        expect(readHeartbeats(net).map((m) => m.to)).toEqual(ids.slice(1, Math.floor(ids.length / 2) + 1));
      }
      // Reference: thesis section 6.4 ("heartbeats ... from a majority of the cluster")
    });

    it("does not stand in for the periodic heartbeat: every peer still hears from the leader on time", () => {
      const net = afterFirstRound([1, 2, 3], { heartbeatIntervalTicks: 3 });
      const heartbeatsTo3 = () => net.sent.filter((m) => m.type === MessageType.HEARTBEAT && m.to === 3).length;
      // A read every tick, for more than an election timeout: each round goes to node 2 alone.
      for (let tick = 0; tick < 12; tick++) {
        net.core(1).readIndex(bytes(`r${tick}`));
        net.tickAll(1);
      }
      expect(net.node(1).readStates).toHaveLength(13);
      expect(heartbeatsTo3()).toBe(4);
      expect(net.core(3).softState()).toMatchObject({ role: "follower", leader: 1 });
      // Reference: section 5.2 (leaders send periodic heartbeats to all followers to maintain their authority)
    });

    it("when the chosen follower stops answering, the next periodic heartbeat confirms the reads through the others, chosen from then on", () => {
      const net = afterFirstRound([1, 2, 3]);
      net.isolate(2);
      net.core(1).readIndex(bytes("stuck"));
      net.deliver();
      expect(readHeartbeats(net).map((m) => m.to)).toEqual([2]);
      expect(net.node(1).readStates.map((r) => text(r.requestId))).toEqual(["first"]);
      net.tickAll(1); // the periodic heartbeat, to both followers, carries the pending read
      expect(net.node(1).readStates.map((r) => text(r.requestId))).toEqual(["first", "stuck"]);
      net.sent.length = 0;
      net.core(1).readIndex(bytes("after"));
      net.deliver();
      expect(net.node(1).readStates.map((r) => text(r.requestId))).toEqual(["first", "stuck", "after"]);
      expect(readHeartbeats(net).map((m) => m.to)).toEqual([3]);
      // Reference: thesis section 6.4 (any majority confirms the leadership)
    });
  });

  it("a round in a joint configuration reaches a quorum of both halves (ReadOnly.roundTargets)", () => {
    const joint: ClusterConfig = { voters: [1, 2, 3], votersOutgoing: [1, 4, 5], learners: [6], members: [], removed: [] };
    const readOnly = new ReadOnly(1);
    expect(readOnly.roundTargets(joint, [2, 3, 4, 5, 6])).toBeUndefined();
    readOnly.add(bytes("r"), 1, 1);
    // Echo order: the learner, then 3, 4, 2, 5; the learner never counts.
    for (const id of [6, 3, 4, 2, 5]) readOnly.acknowledge(id, 1, joint);
    expect(readOnly.roundTargets(joint, [2, 3, 4, 5, 6])).toEqual([3, 4]);
    // Without 4's echo the outgoing half needs 5; 2 adds nothing to 3 for the incoming half.
    const partial = new ReadOnly(1);
    partial.add(bytes("r"), 1, 1);
    for (const id of [3, 2, 5]) partial.acknowledge(id, 1, joint);
    expect(partial.roundTargets(joint, [2, 3, 4, 5, 6])).toEqual([3, 5]);
    // Reference: thesis section 4.3 (joint consensus: agreement needs majorities of both configurations)
  });
});
