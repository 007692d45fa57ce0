import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkLinearizable, type HistoryOperation } from "../../src/check/linearizability.js";

/**
 * A history produced by really executing operations one at a time against registers:
 * operation i takes effect at time 10 * i, inside a random window [invoked, completed]
 * around it. Some operations end unknown (applied or not) or failed (not applied).
 * Values are unique. Such a history is linearizable by construction.
 */
interface Step {
  key: number;
  kind: "read" | "write" | "delete" | "cas-current" | "cas-other" | "cas-absent";
  before: number;
  after: number;
  fate: "ok" | "unknown-applied" | "unknown-lost" | "failed";
  reportCurrent: boolean;
}

const stepArbitrary: fc.Arbitrary<Step> = fc.record({
  key: fc.nat(2),
  kind: fc.constantFrom("read", "read", "write", "write", "delete", "cas-current", "cas-other", "cas-absent"),
  before: fc.nat(14),
  after: fc.nat(14),
  fate: fc.constantFrom("ok", "ok", "ok", "ok", "ok", "ok", "ok", "unknown-applied", "unknown-lost", "failed"),
  reportCurrent: fc.boolean(),
});

function execute(steps: Step[]): HistoryOperation[] {
  const registers = new Map<string, string | null>();
  return steps.map((s, i) => {
    const key = `k${s.key}`;
    const at = 10 * i;
    const invokedAt = at - s.before;
    const completedAt = at + s.after;
    const current = registers.get(key) ?? null;
    const applies = s.fate === "ok" || s.fate === "unknown-applied";
    const outcome = s.fate === "ok" ? "ok" : s.fate === "failed" ? "failed" : "unknown";
    const times = outcome === "unknown" ? { invokedAt } : { invokedAt, completedAt };
    const clientId = `c${i % 5}`;
    const value = `v${i}`;
    switch (s.kind) {
      case "read":
        return { clientId, key, ...times, outcome, op: "read", result: current };
      case "write":
        if (applies) registers.set(key, value);
        return { clientId, key, ...times, outcome, op: "write", value };
      case "delete":
        if (applies) registers.set(key, null);
        return { clientId, key, ...times, outcome, op: "delete", existed: current !== null };
      default: {
        const expect = s.kind === "cas-current" ? current : s.kind === "cas-absent" ? null : `v${Math.max(0, i - 3)}`;
        const matches = expect === current;
        if (applies && matches) registers.set(key, value);
        const answer = matches ? { result: "ok" as const } : { result: "mismatch" as const, ...(s.reportCurrent ? { current } : {}) };
        return { clientId, key, ...times, outcome, op: "cas", expect, value, ...answer };
      }
    }
  });
}

/** An ok operation that certainly changed the register. */
function changedState(o: HistoryOperation): boolean {
  return o.outcome === "ok" && (o.op === "write" || o.op === "delete" || (o.op === "cas" && o.result === "ok"));
}

/**
 * Finds an ok read R and two ok state changes W1 (writing v) then W2 on its key with
 * W1 -> W2 -> R in real time, and makes R return v: with unique values this is a stale
 * read no order can explain.
 */
function makeStale(history: HistoryOperation[]): { mutated: HistoryOperation[]; readIndex: number } | undefined {
  for (let r = history.length - 1; r >= 0; r--) {
    const read = history[r];
    if (read.op !== "read" || read.outcome !== "ok") continue;
    for (let w2 = 0; w2 < history.length; w2++) {
      const second = history[w2];
      if (second.key !== read.key || !changedState(second) || !(second.completedAt! < read.invokedAt)) continue;
      for (let w1 = 0; w1 < history.length; w1++) {
        const first = history[w1];
        if (first.key !== read.key || !changedState(first) || first.op === "delete" || !(first.completedAt! < second.invokedAt)) continue;
        const value = (first as { value: string }).value;
        if (value === read.result) continue;
        const mutated = history.slice();
        mutated[r] = { ...read, result: value };
        return { mutated, readIndex: r };
      }
    }
  }
  return undefined;
}

