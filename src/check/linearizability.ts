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
 * There is no wall-clock timeout (the module is deterministic: no clocks); on this kind of
 * machine the search runs roughly a million steps a second, so translate a time budget
 * into steps. Memory: the cache keeps a 64-bit fingerprint per configuration reached, at
 * most one per step, in a table at most half full: up to 128 MB at the default budget. A fingerprint collision could only prune a branch, so a "fail" is
 * confirmed by a second search with independent fingerprints (the chance that both
 * collide is negligible); "ok" needs no confirmation.
 *
 * One reduction keeps windows of concurrent operations cheap (the observer rule in
 * search.ts): a read or CAS mismatch that may go next and is legal in the current state is
 * linearized at once, without branching, since any solution can be reordered to start
 * with it.
 *
 * ## Explanation of a violation (and violations found despite the budget)
 * Removing an operation from a history cannot create a violation as long as it is not a
 * write, delete or successful CAS of a value (or absence) that a remaining operation
 * observes, and no remaining answer only observes presence (`safeToRemove`). So a fragment
 * of a key's history obtained by such removals that is not linearizable proves the whole
 * history is not. The checker uses this twice:
 *   1. The search reports the operation whose return stopped it when it had linearized the
 *      most operations: the likely culprit. Fragments of the culprit plus the 1, 2, 4, ...
 *      operations nearest to it in time (plus the writers their observations require) are
 *      checked until one fails. This also runs when the full search exhausts its budget: a
 *      long history whose exhaustive refutation is too expensive often has a violation that
 *      a 3-operation fragment proves, and then the verdict is a definite `ok: false`.
 *   2. Delta debugging then removes chunks of the fragment, by safe removals only, while it
 *      stays non-linearizable.
 * The explanation prints the fragment one operation per line with its index in the input
 * history, and a note when an observed value was never written by an operation that could
 * have taken effect. Minimization has its own budget (`explainStepsMax`); when it runs
 * out, the fragment is still a proven violation, only less small, and the text says so.
 */
