/**
 * The torture suite's pure parts: history recording, the seeded fault schedule, and the
 * checks on synthetic histories (no processes, no clocks).
 */
import { describe, expect, it } from "vitest";
import { History, HISTORY_OPERATIONS_MAX } from "../../src/torture/history.js";
import { choose, NEMESIS_GROUPS, parseNemesisGroups, planFaults } from "../../src/torture/nemesis.js";
import { checkConvergence, checkFinalReadsAgree, checkLinearizability, checkMembership, checkNoLostWrites, checkRunEvents } from "../../src/torture/checks.js";
import { repairSeconds } from "../../src/torture/disk-faults.js";
import { RunEvents } from "../../src/torture/events.js";
import { stopReason } from "../../src/torture/node-control.js";
import type { HistoryOperation } from "../../src/check/linearizability.js";
import { parseDuration } from "../../src/cli/torture-command.js";

/** A clock the test advances by hand. */
function manualClock(): { now: () => number; set: (t: number) => void } {
  let t = 0;
  return { now: () => t, set: (value) => (t = value) };
}

describe("History", () => {
  it("records invocation and completion times and outcomes", () => {
    const clock = manualClock();
    const history = new History(clock.now);
    clock.set(1);
    const write = history.invoke("c1", { op: "write", key: "k", value: "a" });
    clock.set(2);
    const read = history.invoke("c2", { op: "read", key: "k" });
    const cas = history.invoke("c3", { op: "cas", key: "k", expect: null, value: "b" });
    clock.set(3);
    history.ok(write, { op: "write" });
    clock.set(4);
    history.ok(read, { op: "read", result: "a" });
    history.unknown(cas, "timeout");
    const [w, r, c] = history.operations();
    expect(w).toMatchObject({ op: "write", key: "k", value: "a", clientId: "c1", invokedAt: 1, completedAt: 3, outcome: "ok", id: 0, phase: "safety" });
    expect(r).toMatchObject({ op: "read", result: "a", invokedAt: 2, completedAt: 4, outcome: "ok" });
    expect(c).toMatchObject({ op: "cas", expect: null, value: "b", outcome: "unknown", error: "timeout" });
    expect(c.completedAt).toBeUndefined();
    expect(history.counts()).toEqual({ total: 3, ok: 2, failed: 0, unknown: 1, inFlight: 0 });
  });

  it("counts operations still in flight as unknown, and refuses to complete one twice", () => {
    const history = new History(() => 0);
    const id = history.invoke("c", { op: "delete", key: "k" });
    expect(history.counts()).toMatchObject({ unknown: 1, inFlight: 1 });
    history.fail(id, "400 BAD_REQUEST");
    expect(history.operations()[0].outcome).toBe("failed");
    expect(() => history.ok(id, { op: "delete", existed: true })).toThrow(/not in flight/);
    expect(() => history.ok(history.invoke("c", { op: "read", key: "k" }), { op: "write" })).toThrow(/is a read/);
  });

  it("writes one JSON object per line, and its operations feed the checker", () => {
    const history = new History(() => 5);
    history.ok(history.invoke("c", { op: "write", key: "k", value: "v" }), { op: "write" });
    history.ok(history.invoke("c", { op: "read", key: "k" }), { op: "read", result: "v" });
    const lines = history.toJsonLines().trimEnd().split("\n");
    expect(lines.map((line) => JSON.parse(line).op)).toEqual(["write", "read"]);
    expect(checkLinearizability(history.operations(), 10_000).status).toBe("pass");
    expect(HISTORY_OPERATIONS_MAX).toBeGreaterThan(100_000);
  });
});

