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
  /**
   * The operation whose return event stopped the search when it had linearized the most
   * operations (-1 if none): on "fail" or "unknown", the likeliest culprit.
   */
  blockedOp: number;
}

/** murmur3's 32-bit finalizer: a fixed, well-mixed function of its input. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * A set of 64-bit keys (two int32 halves), open addressing with linear probing. The key
 * (0, 0) is reserved as "empty". Memory: 8 bytes per slot, at most half the slots used.
 */
class KeySet {
  private capacity = 1 << 12;
  private keysA = new Int32Array(this.capacity);
  private keysB = new Int32Array(this.capacity);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds the key; false if it was already there. */
  add(a: number, b: number): boolean {
    if (a === 0 && b === 0) b = 1;
    const mask = this.capacity - 1;
    let slot = a & mask;
    for (;;) {
      const ka = this.keysA[slot];
      const kb = this.keysB[slot];
      if (ka === 0 && kb === 0) break;
      if (ka === a && kb === b) return false;
      slot = (slot + 1) & mask;
    }
    this.keysA[slot] = a;
    this.keysB[slot] = b;
    if (++this.count * 2 > this.capacity) this.grow();
    return true;
  }

  private grow(): void {
    const oldA = this.keysA;
    const oldB = this.keysB;
    this.capacity *= 2;
    this.keysA = new Int32Array(this.capacity);
    this.keysB = new Int32Array(this.capacity);
    const mask = this.capacity - 1;
    for (let i = 0; i < oldA.length; i++) {
      const a = oldA[i];
      const b = oldB[i];
      if (a === 0 && b === 0) continue;
      let slot = a & mask;
      while (this.keysA[slot] !== 0 || this.keysB[slot] !== 0) slot = (slot + 1) & mask;
      this.keysA[slot] = a;
      this.keysB[slot] = b;
    }
  }
}

/**
 * Is there a linearization of `ops` (one key, initial state ABSENT)? Gives up with
 * "unknown" after `stepsMax` iterations of the search loop. "fail" is exact up to a
 * fingerprint collision in the cache (see below): confirm it with another `salt`.
 */
export function searchLinearization(ops: readonly SearchOperation[], stepsMax: number, salt = 0): SearchResult {
  return new LinearizationSearch(ops, salt).run(stepsMax);
}

/**
 * The events as a doubly linked list sorted by time. Nodes: HEAD and TAIL sentinels, then
 * one call node per op and one return node per known op.
 */
interface EventList {
  next: Int32Array;
  prev: Int32Array;
  /** The operation of each node. */
  nodeOp: Int32Array;
  /** Call node -> its return node, -1 for none. */
  match: Int32Array;
  /** 1 for a call node. */
  isCall: Uint8Array;
}

const HEAD = 0;
const TAIL = 1;

function buildEventList(ops: readonly SearchOperation[]): EventList {
  const n = ops.length;
  const events: Array<{ time: number; isCall: boolean; op: number }> = [];
  for (let i = 0; i < n; i++) {
    assert.ok(ops[i].call <= ops[i].ret, `operation completes before it is invoked`);
    events.push({ time: ops[i].call, isCall: true, op: i });
    if (ops[i].ret !== Infinity) events.push({ time: ops[i].ret, isCall: false, op: i });
  }
  // Calls before returns at equal times: touching intervals count as concurrent (the conservative reading).
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const nodeCount = events.length + 2;
  const list: EventList = {
    next: new Int32Array(nodeCount),
    prev: new Int32Array(nodeCount),
    nodeOp: new Int32Array(nodeCount),
    match: new Int32Array(nodeCount).fill(-1),
    isCall: new Uint8Array(nodeCount),
  };
  const { next, prev, nodeOp, match, isCall } = list;
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
  return list;
}

/** One search: the event list, the stack of linearized calls, the cache. Used once. */
class LinearizationSearch {
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly nodeOp: Int32Array;
  private readonly match: Int32Array;
  private readonly isCall: Uint8Array;
  // Zobrist keys: the hash of a set is the XOR of its members' keys, updated in O(1).
  // Fixed functions of (index, salt): deterministic, and independent across salts.
  private readonly zobristA: Int32Array;
  private readonly zobristB: Int32Array;
  private hashA = 0;
  private hashB = 0;
  // The cache holds a 64-bit fingerprint of each (linearized set, state) reached: the
  // set's Zobrist hash mixed with the state. Storing fingerprints rather than the sets keeps
  // an entry at 16 bytes whatever the history's length (a set stored as a bitset costs n/8
  // bytes: gigabytes for long histories with operations that stay unlinearized). Two
  // configurations share a fingerprint with probability about 2^-64 per pair; a collision
  // can only prune a branch, so it can turn "ok" into "fail" but never "fail" into "ok".
  // The caller therefore confirms a "fail" with a second search under independent keys.
  private readonly cache = new KeySet();
  private readonly stackNode: number[] = [];
  private readonly stackState: number[] = [];
  /** 1 when the entry was linearized by the observer rule (see findLegalObserver): no alternatives to try. */
  private readonly stackForced: number[] = [];
  private state = ABSENT;
  private steps = 0;

