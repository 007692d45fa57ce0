/**
 * The torture run's judges, apart from the workload (STYLE.md): each takes what was
 * recorded (the history, the final reads, the nodes' state hashes) and returns a verdict.
 * Pure functions; the orchestration gathers their inputs.
 */
import { checkLinearizable, type HistoryOperation } from "../check/linearizability.js";
import type { RemovalExit, RunEvents } from "./events.js";
import type { Members } from "./membership-plan.js";

export interface Verdict {
  name: string;
  status: "pass" | "fail" | "unknown";
  detail: string;
}

/** Linearizability of the whole history, key by key (src/check/linearizability.ts). */
export function checkLinearizability(history: readonly HistoryOperation[], stepsMax: number): Verdict {
  const name = "linearizable";
  const result = checkLinearizable(history, { stepsMax });
  if (result.ok === true) return { name, status: "pass", detail: `${history.length} operations` };
  if (result.ok === "unknown") return { name, status: "unknown", detail: `search budget of ${stepsMax} steps exhausted on keys ${result.keys.join(", ")}` };
  return { name, status: "fail", detail: `key ${result.key}:\n${result.explanation}` };
}

/**
 * No acknowledged write lost: for every key, the final value (what every node holds at
 * the end; `null` for absent) must come from a write no acknowledged write strictly
 * follows. With unique values, if the final value's writer W completed before an
 * acknowledged write A was invoked, then W precedes A in every linearization and nothing
 * can bring W's value back after A: A was lost. A final absence needs a delete that may
 * come after every acknowledged write. A final value nobody wrote is a phantom.
 */
export function checkNoLostWrites(history: readonly HistoryOperation[], finalValues: ReadonlyMap<string, string | null>): Verdict {
  const name = "no acknowledged write lost";
  const problems: string[] = [];
  const writers = new Map<string, HistoryOperation>();
  const byKey = new Map<string, HistoryOperation[]>();
  for (const op of history) {
    if (op.outcome === "failed" || op.op === "read") continue;
    let list = byKey.get(op.key);
    if (!list) byKey.set(op.key, (list = []));
    list.push(op);
    if (op.op === "write" || (op.op === "cas" && !(op.outcome === "ok" && op.result === "mismatch"))) writers.set(`${op.key}\u0000${op.value}`, op);
  }
  const acknowledged = (op: HistoryOperation) => op.outcome === "ok" && (op.op === "write" || (op.op === "cas" && op.result === "ok"));
  const completedBefore = (a: HistoryOperation, b: HistoryOperation) => a.outcome === "ok" && a.completedAt! < b.invokedAt;
  for (const [key, finalValue] of finalValues) {
    const ops = byKey.get(key) ?? [];
    const acks = ops.filter(acknowledged);
    if (finalValue === null) {
      for (const ack of acks) {
        const laterDelete = ops.some((op) => op.op === "delete" && !completedBefore(op, ack) && !(op.outcome === "ok" && op.existed === false));
        if (!laterDelete) problems.push(`key ${key}: acknowledged ${describe(ack)} is gone (key absent at the end) and no delete could follow it`);
      }
      continue;
    }
    const writer = writers.get(`${key}\u0000${finalValue}`);
    if (!writer) {
      problems.push(`key ${key}: final value ${JSON.stringify(finalValue)} was never written`);
      continue;
    }
    for (const ack of acks) {
      if (ack !== writer && completedBefore(writer, ack)) {
        problems.push(`key ${key}: acknowledged ${describe(ack)} is lost: the final value ${JSON.stringify(finalValue)} was written by an operation that completed before it began (${describe(writer)})`);
      }
    }
  }
  if (problems.length === 0) return { name, status: "pass", detail: `${[...byKey.values()].flat().filter(acknowledged).length} acknowledged writes on ${finalValues.size} keys` };
  return { name, status: "fail", detail: problems.slice(0, 20).join("\n") + (problems.length > 20 ? `\n... and ${problems.length - 20} more` : "") };
}

function describe(op: HistoryOperation): string {
  const when = `invoked ${op.invokedAt.toFixed(1)}${op.completedAt === undefined ? "" : ` completed ${op.completedAt.toFixed(1)}`}`;
  if (op.op === "write") return `put ${JSON.stringify(op.value)} by ${op.clientId} (${when})`;
  if (op.op === "cas") return `cas ${JSON.stringify(op.expect)} -> ${JSON.stringify(op.value)} by ${op.clientId} (${when})`;
  return `${op.op} by ${op.clientId} (${when})`;
}

/** One node's state at the end: its applied index and its state-machine hash. */
export interface NodeStateSample {
  id: number;
  appliedIndex: number;
  hash: string;
}

/**
 * Convergence: every running node ends with the same applied index and the same state
 * hash. Same index with different hashes is divergence (a safety violation); different
 * indexes after the convergence wait mean a node did not catch up (a liveness failure).
 */
export function checkConvergence(samples: readonly NodeStateSample[], expectedNodes: readonly number[]): Verdict {
  const name = "converged";
  const missing = expectedNodes.filter((id) => !samples.some((sample) => sample.id === id));
  const listing = samples.map((s) => `n${s.id}@${s.appliedIndex}:${s.hash.slice(0, 12)}`).join(" ");
  const byIndex = new Map<number, Set<string>>();
  for (const sample of samples) {
    let hashes = byIndex.get(sample.appliedIndex);
    if (!hashes) byIndex.set(sample.appliedIndex, (hashes = new Set()));
    hashes.add(sample.hash);
  }
  for (const [index, hashes] of byIndex) {
    if (hashes.size > 1) return { name, status: "fail", detail: `DIVERGED: nodes at applied index ${index} hold different states: ${listing}` };
  }
  if (missing.length > 0) return { name, status: "fail", detail: `nodes ${missing.map((id) => `n${id}`).join(",")} did not answer: ${listing}` };
  if (byIndex.size > 1) return { name, status: "fail", detail: `not converged (different applied indexes): ${listing}` };
  return { name, status: "pass", detail: listing };
}

