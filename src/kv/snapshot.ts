/**
 * The KV snapshot stream format: a pure encoder (state -> chunks of at most
 * SNAPSHOT_CHUNK_BYTES_MAX) and a push parser (chunks of any size -> state) that rejects
 * anything damaged. The byte layout is documented at the top of `state-machine.ts`.
 */
import { createHash, type Hash } from "node:crypto";
import { RaftwalError } from "../../storage/errors.js";
import { KvErrorCode } from "./errors.js";
import { ByteReader, ByteWriter, MalformedBytes, NeedMoreBytes, utf8Decode, utf8Encode } from "./bytes.js";
import { CLIENT_ID_BYTES_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX } from "./command.js";

/** "RWKV". */
export const SNAPSHOT_MAGIC = new Uint8Array([0x52, 0x57, 0x4b, 0x56]);
export const SNAPSHOT_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 16;
/** The Raft core's default InstallSnapshot chunk is 1 MiB; never produce more in one piece. */
export const SNAPSHOT_CHUNK_BYTES_MAX = 1024 * 1024;
export const SNAPSHOT_DIGEST_BYTES = 32;

/** Record types. Zero is invalid so zero-filled space is never read as a record. */
export const RecordType = { KEY: 0x01, SESSION: 0x02, END: 0xfe } as const;

/** Result codes stored with a session (only write results are remembered). */
export const ResultCode = { OK: 1, NOT_FOUND: 2, MISMATCH: 3 } as const;

/** The result of a write, as remembered for de-duplication. */
export type WriteResult = { status: "ok" } | { status: "not-found" } | { status: "mismatch"; current: Uint8Array };

/** One client's de-duplication session. */
export interface Session {
  /** Sequence number of the last write applied for this client. */
  seq: number;
  /** Log index of the last entry that applied or retried a write of this client. */
  lastIndex: number;
  /** What that write returned; a retry with the same seq returns it again. */
  result: WriteResult;
}

/** Everything a snapshot holds. Sessions are in ascending `lastIndex` order. */
export interface KvSnapshotState {
  appliedIndex: number;
  data: Map<string, Uint8Array>;
  sessions: Map<string, Session>;
}

export function encodeKeyRecord(writer: ByteWriter, key: string, value: Uint8Array): ByteWriter {
  return writer.u8(RecordType.KEY).lengthPrefixed(utf8Encode(key)).lengthPrefixed(value);
}

export function encodeSessionRecord(writer: ByteWriter, clientId: string, session: Session): ByteWriter {
  writer.u8(RecordType.SESSION).lengthPrefixed(utf8Encode(clientId)).varint(session.seq).varint(session.lastIndex);
  const result = session.result;
  if (result.status === "ok") writer.u8(ResultCode.OK);
  else if (result.status === "not-found") writer.u8(ResultCode.NOT_FOUND);
  else writer.u8(ResultCode.MISMATCH).lengthPrefixed(result.current);
  return writer;
}

function encodeHeader(appliedIndex: number): Uint8Array {
  const writer = new ByteWriter(SNAPSHOT_HEADER_BYTES);
  writer.bytes(SNAPSHOT_MAGIC).u8(SNAPSHOT_VERSION).u8(0).u8(0).u8(0).u64(appliedIndex);
  return writer.finish();
}

/** Packs bytes into chunks of exactly `chunkBytes` (the last one shorter). */
class Chunker {
  private chunk: Uint8Array;
  private used = 0;
  readonly full: Uint8Array[] = [];

  constructor(private readonly chunkBytes: number) {
    this.chunk = new Uint8Array(chunkBytes);
  }

  write(bytes: Uint8Array): void {
    let offset = 0;
    while (offset < bytes.length) {
      const n = Math.min(bytes.length - offset, this.chunkBytes - this.used);
      this.chunk.set(bytes.subarray(offset, offset + n), this.used);
      this.used += n;
      offset += n;
      if (this.used === this.chunkBytes) {
        this.full.push(this.chunk);
        this.chunk = new Uint8Array(this.chunkBytes);
        this.used = 0;
      }
    }
  }

  rest(): Uint8Array | undefined {
    return this.used > 0 ? this.chunk.subarray(0, this.used) : undefined;
  }
}

/**
 * Serializes `state` record by record. The arrays passed in must not change while the
 * generator runs (the state machine hands over a frozen copy of its entries).
 */
