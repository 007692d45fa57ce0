/** What the WAL benchmarks share: the entries they append and their sizes. */
import { recordBytes } from "../storage/wal/format.js";
import { entryCodec, type Entry } from "../src/proto/schema.js";

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
