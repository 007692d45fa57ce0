/**
 * What `raftwal wal verify` adds for a damaged node data directory: what a node started on
 * it with onStorageCorruption "repair" (the default) would keep, fetch again from the
 * leader, relearn and set aside (storage/damage-assessment.ts), found without modifying
 * anything, so an operator knows before starting the node.
 */
import type { FileSystem } from "../../storage/fs/file-system.js";
import { assessWal, planRepair, type RepairPlan } from "../../storage/damage-assessment.js";
import { readRepairMarker } from "../../storage/repair-marker.js";
import type { SnapshotListing } from "../../storage/snapshot-store.js";
import type { VerifyResult } from "../../storage/wal/index.js";
import type { WalTarget } from "./wal-target.js";

/** The parts of the health check the plan is made from. */
export interface FoundParts {
  wal: VerifyResult;
  hardState?: { state?: { commit: number }; problem?: string };
  snapshots?: SnapshotListing[];
}

/** The newest snapshot whose checksums verify ({0, 0}: none), and whether a newer one is damaged. */
export function newestValidSnapshot(snapshots: SnapshotListing[]): { index: number; term: number; newerDamaged: boolean } {
  const valid = snapshots.findIndex((snapshot) => snapshot.status !== "corrupt");
  const chosen = valid < 0 ? undefined : snapshots[valid];
  const newerDamaged = (valid < 0 ? snapshots : snapshots.slice(0, valid)).some((snapshot) => snapshot.status === "corrupt");
  return { index: chosen?.meta?.index ?? chosen?.index ?? 0, term: chosen?.meta?.term ?? chosen?.term ?? 0, newerDamaged };
}

/**
 * The plan for a data directory found damaged or still under repair (undefined otherwise,
 * and for a WAL directory on its own: a node opens a data directory, whose hard state and
 * snapshots decide as much as its WAL).
 */
export async function repairPlanOf(fs: FileSystem, target: WalTarget, found: FoundParts, damaged: boolean): Promise<RepairPlan | undefined> {
  if (target.lockDirectory === undefined || found.hardState === undefined || found.snapshots === undefined) return undefined;
  const marker = await readRepairMarker(fs, target.lockDirectory);
  // A healthy directory is not read twice; one an earlier repair left unfinished is.
  if (!damaged && marker === undefined) return undefined;
  const wal = await assessWal(target.walDirectory, fs, found.wal.corruption);
  return planRepair({
    wal,
    hardState: found.hardState.problem !== undefined ? { lost: true } : { lost: false, commit: found.hardState.state?.commit ?? 0 },
    snapshot: newestValidSnapshot(found.snapshots),
    ...(marker ? { marker } : {}),
  });
}

/** The plan in lines of text, under a heading line. */
export function repairPlanText(plan: RepairPlan): string {
  const lines = ['repair: a node started with onStorageCorruption "repair" (the default) would'];
  if (plan.earlierRepair) lines.push(`finish the repair an earlier start began (its REPAIRING mark: ${markerText(plan.earlierRepair)})`);
  lines.push(keptText(plan));
  if (plan.lost) {
    const { fromIndex, toIndex, why } = plan.lost;
    lines.push(
      toIndex >= fromIndex
        ? `fetch entries ${fromIndex}..${toIndex} again from the leader (${toIndex}: ${why}), counting toward no quorum until it holds them`
        : `lose no entry past index ${plan.keptToIndex}, and catch up with the leader before it counts toward a quorum again`,
    );
  }
  lines.push(plan.termAndVoteLost ? "relearn its term and vote from the voters before it votes again (the hard state is damaged)" : "keep its term and vote");
  if (plan.setAside.length > 0) lines.push(`set aside (renamed or copied to *.damaged*, never deleted): ${plan.setAside.join(", ")}`);
  return `${lines[0]}\n${lines.slice(1).map((line) => `  ${line}\n`).join("")}`;
}

function keptText(plan: RepairPlan): string {
  const snapshot = plan.snapshot;
  const from = snapshot && (snapshot.index > 0 ? `the snapshot at index ${snapshot.index} (term ${snapshot.term})` : "no snapshot");
  if (snapshot?.logRestartsEmpty) return `restart from ${from} with an empty log: ${snapshot.reason} (the log was compacted to ${snapshot.compactedIndex})`;
  const kept = `keep its log up to index ${plan.keptToIndex}`;
  if (snapshot) return `restart from ${from}, the newest valid one, and ${kept}: ${snapshot.reason}`;
  if (plan.log) return `${kept} (the WAL's intact prefix, up to the last whole batch before the damage)`;
  return plan.commitAhead !== undefined ? `${kept} (its commit index ${plan.commitAhead} is ahead of it)` : `${kept} (nothing in it is damaged)`;
}

function markerText(marker: NonNullable<RepairPlan["earlierRepair"]>): string {
  const parts = [marker.logLost ? `log entries lost up to index ${marker.lostToIndex}` : "", marker.hardStateLost ? "term and vote lost" : ""];
  return parts.filter(Boolean).join(", ") || "nothing lost";
}

/** The plan as JSON (`repair` in `verify --json`): null when a repair would find nothing. */
export function repairPlanJson(plan: RepairPlan | undefined): object | null {
  if (!plan) return null;
  const { setAside: _fromSalvage, ...log } = plan.log ?? { setAside: [] };
  return {
    keptToIndex: plan.keptToIndex,
    fetch: plan.lost ?? null,
    termAndVote: plan.termAndVoteLost ? "relearned" : "kept",
    snapshot: plan.snapshot ?? null,
    log: plan.log ? log : null,
    commitAhead: plan.commitAhead ?? null,
    earlierRepair: plan.earlierRepair ?? null,
    setAside: plan.setAside,
  };
}
