/**
 * The one measure of an entry's size used for every byte limit in the core
 * (message size, in-flight bytes, uncommitted bytes) and by MemoryStorage's
 * `entries(lo, hi, bytesMax)`: the payload length. Fixed per-entry overhead (term,
 * index, type) is not counted, so a limit is a bound on application bytes. (The storage
 * engine's `entries` counts encoded bytes, a few more per entry, so it may return fewer
 * entries for the same `bytesMax`.)
 */
import type { Entry } from "../proto/schema.js";

export function entrySizeBytes(entry: Entry): number {
  return entry.data.length;
}
