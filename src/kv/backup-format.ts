/**
 * The backup file: what `GET /snapshot` streams, `raftwal snapshot save` writes and
 * `raftwal snapshot restore` reads. A node's state machine snapshot with what a new
 * cluster needs to start from it, checksummed end to end. Pure encoding and decoding; the
 * HTTP route (operations-api.ts) and the commands (src/cli/snapshot-commands.ts) do the I/O.
 *
 * ```
 * offset  size  field
 * 0       8     magic "RWBACKUP"
 * 8       1     version = 1
 * 9       3     zero
 * 12      4     header length H (u32 big-endian, at most HEADER_BYTES_MAX)
 * 16      H     header: JSON (UTF-8), BackupHeader
 * 16+H    P     payload: the state machine's snapshot stream (for the KV service, the
 *               format at the top of state-machine.ts, which has its own SHA-256)
 * end-48  8     trailer magic "RWBKEND\0"
 * end-40  8     P, the payload length (u64 big-endian)
 * end-32  32    SHA-256 of every byte before it
 * ```
 * The payload's length is written after it, so a node streams a backup without knowing its
 * size first; a reader finds the payload between the header and the trailer and checks
 * that the two agree.
 */
import { createHash, type Hash } from "node:crypto";
import { RaftwalError } from "../../storage/errors.js";
import { KvErrorCode } from "./errors.js";

export const BACKUP_MAGIC = Buffer.from("RWBACKUP", "latin1");
export const BACKUP_TRAILER_MAGIC = Buffer.from("RWBKEND\0", "latin1");
export const BACKUP_VERSION = 1;
export const BACKUP_PREFIX_BYTES = 16;
export const BACKUP_TRAILER_BYTES = 48;
const DIGEST_BYTES = 32;
/** A header is a few hundred bytes; anything near this is not a header. */
export const HEADER_BYTES_MAX = 1024 * 1024;

/** What a backup says about itself. */
export interface BackupHeader {
  /** The state machine's applied index when the backup was taken: a restored cluster's log starts after it. */
  index: number;
  /** The cluster's term then: a restored cluster starts from it. */
  term: number;
  clusterId: string;
  /** The node that streamed it. */
  nodeId: number;
  /** The members then, for information: a restore gives the new cluster's members. */
  members: Array<{ id: number; role: string; peerAddress: string; apiAddress: string }>;
  /** When it was taken (ISO 8601). */
  createdAt: string;
  /** The payload's format, e.g. "raftwal-kv/1". */
  payloadFormat: string;
}

export function backupCorrupt(message: string): RaftwalError {
  return new RaftwalError(KvErrorCode.BACKUP_CORRUPT, message);
}

/** The backup's bytes: prefix and header, the payload as it streams, then the trailer. */
export async function* encodeBackup(header: BackupHeader, payload: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const hash = createHash("sha256");
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(BACKUP_PREFIX_BYTES);
  BACKUP_MAGIC.copy(prefix, 0);
  prefix.writeUInt8(BACKUP_VERSION, 8);
  prefix.writeUInt32BE(json.length, 12);
  const head = Buffer.concat([prefix, json]);
  hash.update(head);
  yield head;
  let payloadBytes = 0;
  for await (const chunk of payload) {
    hash.update(chunk);
    payloadBytes += chunk.length;
    yield chunk;
  }
  const trailer = Buffer.alloc(BACKUP_TRAILER_BYTES);
  BACKUP_TRAILER_MAGIC.copy(trailer, 0);
  trailer.writeBigUInt64BE(BigInt(payloadBytes), 8);
  hash.update(trailer.subarray(0, BACKUP_TRAILER_BYTES - DIGEST_BYTES));
  hash.digest().copy(trailer, BACKUP_TRAILER_BYTES - DIGEST_BYTES);
  yield trailer;
}

/**
 * Checks a backup streamed in chunks of any size: `push` every chunk in order, then
 * `finish()` returns the header and the payload's extent, or throws KV_ERR_BACKUP_CORRUPT
 * saying what is wrong. The bytes are not kept (but for the header and the last 48).
 */
