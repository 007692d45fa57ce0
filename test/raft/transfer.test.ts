/** Leadership transfer (Raft thesis, section 3.10). */
import { describe, expect, it } from "vitest";
import { bytes, MessageType, Network } from "./helpers.js";

describe("leadership transfer (thesis section 3.10)", () => {
  it("a transfer to an up-to-date follower sends TIMEOUT_NOW and the target wins the next term", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.tickAll(2);
    const term = net.core(1).softState().term;
    net.sent.length = 0;
    net.core(1).transferLeadership(2);
    net.deliver();
    expect(net.sent.filter((m) => m.type === MessageType.TIMEOUT_NOW).map((m) => m.to)).toEqual([2]);
    expect(net.core(2).softState()).toMatchObject({ role: "leader", term: term + 1 });
    expect(net.core(1).softState()).toMatchObject({ role: "follower", leader: 2 });
    // Reference: thesis section 3.10 ("the prior leader sends a TimeoutNow request to the target server")
  });

  it("a lagging target is caught up before it is told to campaign, and proposals are refused meanwhile", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 5; i++) net.core(1).propose(bytes(`p${i}`));
    net.deliver();
    net.heal();
    net.core(1).transferLeadership(3);
    expect(() => net.core(1).propose(bytes("during"))).toThrow(expect.objectContaining({ code: "RAFT_ERR_PROPOSAL_DROPPED" }));
    net.tickAll(5);
    expect(net.core(3).softState().role).toBe("leader");
    expect(net.appliedData(3).slice(0, 5)).toEqual(["p0", "p1", "p2", "p3", "p4"]);
    // Reference: thesis section 3.10 ("the prior leader ... brings the target server's log up to date"; "stop accepting new client requests")
  });

  it("a transfer that does not complete within an election timeout is abandoned", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.tickAll(2);
    net.filters.push((m) => m.type !== MessageType.TIMEOUT_NOW);
    net.core(1).transferLeadership(2);
    expect(() => net.core(1).propose(bytes("x"))).toThrow(expect.objectContaining({ code: "RAFT_ERR_PROPOSAL_DROPPED" }));
    net.tickAll(10);
    expect(net.core(1).softState().role).toBe("leader");
    expect(net.core(1).propose(bytes("after")).index).toBeGreaterThan(0);
    // Reference: thesis section 3.10 ("If the transfer does not complete within an election timeout, the prior leader aborts the transfer and resumes accepting client requests")
  });

  it("a transfer target campaigns even though its peers are within their leader lease", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.tickAll(1);
    net.core(1).transferLeadership(3);
    net.deliver();
    expect(net.core(3).softState().role).toBe("leader");
    // Reference: thesis section 3.10 and 4.2.3 (a transfer's vote request bypasses the lease)
  });

  it("transferring on a non-leader fails with RAFT_ERR_NOT_LEADER", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.tickAll(1);
    expect(() => net.core(2).transferLeadership(3)).toThrow(expect.objectContaining({ code: "RAFT_ERR_NOT_LEADER", leaderId: 1 }));
    // Reference: thesis section 3.10
  });
});
