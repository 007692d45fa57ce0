import { randomInt } from "node:crypto";

/**
 * A small seeded PRNG (mulberry32) for the Raft core's election timeouts: the core takes
 * its randomness as an injected function so that simulations can replay a seed; a real
 * node seeds it from the operating system unless told otherwise.
 */
export function seededRandom(seed: number = randomInt(0, 2 ** 32 - 1)): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
