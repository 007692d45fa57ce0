/** What the WAL benchmarks share: the entries they append and the statistics they report. */
import { recordBytes } from "../storage/wal/format.js";
import { entryCodec, type Entry } from "../src/proto/schema.js";

export function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const sharedData = new Map<number, Uint8Array>();

/**
 * An entry of `size` data bytes. The data buffer is shared by all entries of one size (the
 * WAL copies it into its batch): the benchmark measures the engine, not the allocator.
 */
export function makeEntry(index: number, size: number): Entry {
  let data = sharedData.get(size);
  if (!data) {
    data = new Uint8Array(size).fill(0x5a);
    sharedData.set(size, data);
  }
  return { index, term: 1, type: 0, data };
}

/** On-disk size of one entry record of `size` data bytes. */
export function entryRecordBytes(size: number): number {
  return recordBytes(entryCodec.encode(makeEntry(1, size)).length);
}
