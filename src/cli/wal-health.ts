/**
 * The health verdict shared by `wal inspect` and `wal verify`: the WAL replayed
 * read-only, plus (for a node data directory) the hard-state file and every snapshot
 * verified in full. Corruption anywhere wins over a torn tail, which wins over healthy.
 */
import type { FileSystem } from "../../storage/fs/file-system.js";
import { readHardState } from "../../storage/hard-state.js";
import type { HardState } from "../../src/proto/schema.js";
import { listSnapshotFiles, type SnapshotListing } from "../../storage/snapshot-store.js";
import { verifyWal, type VerifyProgress, type VerifyResult } from "../../storage/wal/index.js";
import type { RepairPlan } from "../../storage/damage-assessment.js";
import { ExitCode } from "./io.js";
import { newestValidSnapshot, repairPlanOf } from "./wal-repair-plan.js";
import type { WalTarget } from "./wal-target.js";

export interface Health {
  wal: VerifyResult;
  /** Data-directory mode only. `problem` is set when the file is damaged. */
  hardState?: { state?: HardState; exists: boolean; problem?: string };
  /** Data-directory mode only; newest first. */
  snapshots?: SnapshotListing[];
  exitCode: ExitCode;
  /** One line per finding, most severe first; "healthy" when there is none. */
  verdict: string[];
  /** Data-directory mode, damaged or still under repair: what a node started with onStorageCorruption "repair" would do. */
  repair?: RepairPlan;
}

function describeIndexes(indexes: number[]): string {
  if (indexes.length === 0) return "";
  return indexes.length === 1 ? `; entry ${indexes[0]} affected` : `; entries ${indexes.join(", ")} affected`;
}

export async function checkHealth(fs: FileSystem, target: WalTarget, directoryArgument: string, onProgress?: VerifyProgress): Promise<Health> {
  const wal = await verifyWal(target.walDirectory, fs, onProgress);
  const health: Health = { wal, exitCode: ExitCode.OK, verdict: [] };
  const corrupt: string[] = [];
  if (wal.corruption) {
    const c = wal.corruption;
    corrupt.push(`corrupt: WAL ${c.segment} at byte offset ${c.offset}: ${c.reason}${describeIndexes(c.indexes)}`);
  }
  if (target.hardStateDirectory) {
    try {
      const { hardState, exists } = await readHardState(fs, target.hardStateDirectory);
      health.hardState = { state: hardState, exists };
    } catch (error) {
      health.hardState = { exists: true, problem: (error as Error).message };
      corrupt.push(`corrupt: ${(error as Error).message}`);
    }
  }
  if (target.snapshotDirectory) {
    health.snapshots = (await fs.isDirectory(target.snapshotDirectory)) ? await listSnapshotFiles(fs, target.snapshotDirectory, { verifyPayload: true }) : [];
    for (const snapshot of health.snapshots) {
      if (snapshot.status === "corrupt") corrupt.push(`corrupt: snapshot ${snapshot.name}: ${snapshot.problem}`);
    }
  }
  const commitAhead = commitAheadOfLog(health);
  if (commitAhead) corrupt.push(`corrupt: ${commitAhead}`);
  health.verdict.push(...corrupt);
  if (wal.tornTail) {
    const t = wal.tornTail;
    health.verdict.push(
      `torn tail (repairable): WAL ${t.segment} at byte offset ${t.offset}: ${t.bytes} bytes after the last complete batch (${t.reason}); ` +
        `run: raftwal wal repair ${directoryArgument}`,
    );
  }
  health.exitCode = corrupt.length > 0 ? ExitCode.CORRUPT : wal.tornTail ? ExitCode.TORN_TAIL : ExitCode.OK;
  if (health.verdict.length === 0) health.verdict.push("healthy");
  const repair = await repairPlanOf(fs, target, health, corrupt.length > 0);
  if (repair) health.repair = repair;
  return health;
}

/**
 * A durable commit index ahead of the log means acknowledged entries are missing (the
 * storage saves a commit only once the log holds it): an open in "stop" mode refuses it.
 */
function commitAheadOfLog(health: Health): string | undefined {
  const commit = health.hardState?.state?.commit ?? 0;
  if (health.wal.corruption || !health.snapshots) return undefined;
  const lastIndex = Math.max(health.wal.lastIndex, newestValidSnapshot(health.snapshots).index);
  if (commit <= lastIndex) return undefined;
  return `the hard state's commit index ${commit} is ahead of the log's last index ${lastIndex}: acknowledged entries are missing`;
}

/** The verdict in one word, as the exit code says it: healthy (0), torn-tail (2) or corrupt (3). */
export function healthStatus(health: Health): "healthy" | "torn-tail" | "corrupt" {
  return health.exitCode === ExitCode.CORRUPT ? "corrupt" : health.exitCode === ExitCode.TORN_TAIL ? "torn-tail" : "healthy";
}
