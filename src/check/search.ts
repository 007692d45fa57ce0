/**
 * The search at the heart of the linearizability checker: Wing & Gong's algorithm with
 * Lowe's memoization, in the form Porcupine (`checkSingle` in porcupine/checker.go) uses:
 * call and return events in one doubly linked list sorted by time; at the list's head, try
 * to linearize a call whose operation the model accepts in the current state (lift the
 * call and its return out of the list, push it on a stack, restart from the head); at a
 * return event, the operation it belongs to cannot be linearized any later, so backtrack
 * (pop, restore the state, re-insert, try the next call). A cache of every
 * (linearized set, state) pair reached prunes configurations already explored.
 *
 * Operations of unknown outcome have no return event (their completion is at +infinity),
 * so nothing forces them to be linearized: the search succeeds once every operation with
 * a return event is linearized, leaving the unknown ones that "never took effect".
 *
 * Pure and deterministic; the cache's hash uses fixed Zobrist keys, no randomness.
 */
import assert from "node:assert/strict";

/** State of the register: 0 is "absent", other values are interned ids (>= 1). */
export const ABSENT = 0;
/** Returned by `stepModel` when the operation cannot take effect in that state. */
export const ILLEGAL = -1;
/** Marks "not constrained" in `existed` and `current`. */
export const UNCONSTRAINED = -1;

export const OpKind = {
  /** read returning `result`. */
  READ: 0,
  /** put of `value` (ok or unknown outcome). */
  WRITE: 1,
  /** delete; `existed` is 1/0 when the answer said so, UNCONSTRAINED otherwise. */
  DELETE: 2,
  /** cas that succeeded: state must be `expect`, becomes `value`. */
  CAS_OK: 3,
  /** cas that answered mismatch: state must differ from `expect` (and equal `current` unless UNCONSTRAINED). */
  CAS_MISMATCH: 4,
  /** cas of unknown outcome: if linearized, it takes effect iff the state is `expect`. */
  CAS_UNKNOWN: 5,
} as const;
export type OpKind = (typeof OpKind)[keyof typeof OpKind];

/** One operation of one key, values interned as numbers. */
export interface SearchOperation {
  kind: OpKind;
  /** Invocation time. */
  call: number;
  /** Completion time; Infinity when the outcome is unknown. */
  ret: number;
  /** READ: the value read. */
  result: number;
  /** WRITE, CAS_*: the value written. */
  value: number;
  /** CAS_*: the value expected. */
  expect: number;
  /** CAS_MISMATCH: the value found, or UNCONSTRAINED. */
  current: number;
  /** DELETE: 1 existed, 0 did not, UNCONSTRAINED. */
  existed: number;
}

/**
 * The register-with-CAS model. For an unknown operation, a step that would not change the
 * state is ILLEGAL: linearizing it is the same as never linearizing it, so the search
 * does not branch on it.
 */
export function stepModel(op: SearchOperation, state: number): number {
  const unknown = op.ret === Infinity;
  switch (op.kind) {
    case OpKind.READ:
      return state === op.result ? state : ILLEGAL;
    case OpKind.WRITE:
      return unknown && state === op.value ? ILLEGAL : op.value;
    case OpKind.DELETE:
      if (unknown) return state === ABSENT ? ILLEGAL : ABSENT;
      if (op.existed !== UNCONSTRAINED && (state !== ABSENT ? 1 : 0) !== op.existed) return ILLEGAL;
      return ABSENT;
    case OpKind.CAS_OK:
      return state === op.expect ? op.value : ILLEGAL;
    case OpKind.CAS_MISMATCH:
      if (state === op.expect) return ILLEGAL;
      return op.current === UNCONSTRAINED || state === op.current ? state : ILLEGAL;
    case OpKind.CAS_UNKNOWN:
      return state === op.expect && op.value !== state ? op.value : ILLEGAL;
  }
}

export type SearchVerdict = "ok" | "fail" | "unknown";

export interface SearchResult {
  verdict: SearchVerdict;
  steps: number;
}

