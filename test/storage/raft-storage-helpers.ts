/** Shared helpers of the composite-storage tests. */
import type { Entry } from "../../src/proto/schema.js";
import type { RaftStorage } from "../../storage/raft-storage.js";
import type { ClusterConfig } from "../../src/proto/schema.js";

const encoder = new TextEncoder();

/** Entry `index` of term `term`, its data naming both (so a mix-up is visible) and `padBytes` long at least. */
export function entry(index: number, term: number, padBytes = 0): Entry {
  const text = `entry ${index} term ${term}`;
  const data = new Uint8Array(Math.max(padBytes, text.length));
  data.set(encoder.encode(text));
  return { index, term, type: 0, data };
}

export function entries(from: number, to: number, term: number, padBytes = 0): Entry[] {
  const result: Entry[] = [];
  for (let index = from; index <= to; index++) result.push(entry(index, term, padBytes));
  return result;
}

/** A deterministic snapshot payload for (index, term) of `sizeBytes`. */
export function snapshotPayload(index: number, term: number, sizeBytes: number): Uint8Array {
  const bytes = new Uint8Array(sizeBytes);
  let x = (index * 31 + term * 7919 + 1) >>> 0;
  for (let i = 0; i < sizeBytes; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

/** Splits `data` into chunks of `chunkBytes`. */
export function* chunksOf(data: Uint8Array, chunkBytes: number): Generator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += chunkBytes) yield data.subarray(offset, offset + chunkBytes);
  if (data.length === 0) yield data;
}

/** Sends a snapshot payload to the storage the way a leader's chunks arrive. */
export async function receiveSnapshot(storage: RaftStorage, meta: { index: number; term: number; config: ClusterConfig }, data: Uint8Array, chunkBytes: number) {
  const full = { ...meta, sizeBytes: data.length };
  let offset = 0;
  for (const chunk of chunksOf(data, chunkBytes)) {
    await storage.writeSnapshotChunk({ meta: full, offset, data: chunk, done: offset + chunk.length >= data.length });
    offset += chunk.length;
  }
  await storage.installSnapshot(full);
  return full;
}

export async function readSnapshotBytes(storage: RaftStorage): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of storage.readSnapshot()) parts.push(chunk);
  return Buffer.concat(parts);
}

export function decodeText(data: Uint8Array): string {
  return new TextDecoder().decode(data).replace(/\0+$/, "");
}