describe("nemesis schedule", () => {
  const groups = parseNemesisGroups("all");

  it("the same seed gives the same fault schedule", () => {
    const a = planFaults({ seed: 1234, durationMs: 60_000, groups });
    const b = planFaults({ seed: 1234, durationMs: 60_000, groups });
    expect(a).toEqual(b);
    expect(a.length).toBeGreaterThan(5);
  });

  it("another seed gives another schedule", () => {
    const a = planFaults({ seed: 1, durationMs: 60_000, groups });
    const b = planFaults({ seed: 2, durationMs: 60_000, groups });
    expect(a).not.toEqual(b);
  });

  it("fits the duration and draws only the chosen groups' faults", () => {
    const steps = planFaults({ seed: 99, durationMs: 30_000, groups: ["partition", "pause"] });
    const planned = steps.reduce((sum, step) => sum + step.delayBeforeMs + step.durationMs, 0);
    expect(planned).toBeLessThanOrEqual(30_000);
    const allowed = new Set<string>([...NEMESIS_GROUPS.partition, ...NEMESIS_GROUPS.pause]);
    for (const step of steps) expect(allowed.has(step.kind)).toBe(true);
    expect(planFaults({ seed: 99, durationMs: 30_000, groups: [] })).toEqual([]);
  });

  it("rejects unknown nemeses and chooses targets deterministically", () => {
    expect(() => parseNemesisGroups("kill,fire")).toThrow(/unknown nemesis 'fire'/);
    expect(parseNemesisGroups("kill,kill,disk")).toEqual(["kill", "disk"]);
    expect(choose([1, 2, 3], 2, [0.9, 0.1])).toEqual([3, 1]);
    expect(choose([1, 2, 3], 5, [0.5])).toHaveLength(3);
  });

  it("parses durations", () => {
    expect(parseDuration("60s")).toBe(60_000);
    expect(parseDuration("30m")).toBe(1_800_000);
    expect(parseDuration("90")).toBe(90_000);
    expect(() => parseDuration("soon")).toThrow(/not a duration/);
  });
});

const ok = (fields: Partial<HistoryOperation> & Pick<HistoryOperation, "op" | "key">, invokedAt: number, completedAt: number, clientId = "c"): HistoryOperation =>
  ({ clientId, outcome: "ok", invokedAt, completedAt, ...fields }) as HistoryOperation;

describe("checks on synthetic histories", () => {
  it("a lost acknowledged write is caught", () => {
    const history = [ok({ op: "write", key: "k", value: "a" }, 0, 1), ok({ op: "write", key: "k", value: "b" }, 2, 3)];
    // Every node ends with "a": "b" was acknowledged after "a" completed, and is gone.
    const verdict = checkNoLostWrites(history, new Map([["k", "a"]]));
    expect(verdict.status).toBe("fail");
    expect(verdict.detail).toMatch(/acknowledged put "b" .* is lost/);
    expect(checkNoLostWrites(history, new Map([["k", "b"]])).status).toBe("pass");
  });

  it("a concurrent write may win; a phantom value and an unexplained absence are caught", () => {
    const concurrent = [ok({ op: "write", key: "k", value: "a" }, 0, 5), ok({ op: "write", key: "k", value: "b" }, 1, 3)];
    expect(checkNoLostWrites(concurrent, new Map([["k", "a"]])).status).toBe("pass");
    expect(checkNoLostWrites(concurrent, new Map([["k", "zzz"]])).detail).toMatch(/never written/);
    expect(checkNoLostWrites(concurrent, new Map([["k", null]])).status).toBe("fail");
    const deleted = [...concurrent, ok({ op: "delete", key: "k", existed: true }, 6, 7)];
    expect(checkNoLostWrites(deleted, new Map([["k", null]])).status).toBe("pass");
  });

  it("a stale read is not linearizable", () => {
    const history = [ok({ op: "write", key: "k", value: "a" }, 0, 1), ok({ op: "write", key: "k", value: "b" }, 2, 3), ok({ op: "read", key: "k", result: "a" }, 4, 5)];
    const verdict = checkLinearizability(history, 100_000);
    expect(verdict.status).toBe("fail");
    expect(verdict.detail).toMatch(/key k/);
  });

  it("divergence is caught: same applied index, different state hashes", () => {
    const verdict = checkConvergence(
      [
        { id: 1, appliedIndex: 10, hash: "aaaa" },
        { id: 2, appliedIndex: 10, hash: "bbbb" },
        { id: 3, appliedIndex: 10, hash: "aaaa" },
      ],
      [1, 2, 3],
    );
    expect(verdict.status).toBe("fail");
    expect(verdict.detail).toMatch(/DIVERGED/);
  });

  it("convergence needs every expected node at one index with one hash", () => {
    const same = [1, 2, 3].map((id) => ({ id, appliedIndex: 10, hash: "h" }));
    expect(checkConvergence(same, [1, 2, 3]).status).toBe("pass");
    expect(checkConvergence(same.slice(0, 2), [1, 2, 3]).detail).toMatch(/n3 did not answer/);
    expect(checkConvergence([...same.slice(0, 2), { id: 3, appliedIndex: 9, hash: "g" }], [1, 2, 3]).detail).toMatch(/not converged/);
  });

  it("final reads that differ between nodes are caught", () => {
    const reads = new Map([
      [1, new Map([["k", "a"]])],
      [2, new Map([["k", "a"]])],
      [3, new Map<string, string | null>([["k", null]])],
    ]);
    const verdict = checkFinalReadsAgree(reads);
    expect(verdict.status).toBe("fail");
    expect(verdict.detail).toMatch(/n3=null/);
  });
});

