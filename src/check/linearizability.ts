/**
 * Linearizability checker for key-value histories (the torture suite's judge).
 *
 * ## Model
 * Every key is an independent register that starts absent and supports:
 *   - `read`   returns the value, or `null` when the key is absent;
 *   - `write`  (put) sets the value;
 *   - `delete` makes the key absent (optionally answering whether it existed);
 *   - `cas(expect, value)` sets `value` iff the current value is `expect` (`null`: iff
 *     absent) and answers `ok`, otherwise answers `mismatch` (optionally with the value
 *     found, `null` for absent; the KV service's CAS `not-found` is a mismatch with
 *     `current: null`).
 * Values are compared as strings: give every write a unique value so every read can be
 * traced to its write (nothing requires it, but ambiguity makes the search slower).
 *
 * A history is linearizable iff there is a total order of its operations that respects
 * real time (if A completed before B was invoked, A comes first) in which every result
 * is what the model gives. Linearizability is local (Herlihy & Wing): the history is
 * linearizable iff each key's sub-history is, so keys are checked one at a time
 * (Porcupine's P-compositionality partition), which is what makes real histories tractable.
 *
 * ## Outcomes
 *   - `ok`: the operation took effect exactly once, at some instant between `invokedAt`
 *     and `completedAt`, and its result is the model's result at that instant.
 *   - `failed`: it definitely did not take effect (the server rejected it before
 *     proposing, or answered "not leader"). It is left out of the check entirely.
 *   - `unknown`: timeout, crash, lost connection. It may or may not have taken effect, and
 *     if it did, at any instant after `invokedAt`: its completion is +infinity and its
 *     result is unconstrained. An unknown read constrains nothing and is dropped. An
 *     unknown write, delete or CAS may be placed anywhere after its invocation or not at
 *     all; an unknown CAS that is placed takes effect iff the register holds `expect`.
 * Times are numbers in any unit on one clock (e.g. `performance.now()` of the process
 * that recorded the history). Equal times count as concurrent.
 *
 * ## Algorithm
 * Wing & Gong's search with Lowe's memoization, as in Porcupine's `checkSingle`
 * (see `search.ts`): a depth-first search over linearization orders that caches every
 * (set of operations linearized, register state) it has reached. Before searching, each
 * key's history is reduced: failed operations and unknown reads are dropped, and so is an
 * unknown write or CAS whose value no operation ever observes (no read returns it, no CAS
 * expects it or reports it found) when the key has no answer that only tells "present"
 * (a delete answering "existed", a mismatch without the value found). Such a write can
 * only be removed from any linearization without invalidating it, and dropping it keeps
 * many timeouts from multiplying the search space.
 *
 * ## Complexity and budget
 * Checking linearizability is NP-complete in general (Gibbons & Korach). The cache bounds
 * the search by (reachable linearized sets) x (states); histories with a few concurrent
 * clients per key and unique values stay close to linear. The search is bounded by
 * `stepsMax` loop iterations per key (default 5,000,000, a few seconds); a key that
 * exhausts it makes the verdict `{ ok: "unknown", reason: "search budget exhausted" }`,
 * never a guess. A definite violation on any key wins over exhausted budgets on others.
 * Memory: each cache entry holds the state and the part of the linearized-set bitset
 * that is neither a leading run of ones nor trailing zeros (usually a few words).
 *
 * ## Explanation of a violation
 * For the first key (in key order) with a violation, the checker finds a small
 * non-linearizable fragment: (1) the shortest prefix of the key's history (operations
 * invoked up to some time T, those completing after T treated as unknown) that is not
 * linearizable, found by bisection: such prefixes are monotone, any prefix of a
 * linearizable history is linearizable; (2) then removes chunks of operations (delta
 * debugging) as long as the rest stays non-linearizable, never removing a write or delete of
 * a value (or absence) that a remaining operation observes: such removals cannot create a
 * violation, so the fragment's violation is one of the history's. The
 * explanation prints the fragment one operation per line with its index in the input
 * history. The minimization has its own budget (`explainStepsMax`); when it runs out, the
 * fragment is still non-linearizable, only less small, and the text says so.
 */
import { ErrorCode, RaftwalError } from "../errors.js";
import { ABSENT, OpKind, UNCONSTRAINED, searchLinearization, type SearchOperation } from "./search.js";

interface OperationBase {
  /** Who issued it (printed in explanations; not used by the check). */
  clientId: string;
  key: string;
  invokedAt: number;
  /** When the answer arrived; required for `ok` and `failed`, ignored for `unknown`. */
  completedAt?: number;
  outcome: "ok" | "failed" | "unknown";
}

export interface ReadOperation extends OperationBase {
  op: "read";
  /** Outcome ok: the value read, `null` when absent. */
  result?: string | null;
}

