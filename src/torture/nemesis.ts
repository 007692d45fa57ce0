/**
 * The nemesis: which faults a run injects, and when, all drawn from the run's seed before
 * the run starts (`planFaults`), so the same seed and flags give the same schedule. The
 * schedule names targets by role ("the leader", "a follower", a split of the nodes by
 * position); which node id that is gets resolved when the step runs (faults.ts).
 *
 * Faults run one at a time: wait `delayBeforeMs`, inject, hold for `durationMs`, heal,
 * and the next step starts. Every step heals what it did before the next begins, so the
 * end of the safety phase only has to undo the step in progress.
 */
import { seededRandom } from "../rng.js";

/** Nemesis groups, as named by `--nemesis`. */
export const NEMESIS_GROUPS = {
  kill: ["kill-leader", "kill-follower", "kill-majority", "kill-all"],
  pause: ["pause-leader"],
  partition: ["partition-isolate", "partition-split", "partition-bridge"],
  powerloss: ["powerloss-all", "powerloss-node", "tear-node"],
  disk: ["disk-wal", "disk-hardstate", "disk-snapshot", "disk-leader", "disk-majority", "disk-live"],
  snapshot: ["snapshot-catchup"],
  membership: ["member-add", "member-promote", "member-remove", "member-replace"],
} as const;

export type NemesisGroup = keyof typeof NEMESIS_GROUPS;
export type FaultKind = (typeof NEMESIS_GROUPS)[NemesisGroup][number];

export const ALL_NEMESIS_GROUPS = Object.keys(NEMESIS_GROUPS) as NemesisGroup[];

export interface FaultStep {
  /** Position in the schedule, from 0. */
  index: number;
  kind: FaultKind;
  /** Quiet time before the fault is injected. */
  delayBeforeMs: number;
  /** How long the fault lasts (down time, partition, pause) before it is healed. */
  durationMs: number;
  /** Numbers in [0, 1) that choose targets (a follower, the split), drawn with the schedule. */
  picks: number[];
  /** Seeds what the step randomizes itself (the torn prefix, the bit flipped). */
  seed: number;
}

export interface PlanOptions {
  seed: number;
  /** Length of the safety phase the schedule must fit. */
  durationMs: number;
  groups: readonly NemesisGroup[];
}

/** Quiet time between faults: enough for an election (a few hundred ms at 20 ms ticks) and some traffic. */
export const DELAY_BEFORE_MS = { min: 300, max: 1500 } as const;
/** How long one fault lasts. */
export const DURATION_MS = { min: 300, max: 3000 } as const;
/** Picks drawn per step (more than any step uses). */
const PICKS_PER_STEP = 4;
/** Bound on steps in one schedule (a 24 h run at the shortest steps stays under it). */
export const FAULT_STEPS_MAX = 200_000;

/** Draws the whole fault schedule from the seed. Pure: the same options give the same steps. */
export function planFaults(options: PlanOptions): FaultStep[] {
  if (options.groups.length === 0) return [];
  const kinds = options.groups.flatMap((group) => {
    const members = NEMESIS_GROUPS[group] as readonly FaultKind[] | undefined;
    if (!members) throw new Error(`unknown nemesis '${group}' (known: ${ALL_NEMESIS_GROUPS.join(", ")})`);
    return [...members];
  });
  const random = seededRandom(options.seed);
  const between = (range: { min: number; max: number }) => Math.round(range.min + random() * (range.max - range.min));
  const steps: FaultStep[] = [];
  let plannedMs = 0;
  while (steps.length < FAULT_STEPS_MAX) {
    const kind = kinds[Math.floor(random() * kinds.length)];
    const delayBeforeMs = between(DELAY_BEFORE_MS);
    const durationMs = between(DURATION_MS);
    const picks = Array.from({ length: PICKS_PER_STEP }, () => random());
    const seed = Math.floor(random() * 2 ** 32);
    if (plannedMs + delayBeforeMs + durationMs > options.durationMs) break;
    plannedMs += delayBeforeMs + durationMs;
    steps.push({ index: steps.length, kind, delayBeforeMs, durationMs, picks, seed });
  }
  return steps;
}

/** Parses `--nemesis kill,partition` (or `all`). */
export function parseNemesisGroups(value: string): NemesisGroup[] {
  if (value.trim() === "all") return [...ALL_NEMESIS_GROUPS];
  const groups = value.split(",").map((part) => part.trim()).filter((part) => part.length > 0);
  for (const group of groups) {
    if (!(group in NEMESIS_GROUPS)) throw new Error(`unknown nemesis '${group}' (known: ${ALL_NEMESIS_GROUPS.join(", ")}, or all)`);
  }
  return [...new Set(groups)] as NemesisGroup[];
}

/** Chooses `count` distinct items of `items` with the step's picks (deterministic given the picks). */
export function choose<T>(items: readonly T[], count: number, picks: readonly number[]): T[] {
  const pool = [...items];
  const chosen: T[] = [];
  for (let k = 0; k < count && pool.length > 0; k++) {
    const pick = picks[k % picks.length];
    chosen.push(pool.splice(Math.floor(pick * pool.length), 1)[0]);
  }
  return chosen;
}