import { RaftwalError, RaftwalErrorCode } from "../../storage/errors.js";
import { ABSENT, OpKind, UNCONSTRAINED, searchLinearization, type SearchOperation, type SearchVerdict } from "./search.js";

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
  /** Infinity when unknown. */
  ret: number;
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
    ops.push({ index, source: operation, call: operation.invokedAt, ret: known ? operation.completedAt! : Infinity });
  });
  const exhausted: string[] = [];
  for (const key of Array.from(byKey.keys()).sort()) {
    const ops = byKey.get(key)!;
    const { verdict, blocked } = searchKey(ops, stepsMax);
    if (verdict === "ok") continue;
    // On "unknown", a small fragment around the likely culprit may still prove a violation.
    const found = explain(ops, blocked, verdict === "fail", explainStepsMax);
    if (found === undefined) exhausted.push(key);
    else {
      const { fragment, minimized } = found;
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
    throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `history operation #${index}: ${message}`);
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
function toSearchOperations(ops: readonly KeyOperation[]): { prepared: SearchOperation[]; origin: number[] } {
  const { values: observed, presenceOnly } = observations(ops);
  const ids = new Map<string, number>();
  const id = (value: string | null): number => {
    if (value === null) return ABSENT;
    let n = ids.get(value);
    if (n === undefined) ids.set(value, (n = ids.size + 1));
    return n;
  };
  const out: SearchOperation[] = [];
  const origin: number[] = [];
  for (let i = 0; i < ops.length; i++) {
    const { source, call, ret } = ops[i];
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
    origin.push(i);
  }
  return { prepared: out, origin };
}

/**
 * Searches one key's operations. A "fail" is confirmed by a second search with independent
 * cache fingerprints (see search.ts). `blocked` indexes `ops`: the likeliest culprit, or -1.
 */
function searchKey(ops: readonly KeyOperation[], stepsMax: number): { verdict: SearchVerdict; steps: number; blocked: number } {
  const { prepared, origin } = toSearchOperations(ops);
  const first = searchLinearization(prepared, stepsMax, 0);
  const blocked = first.blockedOp >= 0 ? origin[first.blockedOp] : -1;
  if (first.verdict !== "fail") return { verdict: first.verdict, steps: first.steps, blocked };
  const second = searchLinearization(prepared, stepsMax, 1);
  return { verdict: second.verdict, steps: first.steps + second.steps, blocked };
}

function changesState({ source, ret }: KeyOperation): boolean {
  return source.op === "write" || source.op === "delete" || (source.op === "cas" && (ret === Infinity || source.result === "ok"));
}

/**
 * The smallest superset of `seed` within `ops` from which the rest can be removed safely
 * (see `safeToRemove`): adds every state change that writes a value (or absence) the set
 * observes, and every state change if the set has an answer that only observes presence.
 */
function closure(ops: readonly KeyOperation[], seed: Iterable<number>): number[] {
  const chosen = new Set<number>(seed);
  for (;;) {
    const { values, presenceOnly } = observations(Array.from(chosen, (i) => ops[i]));
    const before = chosen.size;
    ops.forEach((op, i) => {
      if (chosen.has(i) || !changesState(op)) return;
      if (presenceOnly || values.has(op.source.op === "delete" ? null : (op.source as { value: string }).value)) chosen.add(i);
    });
    if (chosen.size === before) return Array.from(chosen).sort((x, y) => x - y);
  }
}

/**
 * Finds a small non-linearizable fragment (see "Explanation" at the top). `knownToFail`:
 * the whole of `ops` is proven non-linearizable. Returns undefined if no fragment could be
 * proven within the budget (then nothing is claimed).
 */
function explain(
  ops: readonly KeyOperation[],
  culprit: number,
  knownToFail: boolean,
  stepsMax: number,
): { fragment: KeyOperation[]; minimized: boolean } | undefined {
  const budget: ExplainBudget = { steps: stepsMax, attempts: 0, minimized: true };
  let fragment = culprit >= 0 ? growFragment(ops, culprit, knownToFail, budget) : undefined;
  if (fragment === undefined) {
    if (!knownToFail) return undefined;
    fragment = ops.slice();
  }
  const shrunk = shrinkFragment(fragment, budget);
  return { fragment: shrunk, minimized: budget.minimized };
}

/** What one explanation may still spend on searches, shared by its steps. */
interface ExplainBudget {
  steps: number;
  attempts: number;
  /** False once a search was cut short or refused: the fragment may not be minimal. */
  minimized: boolean;
}

function budgetSpent(budget: ExplainBudget): boolean {
  return budget.steps <= 0 || budget.attempts >= EXPLAIN_ATTEMPTS_MAX;
}

/** True only when `candidate` is proven non-linearizable within the budget. */
function provenToFail(candidate: readonly KeyOperation[], budget: ExplainBudget): boolean {
  if (budgetSpent(budget)) {
    budget.minimized = false;
    return false;
  }
  budget.attempts++;
  const result = searchKey(candidate, budget.steps);
  budget.steps -= result.steps;
  if (result.verdict === "unknown") budget.minimized = false;
  return result.verdict === "fail";
}

/**
 * Explanation step (1): grows a fragment around the culprit, the 0, 1, 2, 4, ... operations
 * nearest to it in time plus what the closure requires, until one is proven
 * non-linearizable. Undefined when none is (within the budget).
 */
function growFragment(ops: readonly KeyOperation[], culprit: number, knownToFail: boolean, budget: ExplainBudget): KeyOperation[] | undefined {
  const c = ops[culprit];
  const distance = (o: KeyOperation) => Math.max(0, c.call - o.ret, o.call - c.ret);
  const nearest = ops
    .map((_, i) => i)
    .filter((i) => i !== culprit)
    .sort((x, y) => distance(ops[x]) - distance(ops[y]) || y - x);
  for (let k = 0; ; k = k === 0 ? 1 : k * 2) {
    const candidate = closure(ops, [culprit, ...nearest.slice(0, k)]).map((i) => ops[i]);
    if (candidate.length === ops.length) return knownToFail ? candidate : undefined;
    if (provenToFail(candidate, budget)) return candidate;
    if (budget.steps <= 0) return undefined;
  }
}

/** Explanation step (2), delta debugging: removes chunks while the rest still fails, by safe removals only. */
function shrinkFragment(fragment: KeyOperation[], budget: ExplainBudget): KeyOperation[] {
  let current = fragment;
  let parts = 2;
  while (current.length >= 2) {
    const chunk = Math.ceil(current.length / parts);
    let removed = false;
    for (let start = 0; start < current.length; start += chunk) {
      const candidate = current.slice(0, start).concat(current.slice(start + chunk));
      if (safeToRemove(candidate, current.slice(start, start + chunk)) && provenToFail(candidate, budget)) {
        current = candidate;
        parts = Math.max(parts - 1, 2);
        removed = true;
        break;
      }
    }
    if (!removed) {
      if (chunk === 1) break;
      parts = Math.min(parts * 2, current.length);
    }
    if (budgetSpent(budget)) {
      budget.minimized = false;
      break;
    }
  }
  return current;
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
  for (const op of removed) {
    if (!changesState(op)) continue;
    if (presenceOnly) return false;
    if (values.has(op.source.op === "delete" ? null : (op.source as { value: string }).value)) return false;
  }
  return true;
}

const show = (value: string | null | undefined): string => (value === null || value === undefined ? "absent" : JSON.stringify(value));

function describeOperation(op: KeyOperation): string {
  const s = op.source;
  const call =
    s.op === "read" ? "read" : s.op === "write" ? `write ${show(s.value)}` : s.op === "delete" ? "delete" : `cas ${show(s.expect)} -> ${show(s.value)}`;
  let answer: string;
  if (s.outcome === "unknown") answer = "unknown (may or may not have taken effect)";
  else if (s.op === "read") answer = show(s.result);
  else if (s.op === "delete") answer = s.existed === undefined ? "ok" : s.existed ? "ok (existed)" : "not found";
  else if (s.op === "cas") answer = s.result === "ok" ? "ok" : s.current === undefined ? "mismatch" : `mismatch (found ${show(s.current)})`;
  else answer = "ok";
  const completed = op.ret === Infinity ? "..." : String(s.completedAt);
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
  for (const { source, ret } of fragment) {
    if (ret === Infinity) continue;
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