/** murmur3's 32-bit finalizer: a fixed, well-mixed function of its input. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

interface CacheEntry {
  state: number;
  /** Index of the first bitset word that is not all ones (every word before it is). */
  from: number;
  /** Words [from, last non-zero word]. */
  words: Uint32Array;
}

function sameSet(entry: CacheEntry, bits: Uint32Array, from: number, to: number): boolean {
  if (entry.from !== from || entry.words.length !== to - from) return false;
  for (let i = 0; i < entry.words.length; i++) if (entry.words[i] !== bits[from + i]) return false;
  return true;
}

/**
 * Is there a linearization of `ops` (one key, initial state ABSENT)? Gives up with
 * "unknown" after `stepsMax` iterations of the search loop.
 */
export function searchLinearization(ops: readonly SearchOperation[], stepsMax: number): SearchResult {
  const n = ops.length;
  // Nodes: 0 = head sentinel, 1 = tail sentinel, then one call node per op and one return node per known op.
  const events: Array<{ time: number; isCall: boolean; op: number }> = [];
  for (let i = 0; i < n; i++) {
    assert.ok(ops[i].call <= ops[i].ret, `operation completes before it is invoked`);
    events.push({ time: ops[i].call, isCall: true, op: i });
    if (ops[i].ret !== Infinity) events.push({ time: ops[i].ret, isCall: false, op: i });
  }
  // Calls before returns at equal times: touching intervals count as concurrent (the conservative reading).
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const nodeCount = events.length + 2;
  const HEAD = 0;
  const TAIL = 1;
  const next = new Int32Array(nodeCount);
  const prev = new Int32Array(nodeCount);
  const nodeOp = new Int32Array(nodeCount);
  const match = new Int32Array(nodeCount).fill(-1); // call node -> its return node, -1 for none
  const isCall = new Uint8Array(nodeCount);
  const callNodeOf = new Int32Array(n);
  let last = HEAD;
  for (let e = 0; e < events.length; e++) {
    const node = e + 2;
    nodeOp[node] = events[e].op;
    isCall[node] = events[e].isCall ? 1 : 0;
    if (events[e].isCall) callNodeOf[events[e].op] = node;
    else match[callNodeOf[events[e].op]] = node;
    next[last] = node;
    prev[node] = last;
    last = node;
  }
  next[last] = TAIL;
  prev[TAIL] = last;

  const unlink = (node: number) => {
    next[prev[node]] = next[node];
    prev[next[node]] = prev[node];
  };
  const relink = (node: number) => {
    next[prev[node]] = node;
    prev[next[node]] = node;
  };

  // Zobrist keys: the hash of a set is the XOR of its members' keys, updated in O(1).
  const zobristA = new Int32Array(n);
  const zobristB = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    zobristA[i] = mix32(2 * i + 0x9e3779b9);
    zobristB[i] = mix32(2 * i + 1 + 0x7f4a7c15);
  }
  const bits = new Uint32Array(Math.ceil(n / 32) + 1);
  // The interesting part of `bits` is words [from, to): all words before `from` are all
  // ones, all from `to` on are zero. Both move by small amounts per step, so they are
  // maintained incrementally (scanning the whole bitset per step made long histories slow).
  // Invariant: bits[w] === 0xffffffff for w < from; bits[w] === 0 for w >= to.
  let from = 0;
  let to = 0;
  const setBit = (op: number) => {
    const w = op >>> 5;
    bits[w] |= 1 << (op & 31);
    if (w + 1 > to) to = w + 1;
    while (from < to && bits[from] === 0xffffffff) from++;
  };
  const clearBit = (op: number) => {
    const w = op >>> 5;
    bits[w] &= ~(1 << (op & 31));
    if (w < from) from = w;
    while (to > from && bits[to - 1] === 0) to--;
  };
  let hashA = 0;
  let hashB = 0;
  const cache = new Map<number, CacheEntry[]>();
  const cacheKey = (a: number, b: number, state: number) =>
    ((a ^ mix32(state + 0x51ed27)) >>> 0) * 2097152 + ((b ^ mix32(state ^ 0x2545f491)) >>> 11);

  /** Adds (bits, state) to the cache; false if it was already there. */
  const remember = (state: number, a: number, b: number): boolean => {
    const key = cacheKey(a, b, state);
    let bucket = cache.get(key);
    if (bucket === undefined) {
      bucket = [];
      cache.set(key, bucket);
    } else {
      for (const entry of bucket) if (entry.state === state && sameSet(entry, bits, from, to)) return false;
    }
    bucket.push({ state, from, words: bits.slice(from, to) });
    return true;
  };

  const stackNode: number[] = [];
  const stackState: number[] = [];
  /** 1 when the entry was linearized by the observer rule (see below): no alternatives to try. */
  const stackForced: number[] = [];
  let state = ABSENT;
  let steps = 0;

  /** Linearizes the operation of call node `node`, taking the state to `newState`; false if that configuration is cached. */
  const tryLift = (node: number, newState: number, forced: boolean): boolean => {
    const op = nodeOp[node];
    setBit(op);
    const a = hashA ^ zobristA[op];
    const b = hashB ^ zobristB[op];
    if (!remember(newState, a, b)) {
      clearBit(op);
      return false;
    }
    hashA = a;
    hashB = b;
    stackNode.push(node);
    stackState.push(state);
    stackForced.push(forced ? 1 : 0);
    state = newState;
    unlink(node);
    if (match[node] >= 0) unlink(match[node]);
    return true;
  };

  /**
   * Undoes linearizations until one that has alternatives left; returns the node to resume
   * the scan at, or -1 when the stack is empty (no linearization exists).
   */
  const backtrack = (): number => {
    while (stackNode.length > 0) {
      const callNode = stackNode.pop()!;
      state = stackState.pop()!;
      const forced = stackForced.pop()!;
      const op = nodeOp[callNode];
      clearBit(op);
      hashA ^= zobristA[op];
      hashB ^= zobristB[op];
      if (match[callNode] >= 0) relink(match[callNode]);
      relink(callNode);
      if (forced === 0) return next[callNode];
    }
    return -1;
  };

  /**
   * The observer rule, a partial-order reduction: a read or a CAS mismatch that is minimal
   * (invoked before every pending return: it sits before the first return event in the
   * list) and legal in the current state can be linearized right now without losing any
   * solution. Any linearization from here places it later at a point with the same state
   * (it does not change the state, and its result pins the state); moving it to the front
   * breaks no real-time constraint (nothing pending had to precede it) and changes no
   * other operation's state. So when such an operation exists it is the only branch tried,
   * and if it fails, this configuration fails. Without the rule, a greedy choice of a
   * concurrent write before a read that needs the old value makes the search revisit
   * many orders of the same window.
   * Returns the call node to linearize, or -1.
   */
  const findLegalObserver = (): number => {
    for (let node = next[HEAD]; node !== TAIL && isCall[node] === 1; node = next[node]) {
      steps++;
      const op = ops[nodeOp[node]];
      if ((op.kind === OpKind.READ || op.kind === OpKind.CAS_MISMATCH) && op.ret !== Infinity && stepModel(op, state) !== ILLEGAL) return node;
    }
    return -1;
  };

  let node = next[HEAD];
  let fresh = true; // at a configuration not yet examined by the observer rule
  while (next[HEAD] !== TAIL) {
    if (++steps > stepsMax) return { verdict: "unknown", steps: steps - 1 };
    if (fresh) {
      fresh = false;
      const observer = findLegalObserver();
      if (observer >= 0) {
        if (tryLift(observer, state, true)) {
          node = next[HEAD];
          fresh = true;
        } else {
          node = backtrack(); // explored before from here, and failed
          if (node < 0) return { verdict: "fail", steps };
        }
        continue;
      }
      node = next[HEAD];
    }
    if (node === TAIL) return { verdict: "ok", steps }; // only unknown calls remain: they never took effect
    if (isCall[node] === 1) {
      const newState = stepModel(ops[nodeOp[node]], state);
      if (newState !== ILLEGAL && tryLift(node, newState, false)) {
        node = next[HEAD];
        fresh = true;
        continue;
      }
      node = next[node];
    } else {
      // A return event: its operation was not linearized in time. Backtrack.
      node = backtrack();
      if (node < 0) return { verdict: "fail", steps };
    }
  }
  return { verdict: "ok", steps };
}
