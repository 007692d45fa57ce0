/**
 * Replaces a small file durably and atomically: the new bytes go to `<path>.tmp`, which is
 * fsynced, renamed over `path`, and the directory fsynced (the rename is durable only then).
 * A crash at any point leaves the old file or the new one whole, never a mix; a leftover
 * `.tmp` is overwritten by the next replace.
 */
import { posix } from "node:path";
import type { FileSystem } from "./file-system.js";

export async function replaceFileDurably(fs: FileSystem, path: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${path}.tmp`;
  const file = await fs.open(temporary, { create: true });
  try {
    await file.truncate(0);
    await file.write(bytes, 0);
    await file.sync();
  } finally {
    await file.close();
  }
  await fs.rename(temporary, path);
  await fs.syncDirectory(posix.dirname(path));
}
