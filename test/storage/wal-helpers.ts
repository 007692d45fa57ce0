/** Shared helpers of the WAL tests. */
import { posix } from "node:path";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import type { Entry } from "../../src/proto/schema.js";
import type { Wal } from "../../storage/wal/index.js";

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

/** A new MemoryFileSystem holding a durable copy of every file of `dir` and its subdirectories (current bytes). */
export async function cloneDir(fs: MemoryFileSystem, dir = DIR, copy = new MemoryFileSystem()): Promise<MemoryFileSystem> {
  await copy.ensureDirectory(dir);
  for (const name of await fs.list(dir)) {
    const path = posix.join(dir, name);
    if (await fs.isDirectory(path)) {
      await cloneDir(fs, path, copy);
      continue;
    }
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

/** What the WAL should hold: the acknowledged calls applied to an empty log. */
export interface Model {
  compactedIndex: number;
  compactedTerm: number;
  /** entries[k] has index compactedIndex + 1 + k. */
  entries: Entry[];
}

export function lastIndex(model: Model): number {
  return model.compactedIndex + model.entries.length;
}

export function termAt(model: Model, index: number): number | undefined {
  if (index === model.compactedIndex) return model.compactedTerm;
  return model.entries[index - model.compactedIndex - 1]?.term;
}

/** A call to the WAL. */
export type Op = { kind: "append"; entries: Entry[] } | { kind: "truncate"; from: number } | { kind: "compact"; index: number; term: number };

/** The model after `op`, with the WAL's semantics (a compaction keeps the suffix only if the term matches). */
export function applyOp(model: Model, op: Op): Model {
  const next: Model = { ...model, entries: model.entries.slice() };
  if (op.kind === "append") {
    next.entries.length = op.entries[0].index - next.compactedIndex - 1;
    next.entries.push(...op.entries);
  } else if (op.kind === "truncate") {
    next.entries.length = Math.max(0, Math.min(next.entries.length, op.from - next.compactedIndex - 1));
  } else if (op.index > next.compactedIndex) {
    const keep = termAt(model, op.index) === op.term && op.index <= lastIndex(model);
    next.entries = keep ? next.entries.slice(op.index - next.compactedIndex) : [];
    next.compactedIndex = op.index;
    next.compactedTerm = op.term;
  }
  return next;
}

/** What the WAL holds, read back through its API (entries from the segment files when the cache is off). */
export function snapshot(wal: Wal): Model {
  const entries = wal.lastIndex() >= wal.firstIndex() ? wal.entries(wal.firstIndex(), wal.lastIndex() + 1, Infinity) : [];
  return { compactedIndex: wal.compactedIndex(), compactedTerm: wal.compactedTerm(), entries };
}

export async function call(wal: Wal, op: Op): Promise<void> {
  if (op.kind === "append") return wal.append(op.entries);
  if (op.kind === "truncate") return wal.truncateSuffix(op.from);
  return wal.compact(op.index, op.term);
}