export interface WriteOperation extends OperationBase {
  op: "write";
  value: string;
}

export interface DeleteOperation extends OperationBase {
  op: "delete";
  /** Outcome ok, optional: whether the key existed (the KV answers ok / not-found). */
  existed?: boolean;
}

export interface CasOperation extends OperationBase {
  op: "cas";
  /** The value expected; `null`: the key must be absent. */
  expect: string | null;
  value: string;
  /** Outcome ok: "ok" (written) or "mismatch". */
  result?: "ok" | "mismatch";
  /** Result mismatch, optional: the value found, `null` for absent. */
  current?: string | null;
}

/** One operation of a history, as a client saw it. */
export type HistoryOperation = ReadOperation | WriteOperation | DeleteOperation | CasOperation;

export interface CheckOptions {
  /** Search loop iterations allowed per key. Default 5,000,000. */
  stepsMax?: number;
  /** Search loop iterations allowed for minimizing the explanation. Default 2,000,000. */
  explainStepsMax?: number;
}

export type CheckResult =
  | { ok: true }
  | {
      ok: false;
      key: string;
      /** Human-readable: the non-linearizable fragment, one operation per line. */
      explanation: string;
      /** The operations of that fragment, as given in the history. */
      operations: HistoryOperation[];
    }
  | { ok: "unknown"; reason: "search budget exhausted"; keys: string[] };

export const CHECK_STEPS_MAX_DEFAULT = 5_000_000;
export const EXPLAIN_STEPS_MAX_DEFAULT = 2_000_000;
/** Most candidate fragments tried while minimizing an explanation. */
const EXPLAIN_ATTEMPTS_MAX = 2_000;

/** An operation of one key, ready for the search; `index` is its position in the input. */
interface KeyOperation {
  index: number;
  source: HistoryOperation;
  call: number;
  /** Infinity when unknown (or when cut off by a fragment's end: see `cut`). */
  ret: number;
  /** True when a completed operation is treated as unknown because it completed after a prefix's end. */
  cut: boolean;
}

/**
 * Checks a whole history. Throws a RaftwalError with code RAFTWAL_ERR_INVALID_ARGUMENT
 * for a malformed operation (missing result, completion before invocation, ...).
 */
export function checkLinearizable(history: readonly HistoryOperation[], options: CheckOptions = {}): CheckResult {
  const stepsMax = options.stepsMax ?? CHECK_STEPS_MAX_DEFAULT;
  const explainStepsMax = options.explainStepsMax ?? EXPLAIN_STEPS_MAX_DEFAULT;
  const byKey = new Map<string, KeyOperation[]>();
  history.forEach((operation, index) => {
    validate(operation, index);
    if (operation.outcome === "failed") return;
    if (operation.outcome === "unknown" && operation.op === "read") return;
    const known = operation.outcome === "ok";
    let ops = byKey.get(operation.key);
    if (ops === undefined) byKey.set(operation.key, (ops = []));
    ops.push({ index, source: operation, call: operation.invokedAt, ret: known ? operation.completedAt! : Infinity, cut: false });
  });
  const exhausted: string[] = [];
  for (const key of Array.from(byKey.keys()).sort()) {
    const ops = byKey.get(key)!;
    const verdict = searchKey(ops, stepsMax).verdict;
    if (verdict === "unknown") exhausted.push(key);
    if (verdict === "fail") {
      const { fragment, minimized } = explain(ops, explainStepsMax);
      return {
        ok: false,
        key,
        explanation: describe(key, fragment, minimized, history),
        operations: fragment.map((op) => op.source),
      };
    }
  }
  return exhausted.length > 0 ? { ok: "unknown", reason: "search budget exhausted", keys: exhausted } : { ok: true };
}

function validate(operation: HistoryOperation, index: number): void {
  const fail = (message: string) => {
    throw new RaftwalError(ErrorCode.INVALID_ARGUMENT, `history operation #${index}: ${message}`);
  };
  if (typeof operation.key !== "string") fail("key must be a string");
  if (!Number.isFinite(operation.invokedAt)) fail("invokedAt must be a finite number");
  if (operation.outcome !== "ok" && operation.outcome !== "failed" && operation.outcome !== "unknown") fail(`outcome ${String(operation.outcome)}`);
  if (operation.outcome !== "unknown") {
    if (typeof operation.completedAt !== "number" || !Number.isFinite(operation.completedAt)) fail(`outcome ${operation.outcome} needs a finite completedAt`);
    if (operation.completedAt! < operation.invokedAt) fail(`completedAt ${operation.completedAt} before invokedAt ${operation.invokedAt}`);
  }
  const ok = operation.outcome === "ok";
  switch (operation.op) {
    case "read":
      if (ok && operation.result !== null && typeof operation.result !== "string") fail("an ok read needs result: string | null");
      break;
    case "write":
      if (typeof operation.value !== "string") fail("write needs value: string");
      break;
    case "delete":
      if (operation.existed !== undefined && typeof operation.existed !== "boolean") fail("existed must be a boolean");
      break;
    case "cas":
      if (typeof operation.value !== "string") fail("cas needs value: string");
      if (operation.expect !== null && typeof operation.expect !== "string") fail("cas needs expect: string | null");
      if (ok && operation.result !== "ok" && operation.result !== "mismatch") fail('an ok cas needs result "ok" | "mismatch"');
      if (operation.current !== undefined && operation.current !== null && typeof operation.current !== "string") fail("current must be string | null");
      break;
    default:
      fail(`unknown op ${String((operation as { op: unknown }).op)}`);
  }
}

