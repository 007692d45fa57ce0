/**
 * The snapshot file format and file naming. Pure: no I/O.
 *
 * A snapshot file `snapshot-<index>-<term>.snap` (index and term as 20 decimal digits,
 * so names sort in (index, term) order) holds (integers little-endian):
 *
 *   offset       size  field
 *   0            4     magic "RWSN" (0x52 0x57 0x53 0x4E)
 *   4            2     format version (1)
 *   6            2     flags (0; reserved)
 *   8            8     payload length P (bytes; below 2^53)
 *   16           4     metadata length M (bytes; <= SNAPSHOT_META_BYTES_MAX)
 *   20           4     CRC-32 (IEEE) of the payload
 *   24           4     CRC-32 of the metadata
 *   28           4     CRC-32 of header bytes [0, 28)
 *   32           P     payload: the application's snapshot bytes, opaque
 *   32 + P       M     metadata: the `SnapshotMeta` protobuf (index, term, sizeBytes = P, cluster config)
 *
 * The file is exactly 32 + P + M bytes. The payload starts at a fixed offset so a chunk at
 * payload offset o is read at file offset 32 + o; the metadata trails it because its
 * encoding depends on P, which a streamed writer only knows at the end. The header is
 * written last (it sits in a reserved region at offset 0) and the whole file is fsynced
 * before it gets its final name.
 */
import { RaftwalError, RaftwalErrorCode, WalErrorCode } from "../errors.js";
import { snapshotMetaCodec, type SnapshotMeta } from "../../src/proto/schema.js";
import { crc32 } from "../wal/crc.js";

/** "RWSN": identifies a raftwal snapshot file. */
export const SNAPSHOT_MAGIC = 0x4e535752;
export const SNAPSHOT_FORMAT_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 32;
/** Offset of the header checksum: it covers every header byte before it. */
const HEADER_CHECKSUM_OFFSET = 28;
/**
 * The metadata is read whole into memory; 64 KiB holds a configuration of several hundred members with their addresses (a
 * voter id takes at most 11 bytes) and bounds what a garbage length can allocate.
 */
export const SNAPSHOT_META_BYTES_MAX = 64 * 1024;
/** Payload offsets and lengths are JavaScript numbers. */
export const SNAPSHOT_PAYLOAD_BYTES_MAX = Number.MAX_SAFE_INTEGER - SNAPSHOT_HEADER_BYTES - SNAPSHOT_META_BYTES_MAX;

export const SNAPSHOT_FILE_SUFFIX = ".snap";
/** Every file in the snapshot directory ending in this is an unfinished write, removed at open. */
export const SNAPSHOT_TEMPORARY_SUFFIX = ".tmp";
const INDEX_DIGITS = 20;
const SNAPSHOT_NAME_PATTERN = /^snapshot-(\d{20})-(\d{20})\.snap$/;

export interface SnapshotHeader {
  payloadBytes: number;
  metaBytes: number;
  payloadChecksum: number;
  metaChecksum: number;
}

export function snapshotCorrupt(path: string, detail: string, cause?: unknown): RaftwalError {
  return new RaftwalError(WalErrorCode.SNAPSHOT_CORRUPT, `snapshot ${path}: ${detail}`, { cause });
}

/** The final name of the snapshot covering entries up to (index, term). */
export function snapshotFileName(index: number, term: number): string {
  return `snapshot-${String(index).padStart(INDEX_DIGITS, "0")}-${String(term).padStart(INDEX_DIGITS, "0")}${SNAPSHOT_FILE_SUFFIX}`;
}

/** Index and term from a snapshot file name, or undefined if `name` is not one. */
export function parseSnapshotFileName(name: string): { index: number; term: number } | undefined {
  const match = SNAPSHOT_NAME_PATTERN.exec(name);
  if (!match) return undefined;
  const index = Number(match[1]);
  const term = Number(match[2]);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term)) return undefined;
  return { index, term };
}

