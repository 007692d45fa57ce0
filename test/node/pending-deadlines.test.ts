/**
 * Proposals and linearizable reads time out by deadline, checked on the node's tick
 * (expire(now)), not by a timer each: the clock is an argument, so these tests drive it.
 */
import { describe, expect, it } from "vitest";
import { PendingProposals } from "../../src/node/pending-proposals.js";
import { PendingReads } from "../../src/node/pending-reads.js";

/** Settles to "pending" if `promise` has not settled by the end of this turn's microtasks. */
async function state<T>(promise: Promise<T>): Promise<"pending" | { value: T } | { error: unknown }> {
  const pending = Symbol("pending");
  const outcome = await Promise.race([promise.then((value) => ({ value }), (error: unknown) => ({ error })), Promise.resolve().then(() => pending)]);
  return outcome === pending ? "pending" : (outcome as { value: T } | { error: unknown });
}

describe("PendingProposals deadlines", () => {
  it("rejects a proposal once its timeout has passed, not before, and only that one", async () => {
    const proposals = new PendingProposals<string>();
    const early = proposals.add(7, 2, 1_000, 10_000);
    const late = proposals.add(8, 2, 1_000, 10_500);
    proposals.expire(10_999.9);
    expect(await state(early)).toBe("pending");
    proposals.expire(11_000);
    expect(await state(early)).toEqual({ error: expect.objectContaining({ code: "NODE_ERR_TIMEOUT", message: expect.stringMatching(/^proposal at index 7 did not complete within 1000 ms/) }) });
    expect(await state(late)).toBe("pending");
    expect(proposals.size).toBe(1);
    proposals.applied(8, 2, "ok");
    expect(await state(late)).toEqual({ value: "ok" });
    // Applied is final: a later expiry finds nothing to reject.
    proposals.expire(1e9);
    expect(proposals.size).toBe(0);
  });

  it("still tells a proposal overwritten by another term from one applied", async () => {
    const proposals = new PendingProposals<string>();
    const lost = proposals.add(3, 1, 5_000, 0);
    proposals.applied(3, 2, "other");
    expect(await state(lost)).toEqual({ error: expect.objectContaining({ code: "NODE_ERR_PROPOSAL_LOST" }) });
  });
});

describe("PendingReads deadlines", () => {
  it("rejects a read not completed by its deadline, confirmed or not, and completes the others", async () => {
    const reads = new PendingReads();
    const unconfirmed = reads.add(500, 0);
    const confirmedUnapplied = reads.add(500, 0);
    const answered = reads.add(500, 100);
    reads.confirmed(confirmedUnapplied.requestId, 9, 5);
    reads.confirmed(answered.requestId, 5, 5);
    expect(await state(answered.done)).toEqual({ value: undefined });
    reads.expire(499);
    expect(await state(unconfirmed.done)).toBe("pending");
    reads.expire(500);
    for (const read of [unconfirmed, confirmedUnapplied]) {
      expect(await state(read.done)).toEqual({ error: expect.objectContaining({ code: "NODE_ERR_TIMEOUT", message: expect.stringMatching(/^linearizable read did not complete within 500 ms/) }) });
    }
    expect(reads.size).toBe(0);
  });

  it("gives each read its own request id", () => {
    const reads = new PendingReads();
    const ids = Array.from({ length: 3 }, () => new TextDecoder().decode(reads.add(1_000, 0).requestId));
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^\d+$/);
  });
});