/** The reduction described under "Algorithm" at the top of this file, then interning. */
function toSearchOperations(ops: readonly KeyOperation[]): SearchOperation[] {
  const { values: observed, presenceOnly } = observations(ops);
  const ids = new Map<string, number>();
  const id = (value: string | null): number => {
    if (value === null) return ABSENT;
    let n = ids.get(value);
    if (n === undefined) ids.set(value, (n = ids.size + 1));
    return n;
  };
  const out: SearchOperation[] = [];
  for (const { source, call, ret } of ops) {
    const unknown = ret === Infinity;
    if (unknown && source.op === "read") continue;
    if (unknown && !presenceOnly && (source.op === "write" || source.op === "cas") && !observed.has(source.value)) continue;
    const op: SearchOperation = { kind: OpKind.READ, call, ret, result: 0, value: 0, expect: 0, current: UNCONSTRAINED, existed: UNCONSTRAINED };
    switch (source.op) {
      case "read":
        op.result = id(source.result!);
        break;
      case "write":
        op.kind = OpKind.WRITE;
        op.value = id(source.value);
        break;
      case "delete":
        op.kind = OpKind.DELETE;
        if (!unknown && source.existed !== undefined) op.existed = source.existed ? 1 : 0;
        break;
      case "cas":
        op.kind = unknown ? OpKind.CAS_UNKNOWN : source.result === "ok" ? OpKind.CAS_OK : OpKind.CAS_MISMATCH;
        op.expect = id(source.expect);
        op.value = id(source.value);
        if (op.kind === OpKind.CAS_MISMATCH && source.current !== undefined) op.current = id(source.current);
        break;
    }
    out.push(op);
  }
  return out;
}

function searchKey(ops: readonly KeyOperation[], stepsMax: number) {
  return searchLinearization(toSearchOperations(ops), stepsMax);
}

/** The operations invoked at or before `time`; those completing after it become unknown. */
function prefixAt(ops: readonly KeyOperation[], time: number): KeyOperation[] {
  const out: KeyOperation[] = [];
  for (const op of ops) {
    if (op.call > time) continue;
    if (op.ret > time && op.ret !== Infinity) out.push({ ...op, ret: Infinity, cut: true });
    else out.push(op);
  }
  return out;
}

/** Finds a small non-linearizable fragment of a non-linearizable key history. */
function explain(ops: readonly KeyOperation[], stepsMax: number): { fragment: KeyOperation[]; minimized: boolean } {
  let budget = stepsMax;
  let attempts = 0;
  let minimized = true;
  /** True only when proven non-linearizable within the budget. */
  const fails = (candidate: readonly KeyOperation[]): boolean => {
    if (budget <= 0 || attempts >= EXPLAIN_ATTEMPTS_MAX) {
      minimized = false;
      return false;
    }
    attempts++;
    const result = searchKey(candidate, budget);
    budget -= result.steps;
    if (result.verdict === "unknown") minimized = false;
    return result.verdict === "fail";
  };

  // (1) Shortest non-linearizable prefix, by bisection over invocation times.
  // Infinity stands for the whole history (nothing cut), which is known to fail.
  const times = Array.from(new Set(ops.map((op) => op.call))).sort((a, b) => a - b);
  times.push(Infinity);
  let lo = 0;
  let hi = times.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (fails(prefixAt(ops, times[mid]))) hi = mid;
    else lo = mid + 1;
  }
  let fragment = prefixAt(ops, times[hi]);

  // (2) Delta debugging: remove chunks while the rest still fails and keeps its causes.
  let parts = 2;
  while (fragment.length >= 2) {
    const chunk = Math.ceil(fragment.length / parts);
    let removed = false;
    for (let start = 0; start < fragment.length; start += chunk) {
      const candidate = fragment.slice(0, start).concat(fragment.slice(start + chunk));
      if (safeToRemove(candidate, fragment.slice(start, start + chunk)) && fails(candidate)) {
        fragment = candidate;
        parts = Math.max(parts - 1, 2);
        removed = true;
        break;
      }
    }
    if (!removed) {
      if (chunk === 1) break;
      parts = Math.min(parts * 2, fragment.length);
    }
    if (budget <= 0 || attempts >= EXPLAIN_ATTEMPTS_MAX) {
      minimized = false;
      break;
    }
  }
  return { fragment, minimized };
}

