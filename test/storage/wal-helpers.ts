/** Shared helpers of the WAL tests. */
import { posix } from "node:path";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import type { Entry } from "../../src/proto/schema.js";

export const DIR = "/wal";

/** An entry whose payload is derived from (index, term), so a read-back can be checked exactly. */
export function entry(index: number, term: number, size = 16): Entry {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (index * 31 + term * 7 + i) & 0xff;
  return { index, term, type: 0, data };
}

export function range(from: number, to: number, term: number, size = 16): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, size));
  return out;
}

/** A new MemoryFileSystem holding a durable copy of every file of `dir` (current bytes). */
export async function cloneDir(fs: MemoryFileSystem, dir = DIR): Promise<MemoryFileSystem> {
  const copy = new MemoryFileSystem();
  await copy.ensureDirectory(dir);
  for (const name of await fs.list(dir)) {
    const path = posix.join(dir, name);
    const file = await copy.open(path, { create: true });
    await file.write(fs.currentBytes(path), 0);
    await file.sync();
    await file.close();
  }
  await copy.syncDirectory(dir);
  return copy;
}

export function errorCode(error: unknown): string | undefined {
  return (error as { code?: string } | undefined)?.code;
}

/** The seeded PRNG (src/rng.ts) for the WAL tests: the seed is printed by each test that uses it. */
export { seededRandom } from "../../src/rng.js";