describe("membership and fault-handling checks", () => {
  const final = (voters: number[], learners: number[], extra: { committed?: boolean; joint?: boolean } = {}) => ({
    index: 40,
    committed: extra.committed ?? true,
    joint: extra.joint ?? false,
    members: [...voters.map((id) => ({ id, role: "voter" })), ...learners.map((id) => ({ id, role: "learner" }))],
  });

  it("the final configuration must be the one asked for, committed, and the nodes the tool runs", () => {
    const asked = { voters: [1, 3, 5], learners: [6] };
    expect(checkMembership({ asked, actual: final([5, 1, 3], [6]), running: [1, 3, 5, 6], removals: [] }).status).toBe("pass");
    expect(checkMembership({ asked, actual: final([1, 3, 5, 6], []), running: [1, 3, 5, 6], removals: [] }).detail).toMatch(/asked for voters 1,3,5 learners 6/);
    expect(checkMembership({ asked, actual: final([1, 3, 5], [6], { joint: true }), running: [1, 3, 5, 6], removals: [] }).detail).toMatch(/joint/);
    expect(checkMembership({ asked, actual: final([1, 3, 5], [6]), running: [1, 3, 5], removals: [] }).detail).toMatch(/the tool runs nodes 1,3,5/);
    expect(checkMembership({ asked, actual: undefined, running: [1, 3, 5, 6], removals: [] }).status).toBe("fail");
  });

  it("a removed node that had to be killed fails the check", () => {
    const asked = { voters: [1, 2, 3], learners: [] };
    const killed = { id: 4, byItself: false, detail: "killed (SIGKILL) after not exiting by itself" };
    const verdict = checkMembership({ asked, actual: final([1, 2, 3], []), running: [1, 2, 3], removals: [killed] });
    expect(verdict.status).toBe("fail");
    expect(verdict.detail).toMatch(/n4 did not exit by itself/);
    expect(checkMembership({ asked, actual: final([1, 2, 3], []), running: [1, 2, 3], removals: [{ ...killed, byItself: true }] }).detail).toMatch(/1 removed nodes exited by themselves/);
  });

  it("fault handling fails on any violation seen during the run, and counts repairs and expected stops", () => {
    const events = new RunEvents(() => 0);
    events.damageInjected.set("hard state", 2);
    events.repairs.push({ id: 2, seconds: 0.4 }, { id: 3, seconds: 1.2 });
    events.stopped({ id: 2, reason: "storage damage found while running", detail: "raftwal: node 2 stopped: WAL corrupt", expected: true });
    expect(checkRunEvents(events)).toMatchObject({ status: "pass", detail: expect.stringMatching(/2 damaged, 2 repairs .* 1 expected stops/) });
    events.violation("n3 stopped by itself");
    expect(checkRunEvents(events)).toMatchObject({ status: "fail", detail: expect.stringMatching(/n3 stopped by itself/) });
  });

  it("a node's last line says why it stopped; its repair line says how long the repair took", () => {
    expect(stopReason("raftwal: node 2 stopped: node 2 lost durable state and a quorum of voters is recovering with no leader for 3 election timeouts")).toBe("RAFT_ERR_UNREPAIRABLE");
    expect(stopReason("raftwal: node 1 stopped: WAL corrupt: segment-1.wal at byte offset 39328: checksum mismatch, entry 404")).toBe("storage damage found while running");
    expect(stopReason("node 4 was removed from the cluster and stopped; its data directory d can be deleted")).toBe("removed");
    expect(stopReason("raftwal: something else")).toBe("other");
    const log = ['{"level":30,"msg":"serving"}', '{"level":30,"lostFromIndex":5,"seconds":1.25,"msg":"storage repaired from peers"}'].join("\n");
    expect(repairSeconds(log)).toBe(1.25);
    expect(repairSeconds('{"msg":"serving"}')).toBeUndefined();
  });
});
