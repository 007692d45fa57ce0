/**
 * raftwal's one seeded pseudo-random number generator (xoshiro128**, seeded through
 * splitmix32), for everything that must replay from a seed: the Raft core's election
 * timeouts (injected as `RaftConfig.random`), the simulator (every random choice of a run
 * is drawn from one run seed), the torture suite's workload and nemesis, and randomized
 * tests. Nothing here reads the wall clock or the OS; a caller that wants an unpredictable
 * seed draws one itself (the node runtime does, from the OS, unless given `seed`).
 */

const UINT32_RANGE = 0x1_0000_0000;

/** splitmix32: spreads a 32-bit seed over the state words. */
function splitmix32(state: number): { value: number; state: number } {
  state = (state + 0x9e3779b9) >>> 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return { value: (z ^ (z >>> 16)) >>> 0, state };
}

/** FNV-1a over a label, so derived streams depend on (seed, label) only, not on call order. */
function hashLabel(label: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    hash ^= label.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(readonly seed: number) {
    let state = seed >>> 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const next = splitmix32(state);
      state = next.state;
      words.push(next.value);
    }
    [this.s0, this.s1, this.s2, this.s3] = words as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // xoshiro's all-zero state is a fixed point.
  }

  /** An independent stream derived from this generator's seed and a label (not from its position). */
  derive(label: string): Rng {
    return new Rng((Math.imul(this.seed ^ 0x5bd1e995, 0x27d4eb2d) ^ hashLabel(label)) >>> 0);
  }

  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    return result;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.nextUint32() / UINT32_RANGE;
  }

  /** Uniform integer in [0, countExclusive). */
  int(countExclusive: number): number {
    if (!(countExclusive >= 1)) throw new Error(`Rng.int: bad bound ${countExclusive}`);
    return Math.floor(this.float() * countExclusive);
  }

  /** Uniform integer in [min, max], both included. */
  between(min: number, max: number): number {
    if (max < min) throw new Error(`Rng.between: ${min} > ${max}`);
    return min + this.int(max - min + 1);
  }

  /** True with probability `probability`. */
  chance(probability: number): boolean {
    return probability > 0 && this.float() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Rng.pick: empty");
    return items[this.int(items.length)]!;
  }

  /** A new array with the items in random order (Fisher-Yates). */
  shuffled<T>(items: readonly T[]): T[] {
    const copy = items.slice();
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  }

  /** A function in the shape RaftConfig.random expects. */
  asRandomFunction(): () => number {
    return () => this.float();
  }
}

/** A function in the shape RaftConfig.random expects, drawn from `new Rng(seed)`. */
export function seededRandom(seed: number): () => number {
  return new Rng(seed).asRandomFunction();
}
