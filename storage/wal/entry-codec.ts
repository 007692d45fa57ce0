/**
 * The protobuf `Entry` message (src/proto/raftwal.proto), encoded by hand straight into
 * a batch buffer: the same bytes protobufjs's `entryCodec.encode` produces (a test
 * checks it), without allocating a buffer per entry. Decoding uses `entryCodec`.
 *
 *   message Entry { uint64 term = 1; uint64 index = 2; EntryType type = 3; bytes data = 4; }
 *
 * proto3: fields at their default (0, empty) are omitted; fields go in number order.
 */
import type { Entry } from "../../src/proto/schema.js";

const TAG_TERM = (1 << 3) | 0; // varint
const TAG_INDEX = (2 << 3) | 0; // varint
const TAG_TYPE = (3 << 3) | 0; // varint (enum)
const TAG_DATA = (4 << 3) | 2; // length-delimited

function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    bytes++;
  }
  return bytes;
}

function writeVarint(target: Uint8Array, at: number, value: number): number {
  while (value >= 128) {
    target[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  target[at++] = value;
  return at;
}

/** Bytes of the protobuf encoding of `entry`. */
export function encodedEntryBytes(entry: Entry): number {
  let bytes = 0;
  if (entry.term !== 0) bytes += 1 + varintBytes(entry.term);
  if (entry.index !== 0) bytes += 1 + varintBytes(entry.index);
  if (entry.type !== 0) bytes += 1 + varintBytes(entry.type);
  if (entry.data.length !== 0) bytes += 1 + varintBytes(entry.data.length) + entry.data.length;
  return bytes;
}

/** Writes the protobuf encoding of `entry` at `at`; returns the position after it. */
export function writeEntry(target: Uint8Array, at: number, entry: Entry): number {
  if (entry.term !== 0) {
    target[at++] = TAG_TERM;
    at = writeVarint(target, at, entry.term);
  }
  if (entry.index !== 0) {
    target[at++] = TAG_INDEX;
    at = writeVarint(target, at, entry.index);
  }
  if (entry.type !== 0) {
    target[at++] = TAG_TYPE;
    at = writeVarint(target, at, entry.type);
  }
  if (entry.data.length !== 0) {
    target[at++] = TAG_DATA;
    at = writeVarint(target, at, entry.data.length);
    target.set(entry.data, at);
    at += entry.data.length;
  }
  return at;
}

function skipVarint(bytes: Uint8Array, at: number, end: number): number {
  while (at < end && bytes[at] >= 0x80) at++;
  return at + 1;
}

/**
 * The `type` field of an encoded Entry at bytes[start, end) without decoding it (0 when
 * absent, as proto3 omits it): replay uses it to list the rare typed entries. Fields come
 * in number order (term, index, type, data), as writeEntry writes them.
 */
export function encodedEntryType(bytes: Uint8Array, start: number, end: number): number {
  let at = start;
  if (at < end && bytes[at] === TAG_TERM) at = skipVarint(bytes, at + 1, end);
  if (at < end && bytes[at] === TAG_INDEX) at = skipVarint(bytes, at + 1, end);
  if (!(at < end && bytes[at] === TAG_TYPE)) return 0;
  let value = 0;
  let scale = 1;
  for (at += 1; at < end; at++) {
    value += (bytes[at] & 0x7f) * scale;
    if (bytes[at] < 0x80) break;
    scale *= 128;
  }
  return value;
}