export function* encodeSnapshot(
  appliedIndex: number,
  data: ReadonlyArray<readonly [string, Uint8Array]>,
  sessions: ReadonlyArray<readonly [string, Session]>,
  chunkBytes: number,
): Generator<Uint8Array> {
  if (!(chunkBytes >= 64 && chunkBytes <= SNAPSHOT_CHUNK_BYTES_MAX)) throw new RangeError(`chunkBytes ${chunkBytes} outside 64..${SNAPSHOT_CHUNK_BYTES_MAX}`);
  const digest = createHash("sha256");
  const chunker = new Chunker(chunkBytes);
  const emit = (bytes: Uint8Array) => {
    digest.update(bytes);
    chunker.write(bytes);
  };
  emit(encodeHeader(appliedIndex));
  const writer = new ByteWriter(4096);
  const flush = function* (): Generator<Uint8Array> {
    emit(writer.finish());
    writer.reset();
    yield* chunker.full.splice(0);
  };
  for (const [key, value] of data) {
    encodeKeyRecord(writer, key, value);
    if (writer.size >= chunkBytes) yield* flush();
  }
  for (const [clientId, session] of sessions) {
    encodeSessionRecord(writer, clientId, session);
    if (writer.size >= chunkBytes) yield* flush();
  }
  writer.u8(RecordType.END).varint(data.length).varint(sessions.length);
  yield* flush();
  chunker.write(new Uint8Array(digest.digest()));
  yield* chunker.full.splice(0);
  const rest = chunker.rest();
  if (rest) yield rest;
}

/** Thrown for any damage: the message says what and at which byte offset of the stream. */
function corrupt(offset: number, message: string): RaftwalError {
  return new RaftwalError(KvErrorCode.SNAPSHOT_CORRUPT, `kv snapshot corrupt at byte ${offset}: ${message}`);
}

function decodeText(bytes: Uint8Array, what: string, offset: number): string {
  try {
    return utf8Decode(bytes);
  } catch {
    throw corrupt(offset, `${what} is not valid UTF-8`);
  }
}

/**
 * Push parser: `push(chunk)` for every chunk in order (any sizes, any boundaries), then
 * `finish()` returns the state. Memory is bounded by the state itself plus one record:
 * every length field is checked against its limit before the parser waits for the bytes.
 */