export function encodeSnapshotMeta(meta: SnapshotMeta): Uint8Array {
  const bytes = snapshotMetaCodec.encode({ index: meta.index, term: meta.term, sizeBytes: meta.sizeBytes, config: meta.config });
  if (bytes.length > SNAPSHOT_META_BYTES_MAX) {
    throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot metadata encodes to ${bytes.length} bytes, over ${SNAPSHOT_META_BYTES_MAX}`);
  }
  return bytes;
}

export function encodeSnapshotHeader(header: SnapshotHeader): Uint8Array {
  const bytes = new Uint8Array(SNAPSHOT_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, SNAPSHOT_MAGIC, true);
  view.setUint16(4, SNAPSHOT_FORMAT_VERSION, true);
  view.setUint16(6, 0, true);
  view.setBigUint64(8, BigInt(header.payloadBytes), true);
  view.setUint32(16, header.metaBytes, true);
  view.setUint32(20, header.payloadChecksum, true);
  view.setUint32(24, header.metaChecksum, true);
  view.setUint32(HEADER_CHECKSUM_OFFSET, crc32(bytes.subarray(0, HEADER_CHECKSUM_OFFSET)), true);
  return bytes;
}

/** Decodes and checks a header; `fileBytes` is the file's size. Throws WAL_ERR_SNAPSHOT_CORRUPT naming `path`. */
export function decodeSnapshotHeader(bytes: Uint8Array, fileBytes: number, path: string): SnapshotHeader {
  if (bytes.length < SNAPSHOT_HEADER_BYTES) throw snapshotCorrupt(path, `${fileBytes} bytes, shorter than the ${SNAPSHOT_HEADER_BYTES}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, SNAPSHOT_HEADER_BYTES);
  const magic = view.getUint32(0, true);
  if (magic !== SNAPSHOT_MAGIC) throw snapshotCorrupt(path, `bad magic 0x${magic.toString(16).padStart(8, "0")} (not a raftwal snapshot)`);
  const storedChecksum = view.getUint32(HEADER_CHECKSUM_OFFSET, true);
  if (storedChecksum !== crc32(bytes.subarray(0, HEADER_CHECKSUM_OFFSET))) throw snapshotCorrupt(path, "header checksum mismatch");
  const version = view.getUint16(4, true);
  if (version !== SNAPSHOT_FORMAT_VERSION) throw snapshotCorrupt(path, `unsupported format version ${version}`);
  const flags = view.getUint16(6, true);
  if (flags !== 0) throw snapshotCorrupt(path, `unknown flags 0x${flags.toString(16)}`);
  const payloadBig = view.getBigUint64(8, true);
  if (payloadBig > BigInt(SNAPSHOT_PAYLOAD_BYTES_MAX)) throw snapshotCorrupt(path, `payload length ${payloadBig} out of range`);
  const header: SnapshotHeader = {
    payloadBytes: Number(payloadBig),
    metaBytes: view.getUint32(16, true),
    payloadChecksum: view.getUint32(20, true),
    metaChecksum: view.getUint32(24, true),
  };
  if (header.metaBytes > SNAPSHOT_META_BYTES_MAX) throw snapshotCorrupt(path, `metadata length ${header.metaBytes} over ${SNAPSHOT_META_BYTES_MAX}`);
  const expected = SNAPSHOT_HEADER_BYTES + header.payloadBytes + header.metaBytes;
  if (fileBytes !== expected) throw snapshotCorrupt(path, `${fileBytes} bytes, the header says ${expected}`);
  return header;
}

/** Decodes and checks the metadata against the header and the file name's (index, term). */
export function decodeSnapshotMeta(
  bytes: Uint8Array,
  header: SnapshotHeader,
  named: { index: number; term: number } | undefined,
  path: string,
): SnapshotMeta {
  if (crc32(bytes) !== header.metaChecksum) throw snapshotCorrupt(path, "metadata checksum mismatch");
  let meta: SnapshotMeta;
  try {
    meta = snapshotMetaCodec.decode(bytes);
  } catch (error) {
    throw snapshotCorrupt(path, "metadata is not a SnapshotMeta message", error);
  }
  if (meta.sizeBytes !== header.payloadBytes) throw snapshotCorrupt(path, `metadata size ${meta.sizeBytes} differs from the header's ${header.payloadBytes}`);
  if (named && (named.index !== meta.index || named.term !== meta.term)) {
    throw snapshotCorrupt(path, `metadata (index ${meta.index}, term ${meta.term}) differs from the file name`);
  }
  return meta;
}
