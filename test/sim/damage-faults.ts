/**
 * Storage damage as a fault of the randomized runs (simulation.ts): every tick, with the
 * plan's probability, one node's disk is damaged at rest (disk-damage.ts): a live node is
 * crashed first (so the leader is damaged by crashing it), its disk damaged, and it restarts
 * at once or stays down until the fault injector brings it back. Which node, which kind,
 * which record, segment or snapshots are drawn from the run's seed.
 *
 * `overlap` says whether damage may strike while another node is still repairing:
 * "one-at-a-time" waits until no disk carries a repair mark and prefers the nodes damaged
 * least often, so that over a run a majority (in the end every node) is damaged in turn;
 * "several" strikes whenever drawn, a node still repairing included, so several nodes may
 * be repairing at once (a quorum of them ends in RAFT_ERR_UNREPAIRABLE).
 */
import type { Rng } from "../../src/rng.js";
import type { Cluster } from "./cluster.js";
import { DAMAGE_KINDS, type DamageKind, type DamageOutcome } from "./disk-damage.js";
import type { NodeHost } from "./node-host.js";

export interface DamagePlan {
  /** Per tick: damage one node's disk. */
  probability: number;
  /** The kinds drawn from (a kind the disk cannot suffer is replaced by another). */
  kinds: readonly DamageKind[];
  /** Whom: any node (live or down), a live follower, or the leader. */
  target: "any" | "follower" | "leader";
  overlap: "one-at-a-time" | "several";
  /** Probability that the damaged node restarts at once (else it stays down for the fault injector to restart). */
  restartAtOnceProbability: number;
  /** Damage events in a run at most. */
  countMax: number;
}

export const DEFAULT_DAMAGE_PLAN: DamagePlan = {
  probability: 0.01,
  kinds: DAMAGE_KINDS,
  target: "any",
  overlap: "one-at-a-time",
  restartAtOnceProbability: 0.5,
  countMax: Number.POSITIVE_INFINITY,
};

/** Damage events of a run, for the report. */
export interface DamageStats {
  byKind: Partial<Record<DamageKind, number>>;
  /** Nodes whose disk was damaged at least once. */
  nodesDamaged: number[];
  leaderDamaged: number;
}

/** Returns the per-tick step of the damage fault and the run's damage statistics. */
export function damageInjector(cluster: Cluster, plan: DamagePlan, rng: Rng): { step: () => void; stats: DamageStats } {
  const stats: DamageStats = { byKind: {}, nodesDamaged: [], leaderDamaged: 0 };
  const timesDamaged = new Map<number, number>();
  let count = 0;
  const step = (): void => {
    if (count >= plan.countMax || !rng.chance(plan.probability)) return;
    const repairing = cluster.nodes.some((n) => n.disk.repairMark() !== undefined && n.unrepairable === undefined);
    if (plan.overlap === "one-at-a-time" && repairing) return;
    const target = pickTarget(cluster, plan, rng, timesDamaged);
    if (target === undefined) return;
    const wasLeader = target.alive && target.raft().softState().role === "leader";
    if (target.alive) target.crash();
    let outcome: DamageOutcome | undefined;
    for (const kind of rng.shuffled(plan.kinds)) {
      outcome = target.damage(kind, rng);
      if (outcome !== undefined) break;
    }
    if (outcome !== undefined) {
      count += 1;
      stats.byKind[outcome.kind] = (stats.byKind[outcome.kind] ?? 0) + 1;
      if (!stats.nodesDamaged.includes(target.id)) stats.nodesDamaged.push(target.id);
      if (wasLeader) stats.leaderDamaged += 1;
      timesDamaged.set(target.id, (timesDamaged.get(target.id) ?? 0) + 1);
    }
    if (rng.chance(plan.restartAtOnceProbability)) cluster.restart(target.id);
  };
  return { step, stats };
}

function pickTarget(cluster: Cluster, plan: DamagePlan, rng: Rng, timesDamaged: ReadonlyMap<number, number>): NodeHost | undefined {
  const usable = cluster.nodes.filter((n) => !n.retired && n.unrepairable === undefined);
  let candidates: NodeHost[];
  if (plan.target === "leader") candidates = cluster.leaders().slice(0, 1);
  else if (plan.target === "follower") candidates = usable.filter((n) => n.alive && n.raft().softState().role !== "leader");
  else candidates = usable;
  if (candidates.length === 0) return undefined;
  if (plan.overlap === "one-at-a-time") {
    const fewest = Math.min(...candidates.map((n) => timesDamaged.get(n.id) ?? 0));
    candidates = candidates.filter((n) => (timesDamaged.get(n.id) ?? 0) === fewest);
  }
  return rng.pick(candidates);
}