export class BackupVerifier {
  private readonly hash: Hash = createHash("sha256");
  private head = Buffer.alloc(0);
  private header: BackupHeader | undefined;
  private headBytes = 0;
  /** The last bytes seen, not hashed yet: the trailer is among them once the stream ends. */
  private tail = Buffer.alloc(0);
  private totalBytes = 0;

  push(chunk: Uint8Array): void {
    this.totalBytes += chunk.length;
    if (this.header === undefined) {
      this.head = Buffer.concat([this.head, chunk]);
      this.header = this.tryHeader();
      if (this.header === undefined) return;
      chunk = this.head.subarray(this.headBytes);
      this.hash.update(this.head.subarray(0, this.headBytes));
      this.head = Buffer.alloc(0);
    }
    // Everything but the last DIGEST_BYTES is hashed as it passes.
    const joined = Buffer.concat([this.tail, chunk]);
    const keep = Math.min(joined.length, BACKUP_TRAILER_BYTES);
    this.hash.update(joined.subarray(0, joined.length - keep));
    this.tail = Buffer.from(joined.subarray(joined.length - keep));
  }

  private tryHeader(): BackupHeader | undefined {
    if (this.head.length >= BACKUP_MAGIC.length && !this.head.subarray(0, BACKUP_MAGIC.length).equals(BACKUP_MAGIC)) throw backupCorrupt("not a raftwal backup (bad magic)");
    if (this.head.length < BACKUP_PREFIX_BYTES) return undefined;
    const version = this.head.readUInt8(8);
    if (version !== BACKUP_VERSION) throw backupCorrupt(`unsupported backup version ${version} (this build reads ${BACKUP_VERSION})`);
    const length = this.head.readUInt32BE(12);
    if (length > HEADER_BYTES_MAX) throw backupCorrupt(`header length ${length} is above ${HEADER_BYTES_MAX}`);
    if (this.head.length < BACKUP_PREFIX_BYTES + length) return undefined;
    this.headBytes = BACKUP_PREFIX_BYTES + length;
    let header: BackupHeader;
    try {
      header = JSON.parse(this.head.subarray(BACKUP_PREFIX_BYTES, this.headBytes).toString("utf8")) as BackupHeader;
    } catch {
      throw backupCorrupt("the header is not JSON");
    }
    if (!Number.isSafeInteger(header.index) || header.index < 1 || !Number.isSafeInteger(header.term) || header.term < 1) {
      throw backupCorrupt(`the header's index ${header.index} and term ${header.term} must be positive integers`);
    }
    return header;
  }

  /** The header, and where the payload lies in the stream (bytes from its start). */
  finish(): { header: BackupHeader; payloadOffset: number; payloadBytes: number } {
    if (this.header === undefined) throw backupCorrupt(`truncated: ${this.totalBytes} bytes, the header is incomplete`);
    if (this.tail.length < BACKUP_TRAILER_BYTES) throw backupCorrupt(`truncated: ${this.totalBytes} bytes, no room for the trailer`);
    const trailer = this.tail;
    if (!trailer.subarray(0, BACKUP_TRAILER_MAGIC.length).equals(BACKUP_TRAILER_MAGIC)) throw backupCorrupt("truncated or damaged: the file does not end with the backup trailer");
    this.hash.update(trailer.subarray(0, BACKUP_TRAILER_BYTES - DIGEST_BYTES));
    const payloadBytes = Number(trailer.readBigUInt64BE(8));
    const expectedBytes = this.totalBytes - this.headBytes - BACKUP_TRAILER_BYTES;
    if (payloadBytes !== expectedBytes) throw backupCorrupt(`the trailer announces ${payloadBytes} payload bytes, the file holds ${expectedBytes}`);
    if (!this.hash.digest().equals(trailer.subarray(BACKUP_TRAILER_BYTES - DIGEST_BYTES))) throw backupCorrupt("checksum mismatch: the backup is damaged");
    return { header: this.header, payloadOffset: this.headBytes, payloadBytes };
  }
}