/**
 * Values (null: absent) that the operations of `ops` observe, and whether one of them only
 * observes presence (a delete answering "existed", a mismatch without the value found).
 */
function observations(ops: readonly KeyOperation[]): { values: Set<string | null>; presenceOnly: boolean } {
  const values = new Set<string | null>();
  let presenceOnly = false;
  for (const { source, ret } of ops) {
    const known = ret !== Infinity;
    if (source.op === "read" && known) values.add(source.result ?? null);
    if (source.op === "delete" && known && source.existed === false) values.add(null);
    if (source.op === "delete" && known && source.existed === true) presenceOnly = true;
    if (source.op === "cas") {
      values.add(source.expect);
      if (known && source.result === "mismatch") {
        if (source.current === undefined) presenceOnly = true;
        else values.add(source.current);
      }
    }
  }
  return { values, presenceOnly };
}

/**
 * True if removing `removed` cannot create a violation: no removed operation that may
 * change the state wrote a value (or absence) that a remaining operation observes, and no
 * state change is removed while a remaining answer only observes presence. Then any
 * linearization of the larger set, minus the removed operations, is one of the smaller set:
 * a non-linearizable fragment reached by such removals points at a real violation.
 */
function safeToRemove(candidate: readonly KeyOperation[], removed: readonly KeyOperation[]): boolean {
  const { values, presenceOnly } = observations(candidate);
  for (const { source, ret } of removed) {
    const changesState = source.op === "write" || source.op === "delete" || (source.op === "cas" && (ret === Infinity || source.result === "ok"));
    if (!changesState) continue;
    if (presenceOnly) return false;
    if (values.has(source.op === "delete" ? null : source.value)) return false;
  }
  return true;
}

const show = (value: string | null | undefined): string => (value === null || value === undefined ? "absent" : JSON.stringify(value));

function describeOperation(op: KeyOperation): string {
  const s = op.source;
  const call =
    s.op === "read" ? "read" : s.op === "write" ? `write ${show(s.value)}` : s.op === "delete" ? "delete" : `cas ${show(s.expect)} -> ${show(s.value)}`;
  let answer: string;
  if (op.cut) answer = "(completed after this fragment's end: treated as unknown)";
  else if (s.outcome === "unknown") answer = "unknown (may or may not have taken effect)";
  else if (s.op === "read") answer = show(s.result);
  else if (s.op === "delete") answer = s.existed === undefined ? "ok" : s.existed ? "ok (existed)" : "not found";
  else if (s.op === "cas") answer = s.result === "ok" ? "ok" : s.current === undefined ? "mismatch" : `mismatch (found ${show(s.current)})`;
  else answer = "ok";
  const completed = op.ret === Infinity && !op.cut ? "..." : String(s.completedAt);
  return `  #${op.index} client ${s.clientId} [${s.invokedAt}, ${completed}] ${call} => ${answer}`;
}

function describe(key: string, fragment: readonly KeyOperation[], minimized: boolean, history: readonly HistoryOperation[]): string {
  const lines = [
    `key ${JSON.stringify(key)}: no order of these ${fragment.length} operations respects their real-time order ` +
      `and explains every result with a register (initially absent):`,
  ];
  for (const op of [...fragment].sort((a, b) => a.call - b.call || a.index - b.index)) lines.push(describeOperation(op));
  // A hint for the most common cause: a value no successful or pending write on this key could have produced.
  const writable = new Set<string>();
  for (const op of history) if (op.key === key && op.outcome !== "failed" && (op.op === "write" || op.op === "cas")) writable.add(op.value);
  const required = new Set<string>();
  for (const { source, ret, cut } of fragment) {
    if (ret === Infinity || cut) continue;
    if (source.op === "read" && source.result !== null && source.result !== undefined) required.add(source.result);
    if (source.op === "cas" && source.result === "ok" && source.expect !== null) required.add(source.expect);
    if (source.op === "cas" && source.result === "mismatch" && source.current != null) required.add(source.current);
  }
  for (const value of required) {
    if (!writable.has(value)) lines.push(`  note: ${show(value)} was never written to this key by an operation that could have taken effect`);
  }
  if (!minimized) lines.push("  (not fully minimized: the explanation budget ran out; the fragment is still a violation)");
  return lines.join("\n");
}
