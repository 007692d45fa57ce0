/**
 * Which seeds a randomized test runs:
 *   - RAFTWAL_SIM_SEED=S        replays seed S only (in every randomized test);
 *   - RAFTWAL_SIM_SEEDS=N       runs N more random seeds after the fixed list (soak);
 *   - otherwise                 the test's fixed seed list.
 * Extra seeds are drawn from the operating system and appear in the test name, so a
 * failing one can be replayed with RAFTWAL_SIM_SEED.
 */
import { randomInt } from "node:crypto";
import { it } from "vitest";

export function simulationSeeds(fixed: readonly number[]): number[] {
  const replay = process.env.RAFTWAL_SIM_SEED;
  if (replay !== undefined && replay !== "") {
    const seed = Number(replay);
    if (!Number.isInteger(seed) || seed < 0) throw new Error(`RAFTWAL_SIM_SEED must be a non-negative integer, got "${replay}"`);
    return [seed];
  }
  const extra = Number(process.env.RAFTWAL_SIM_SEEDS ?? "0");
  if (!Number.isInteger(extra) || extra < 0) throw new Error(`RAFTWAL_SIM_SEEDS must be a non-negative integer`);
  const seeds = [...fixed];
  for (let i = 0; i < extra; i++) seeds.push(randomInt(0, 2 ** 31));
  return seeds;
}

/**
 * Registers one test per seed, named "<name> (seed S)". Each yields one turn of the event
 * loop before its (synchronous) simulation: vitest's worker answers its runner over an RPC
 * with a fixed 60 s timeout, and a long soak (RAFTWAL_SIM_SEEDS=200: thousands of tests run
 * back to back without yielding) left its replies unread that long, so runs whose every
 * test passed exited 1 with "Timeout calling onTaskUpdate" (2 to 5 of them per run).
 */
export function seededTest(name: string, fixed: readonly number[], body: (seed: number, testName: string) => void, timeoutMs?: number): void {
  for (const seed of simulationSeeds(fixed)) {
    it(
      `${name} (seed ${seed})`,
      async () => {
        await new Promise((resolve) => setImmediate(resolve));
        body(seed, name);
      },
      timeoutMs,
    );
  }
}
