/**
 * The durable mark of a data directory under repair: `<dir>/REPAIRING`, JSON
 * {logLost, lostToIndex, hardStateLost}. Salvage writes it (durably: temporary file fsynced,
 * renamed, directory fsynced) BEFORE it sets any damaged byte aside, and only the node
 * removes it, once its peers have repaired what was lost. So a crash in the middle of a
 * salvage, or of the repair, reopens as "still repairing": the loss is never forgotten
 * (a forgotten loss would let this node vote with a shortened log or a lost vote).
 */
import { join } from "node:path";
import type { FileSystem } from "./fs/file-system.js";
import { replaceFileDurably } from "./fs/replace-file.js";

export const REPAIR_MARKER_FILE_NAME = "REPAIRING";

export interface RepairMarker {
  /** Log entries were lost (the log ends before what it held). */
  logLost: boolean;
  /** The highest index the log may have held before the damage. */
  lostToIndex: number;
  hardStateLost: boolean;
}

export async function readRepairMarker(fs: FileSystem, directory: string): Promise<RepairMarker | undefined> {
  const path = join(directory, REPAIR_MARKER_FILE_NAME);
  if (!(await fs.exists(path))) return undefined;
  try {
    const parsed = JSON.parse(new TextDecoder().decode(await fs.readFile(path))) as Partial<RepairMarker>;
    return { logLost: parsed.logLost === true, lostToIndex: Number(parsed.lostToIndex ?? 0), hardStateLost: parsed.hardStateLost === true };
  } catch {
    // A damaged mark still says "repairing": assume the worst of what it could have said.
    return { logLost: true, lostToIndex: 0, hardStateLost: true };
  }
}

/** Writes (merging with an existing mark: the union of what was lost) and makes it durable. */
export async function writeRepairMarker(fs: FileSystem, directory: string, marker: RepairMarker): Promise<RepairMarker> {
  const previous = await readRepairMarker(fs, directory);
  const merged = previous
    ? {
        logLost: previous.logLost || marker.logLost,
        lostToIndex: Math.max(previous.lostToIndex, marker.lostToIndex),
        hardStateLost: previous.hardStateLost || marker.hardStateLost,
      }
    : marker;
  await replaceFileDurably(fs, join(directory, REPAIR_MARKER_FILE_NAME), new TextEncoder().encode(JSON.stringify(merged)));
  return merged;
}

/** The repair is complete: remove the mark durably. */
export async function clearRepairMarker(fs: FileSystem, directory: string): Promise<void> {
  const path = join(directory, REPAIR_MARKER_FILE_NAME);
  if (!(await fs.exists(path))) return;
  await fs.remove(path);
  await fs.syncDirectory(directory);
}
