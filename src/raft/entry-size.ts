/**
 * The one measure of an entry's size used for every byte limit in the core
 * (message size, in-flight bytes, uncommitted bytes) and by `entries(lo, hi, bytesMax)`:
 * the payload length. Fixed per-entry overhead (term, index, type) is not counted, so
 * a limit is a bound on application bytes.
 */
import type { Entry } from "../proto/schema.js";

export function entrySizeBytes(entry: Entry): number {
  return entry.data.length;
}