export class SnapshotParser {
  /** Bytes of the stream consumed by complete records (offset of `buffer[position]`). */
  private consumedBytes = 0;
  private buffer: Uint8Array = new Uint8Array(0);
  private position = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** How many more bytes the record at `position` needs at least. */
  private shortfallBytes = 1;
  private headerRead = false;
  private done = false;
  private readonly digest: Hash = createHash("sha256");
  private readonly state: KvSnapshotState = { appliedIndex: 0, data: new Map(), sessions: new Map() };
  private previousSessionIndex = -1;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.done) throw corrupt(this.consumedBytes, `${chunk.length} bytes after the end record`);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < this.shortfallBytes) return;
    this.buffer = concat([this.buffer.subarray(this.position), ...this.pending]);
    this.position = 0;
    this.pending = [];
    this.pendingBytes = 0;
    this.parseAvailable();
  }

  finish(): KvSnapshotState {
    if (!this.done) {
      const buffered = this.buffer.length - this.position + this.pendingBytes;
      throw corrupt(this.consumedBytes, `truncated: the stream ended ${buffered} bytes into a record, before the end record`);
    }
    return this.state;
  }

  private parseAvailable(): void {
    while (!this.done && this.position < this.buffer.length) {
      const reader = new ByteReader(this.buffer, this.position);
      try {
        this.parseRecord(reader);
      } catch (error) {
        if (error instanceof NeedMoreBytes) {
          this.shortfallBytes = error.shortfallBytes;
          return;
        }
        if (error instanceof MalformedBytes) throw corrupt(this.consumedBytes, error.message);
        throw error;
      }
      this.consumedBytes += reader.position - this.position;
      this.position = reader.position;
    }
    this.shortfallBytes = 1;
    if (this.done && this.position < this.buffer.length) {
      throw corrupt(this.consumedBytes, `${this.buffer.length - this.position} bytes after the end record`);
    }
  }

  /** Parses one record completely, then applies it; throws NeedMoreBytes before any side effect. */
  private parseRecord(reader: ByteReader): void {
    const start = reader.position;
    const offset = this.consumedBytes;
    if (!this.headerRead) {
      const header = reader.bytes(SNAPSHOT_HEADER_BYTES);
      for (let i = 0; i < SNAPSHOT_MAGIC.length; i++) {
        if (header[i] !== SNAPSHOT_MAGIC[i]) throw corrupt(0, `not a raftwal KV snapshot (bad magic)`);
      }
      if (header[4] !== SNAPSHOT_VERSION) throw corrupt(4, `unsupported version ${header[4]} (this build reads ${SNAPSHOT_VERSION})`);
      if (header[5] !== 0 || header[6] !== 0 || header[7] !== 0) throw corrupt(5, `reserved header bytes are not zero`);
      this.state.appliedIndex = new ByteReader(header, 8).u64();
      this.digest.update(header);
      this.headerRead = true;
      return;
    }
    const type = reader.u8();
    if (type === RecordType.KEY) {
      const keyLength = reader.varint();
      if (keyLength < 1 || keyLength > KEY_BYTES_MAX) throw corrupt(offset, `key length ${keyLength} outside 1..${KEY_BYTES_MAX}`);
      const keyBytes = reader.bytes(keyLength);
      const valueLength = reader.varint();
      if (valueLength > VALUE_BYTES_MAX) throw corrupt(offset, `value length ${valueLength} above ${VALUE_BYTES_MAX}`);
      const value = reader.bytes(valueLength).slice();
      const key = decodeText(keyBytes, "key", offset);
      if (this.state.data.has(key)) throw corrupt(offset, `duplicate key ${JSON.stringify(key)}`);
      this.state.data.set(key, value);
    } else if (type === RecordType.SESSION) {
      const idLength = reader.varint();
      if (idLength < 1 || idLength > CLIENT_ID_BYTES_MAX) throw corrupt(offset, `client id length ${idLength} outside 1..${CLIENT_ID_BYTES_MAX}`);
      const idBytes = reader.bytes(idLength);
      const seq = reader.varint();
      const lastIndex = reader.varint();
      const code = reader.u8();
      let result: WriteResult;
      if (code === ResultCode.OK) result = { status: "ok" };
      else if (code === ResultCode.NOT_FOUND) result = { status: "not-found" };
      else if (code === ResultCode.MISMATCH) {
        const length = reader.varint();
        if (length > VALUE_BYTES_MAX) throw corrupt(offset, `value length ${length} above ${VALUE_BYTES_MAX}`);
        result = { status: "mismatch", current: reader.bytes(length).slice() };
      } else throw corrupt(offset, `unknown result code ${code}`);
      const clientId = decodeText(idBytes, "client id", offset);
      if (seq < 1) throw corrupt(offset, `session seq 0`);
      if (lastIndex <= this.previousSessionIndex || lastIndex > this.state.appliedIndex) {
        throw corrupt(offset, `session index ${lastIndex} not ascending or above the applied index ${this.state.appliedIndex}`);
      }
      if (this.state.sessions.has(clientId)) throw corrupt(offset, `duplicate session ${JSON.stringify(clientId)}`);
      this.previousSessionIndex = lastIndex;
      this.state.sessions.set(clientId, { seq, lastIndex, result });
    } else if (type === RecordType.END) {
      const keyCount = reader.varint();
      const sessionCount = reader.varint();
      const countedEnd = reader.position;
      const expected = reader.bytes(SNAPSHOT_DIGEST_BYTES);
      if (keyCount !== this.state.data.size || sessionCount !== this.state.sessions.size) {
        throw corrupt(offset, `end record counts ${keyCount} keys / ${sessionCount} sessions, stream held ${this.state.data.size} / ${this.state.sessions.size}`);
      }
      this.digest.update(reader.buffer.subarray(start, countedEnd));
      const actual = this.digest.digest();
      for (let i = 0; i < SNAPSHOT_DIGEST_BYTES; i++) {
        if (actual[i] !== expected[i]) throw corrupt(offset, `SHA-256 checksum mismatch`);
      }
      this.done = true;
      return;
    } else {
      throw corrupt(offset, `unknown record type 0x${type.toString(16)}`);
    }
    this.digest.update(reader.buffer.subarray(start, reader.position));
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