describe("checkLinearizable (property)", () => {
  it("judges every history of a real sequential execution with random concurrency windows linearizable", () => {
    fc.assert(
      fc.property(fc.array(stepArbitrary, { minLength: 1, maxLength: 120, size: "max" }), (steps) => {
        const history = execute(steps);
        expect(checkLinearizable(history)).toEqual({ ok: true });
      }),
      { seed: 42, numRuns: 400 },
    );
  });

  it("judges a stale read (an older value, not concurrent with the newer write) not linearizable, and blames it", () => {
    let mutations = 0;
    fc.assert(
      fc.property(fc.array(stepArbitrary, { minLength: 20, maxLength: 100 }), (steps) => {
        const stale = makeStale(execute(steps));
        if (stale === undefined) return;
        mutations++;
        const result = checkLinearizable(stale.mutated);
        expect(result.ok).toBe(false);
        if (result.ok !== false) return;
        expect(result.key).toBe(stale.mutated[stale.readIndex].key);
        // Fragments shrink only by removals that cannot create a violation, so the culprit stays.
        expect(result.operations).toContain(stale.mutated[stale.readIndex]);
      }),
      { seed: 7, numRuns: 400 },
    );
    expect(mutations).toBeGreaterThan(300);
  });
});

/** Every order, by brute force: the specification the search must agree with (histories of at most 7 operations). */
function bruteForceLinearizable(history: HistoryOperation[]): boolean {
  const byKey = new Map<string, HistoryOperation[]>();
  for (const o of history) {
    if (o.outcome === "failed" || (o.outcome === "unknown" && o.op === "read")) continue;
    byKey.set(o.key, [...(byKey.get(o.key) ?? []), o]);
  }
  const ret = (o: HistoryOperation) => (o.outcome === "unknown" ? Infinity : o.completedAt!);
  const step = (o: HistoryOperation, state: string | null): string | null | undefined => {
    const known = o.outcome === "ok";
    switch (o.op) {
      case "read":
        return o.result === state ? state : undefined;
      case "write":
        return o.value;
      case "delete":
        return known && o.existed !== undefined && o.existed !== (state !== null) ? undefined : null;
      case "cas":
        if (!known) return state === o.expect ? o.value : state;
        if (o.result === "ok") return state === o.expect ? o.value : undefined;
        if (state === o.expect) return undefined;
        return o.current === undefined || o.current === state ? state : undefined;
    }
  };
  const search = (remaining: HistoryOperation[], state: string | null): boolean => {
    if (remaining.every((o) => o.outcome === "unknown")) return true;
    return remaining.some((o, i) => {
      if (remaining.some((p) => ret(p) < o.invokedAt)) return false;
      const next = step(o, state);
      return next !== undefined && search(remaining.filter((_, j) => j !== i), next);
    });
  };
  return Array.from(byKey.values()).every((ops) => search(ops, null));
}

const value = fc.constantFrom<string | null>(null, "a", "b");
const randomOperation: fc.Arbitrary<HistoryOperation> = fc
  .record({
    key: fc.constantFrom("x", "y"),
    kind: fc.constantFrom("read", "write", "delete", "cas"),
    invokedAt: fc.nat(12),
    length: fc.nat(6),
    outcome: fc.constantFrom("ok", "ok", "ok", "unknown", "failed"),
    value,
    other: value,
    existed: fc.constantFrom(undefined, true, false),
    casResult: fc.constantFrom("ok", "mismatch"),
    current: fc.constantFrom<string | null | undefined>(undefined, null, "a", "b"),
  })
  .map((r): HistoryOperation => {
    const common = { clientId: "c", key: r.key, invokedAt: r.invokedAt, outcome: r.outcome as HistoryOperation["outcome"] };
    const timed = r.outcome === "unknown" ? common : { ...common, completedAt: r.invokedAt + r.length };
    const written = r.value ?? "a";
    switch (r.kind) {
      case "read":
        return { ...timed, op: "read", result: r.value };
      case "write":
        return { ...timed, op: "write", value: written };
      case "delete":
        return { ...timed, op: "delete", ...(r.existed === undefined ? {} : { existed: r.existed }) };
      default:
        return {
          ...timed,
          op: "cas",
          expect: r.other,
          value: written,
          result: r.casResult as "ok" | "mismatch",
          ...(r.casResult === "mismatch" && r.current !== undefined ? { current: r.current } : {}),
        };
    }
  });

describe("checkLinearizable agrees with brute force (property)", () => {
  it("on small random histories with repeated values, unknown and failed operations", () => {
    let violations = 0;
    fc.assert(
      fc.property(fc.array(randomOperation, { minLength: 1, maxLength: 7 }), (history) => {
        const expected = bruteForceLinearizable(history);
        const result = checkLinearizable(history);
        expect(result.ok).toBe(expected);
        if (result.ok === false) {
          violations++;
          // The explanation's fragment is part of the history and is a violation on its own.
          for (const o of result.operations) expect(history).toContain(o);
          expect(bruteForceLinearizable(result.operations)).toBe(false);
        }
      }),
      { seed: 99, numRuns: 3000 },
    );
    expect(violations).toBeGreaterThan(300);
  });
});