/** The final stale reads of every key on every node agree (what each node itself holds). */
export function checkFinalReadsAgree(reads: ReadonlyMap<number, ReadonlyMap<string, string | null>>): Verdict {
  const name = "final reads agree";
  const problems: string[] = [];
  const nodes = [...reads.keys()].sort((a, b) => a - b);
  const keys = new Set<string>();
  for (const values of reads.values()) for (const key of values.keys()) keys.add(key);
  for (const key of [...keys].sort()) {
    const values = nodes.map((id) => reads.get(id)!.get(key));
    const shown = values.map((value) => (value === undefined ? "<no answer>" : JSON.stringify(value)));
    if (new Set(shown).size > 1) {
      problems.push(`key ${key}: ${nodes.map((id, k) => `n${id}=${shown[k]}`).join(" ")}`);
    }
  }
  if (problems.length === 0) return { name, status: "pass", detail: `${keys.size} keys on ${nodes.length} nodes` };
  return { name, status: "fail", detail: problems.join("\n") };
}

/** Liveness after healing: a leader and a successful write within the bound. */
export function checkLiveness(result: { leaderAfterMs?: number; writeAfterMs?: number; boundMs: number; error?: string }): Verdict {
  const name = "liveness after healing";
  if (result.writeAfterMs !== undefined && result.writeAfterMs <= result.boundMs) {
    return { name, status: "pass", detail: `leader after ${result.leaderAfterMs ?? "?"} ms, first write after ${result.writeAfterMs} ms (bound ${result.boundMs} ms)` };
  }
  return { name, status: "fail", detail: `no successful write within ${result.boundMs} ms of healing${result.error ? `: ${result.error}` : ""}` };
}

/**
 * What the nemeses saw go wrong during the run: a node that did not come back, damage not
 * reported or not repaired, an older term after a repair, a node that stopped by itself
 * when no scenario expected it.
 */
export function checkRunEvents(events: Pick<RunEvents, "violations" | "stops" | "repairs" | "damageInjected">): Verdict {
  const name = "fault handling";
  if (events.violations.length > 0) return { name, status: "fail", detail: events.violations.join("\n") };
  const injected = [...events.damageInjected.values()].reduce((sum, count) => sum + count, 0);
  const expectedStops = events.stops.filter((stop) => stop.expected).length;
  const parts = [
    injected > 0 ? `${injected} damaged, ${events.repairs.length} repairs from peers completed` : "no storage damaged",
    expectedStops > 0 ? `${expectedStops} expected stops (damage read while running)` : "no node stopped by itself",
    "every node came back",
  ];
  return { name, status: "pass", detail: parts.join("; ") };
}

/** The final membership as the leader reports it. */
export interface FinalMembers {
  index: number;
  committed: boolean;
  joint: boolean;
  members: Array<{ id: number; role: string }>;
}

/**
 * The final configuration is what the nemesis asked for (its voters and learners,
 * committed, not joint), the nodes the tool runs are exactly its members, and every
 * removed node that was running exited by itself with code 0.
 */
export function checkMembership(input: { asked: Members; actual: FinalMembers | undefined; running: readonly number[]; removals: readonly RemovalExit[] }): Verdict {
  const name = "membership as asked";
  const { asked, actual } = input;
  if (!actual) return { name, status: "fail", detail: "no node answered GET /members at the end" };
  const sorted = (ids: readonly number[]) => [...ids].sort((a, b) => a - b).join(",");
  const ids = (role: string) => actual.members.filter((member) => member.role === role).map((member) => member.id);
  const problems: string[] = [];
  if (sorted(ids("voter")) !== sorted(asked.voters) || sorted(ids("learner")) !== sorted(asked.learners)) {
    problems.push(`the cluster has voters ${sorted(ids("voter")) || "none"} learners ${sorted(ids("learner")) || "none"}; asked for voters ${sorted(asked.voters)} learners ${sorted(asked.learners) || "none"}`);
  }
  if (!actual.committed || actual.joint) problems.push(`the configuration at index ${actual.index} is ${actual.joint ? "joint" : "not committed"}`);
  if (sorted(actual.members.map((member) => member.id)) !== sorted(input.running)) {
    problems.push(`the tool runs nodes ${sorted(input.running)}, the members are ${sorted(actual.members.map((member) => member.id))}`);
  }
  for (const removal of input.removals) if (!removal.byItself) problems.push(`removed node n${removal.id} did not exit by itself with code 0: ${removal.detail}`);
  if (problems.length > 0) return { name, status: "fail", detail: problems.join("\n") };
  const learners = asked.learners.length > 0 ? ` learners ${sorted(asked.learners)}` : "";
  const removed = input.removals.length > 0 ? `; ${input.removals.length} removed nodes exited by themselves (code 0)` : "";
  return { name, status: "pass", detail: `voters ${sorted(asked.voters)}${learners} (configuration index ${actual.index}, committed)${removed}` };
}