  constructor(
    private readonly ops: readonly SearchOperation[],
    private readonly salt: number,
  ) {
    ({ next: this.next, prev: this.prev, nodeOp: this.nodeOp, match: this.match, isCall: this.isCall } = buildEventList(ops));
    const n = ops.length;
    this.zobristA = new Int32Array(n);
    this.zobristB = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      this.zobristA[i] = mix32(mix32(2 * i + 0x9e3779b9) ^ mix32(salt + 0x3c6ef372));
      this.zobristB[i] = mix32(mix32(2 * i + 1 + 0x7f4a7c15) ^ mix32(salt + 0xa54ff53a));
    }
  }

  run(stepsMax: number): SearchResult {
    const { next, isCall, nodeOp, ops } = this;
    let deepest = -1;
    let blockedOp = -1;
    let node = next[HEAD];
    let fresh = true; // at a configuration not yet examined by the observer rule
    while (next[HEAD] !== TAIL) {
      if (++this.steps > stepsMax) return { verdict: "unknown", steps: this.steps - 1, blockedOp };
      if (fresh) {
        fresh = false;
        const observer = this.findLegalObserver();
        if (observer >= 0) {
          if (this.tryLift(observer, this.state, true)) {
            node = next[HEAD];
            fresh = true;
          } else {
            node = this.backtrack(); // explored before from here, and failed
            if (node < 0) return { verdict: "fail", steps: this.steps, blockedOp };
          }
          continue;
        }
        node = next[HEAD];
      }
      if (node === TAIL) return { verdict: "ok", steps: this.steps, blockedOp: -1 }; // only unknown calls remain: they never took effect
      if (isCall[node] === 1) {
        const newState = stepModel(ops[nodeOp[node]], this.state);
        if (newState !== ILLEGAL && this.tryLift(node, newState, false)) {
          node = next[HEAD];
          fresh = true;
          continue;
        }
        node = next[node];
      } else {
        // A return event: its operation was not linearized in time. Backtrack.
        if (this.stackNode.length > deepest) {
          deepest = this.stackNode.length;
          blockedOp = nodeOp[node];
        }
        node = this.backtrack();
        if (node < 0) return { verdict: "fail", steps: this.steps, blockedOp };
      }
    }
    return { verdict: "ok", steps: this.steps, blockedOp: -1 };
  }

  /** Linearizes the operation of call node `node`, taking the state to `newState`; false if that configuration is cached. */
  private tryLift(node: number, newState: number, forced: boolean): boolean {
    const op = this.nodeOp[node];
    const a = this.hashA ^ this.zobristA[op];
    const b = this.hashB ^ this.zobristB[op];
    if (!this.cache.add(this.keyA(a, newState), this.keyB(b, newState))) return false;
    this.hashA = a;
    this.hashB = b;
    this.stackNode.push(node);
    this.stackState.push(this.state);
    this.stackForced.push(forced ? 1 : 0);
    this.state = newState;
    this.unlink(node);
    if (this.match[node] >= 0) this.unlink(this.match[node]);
    return true;
  }

  /**
   * Undoes linearizations until one that has alternatives left; returns the node to resume
   * the scan at, or -1 when the stack is empty (no linearization exists).
   */
  private backtrack(): number {
    while (this.stackNode.length > 0) {
      const callNode = this.stackNode.pop()!;
      this.state = this.stackState.pop()!;
      const forced = this.stackForced.pop()!;
      const op = this.nodeOp[callNode];
      this.hashA ^= this.zobristA[op];
      this.hashB ^= this.zobristB[op];
      if (this.match[callNode] >= 0) this.relink(this.match[callNode]);
      this.relink(callNode);
      if (forced === 0) return this.next[callNode];
    }
    return -1;
  }

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
  private findLegalObserver(): number {
    const { next, isCall, nodeOp, ops } = this;
    for (let node = next[HEAD]; node !== TAIL && isCall[node] === 1; node = next[node]) {
      this.steps++;
      const op = ops[nodeOp[node]];
      if ((op.kind === OpKind.READ || op.kind === OpKind.CAS_MISMATCH) && op.ret !== Infinity && stepModel(op, this.state) !== ILLEGAL) return node;
    }
    return -1;
  }

  /** The cache's fingerprint of (linearized set with hash (a, b), state), first half. */
  private keyA(a: number, state: number): number {
    return a ^ mix32(Math.imul(state, 0x9e3779b1) ^ this.salt);
  }

  private keyB(b: number, state: number): number {
    return b ^ mix32(Math.imul(state ^ 0x2545f491, 0x85ebca77) + this.salt);
  }

  private unlink(node: number): void {
    const { next, prev } = this;
    next[prev[node]] = next[node];
    prev[next[node]] = prev[node];
  }

  private relink(node: number): void {
    const { next, prev } = this;
    next[prev[node]] = node;
    prev[next[node]] = node;
  }
}
