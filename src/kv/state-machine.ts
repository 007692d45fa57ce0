/**
 * The replicated key-value state machine: raftwal's reference application. Pure: no
 * I/O, no clock, no randomness, so every replica that applies the same log reaches the
 * same state, byte for byte (`hash()` proves it).
 *
 * ## Data model
 * Keys are non-empty UTF-8 strings (at most KEY_BYTES_MAX = 4 KiB encoded); values are
 * byte arrays (at most VALUE_BYTES_MAX, just under 1 MiB). Operations: put, delete,
 * compare-and-set (CAS), and get (only for reads through the log; local reads use
 * `get()` on the state machine directly).
 *
 * ## Results of `apply`
 * | command | result                                                                     |
 * |---------|----------------------------------------------------------------------------|
 * | put     | `ok`                                                                       |
 * | delete  | `ok` (the key existed) or `not-found`                                      |
 * | cas     | `ok` (written) / `mismatch` with the current value / `not-found` (expect was a value, the key is absent) |
 * | get     | `ok` with the value, or `not-found`                                        |
 * | any     | `stale` (the client already applied a later seq), `invalid` (undecodable) |
 * CAS with `expect: null` means "only if absent": it returns `ok` or `mismatch` with the
 * value that is there. An `invalid` command (bytes no encoder produces) is answered on
 * every replica alike and changes nothing: throwing would make one bad entry stop every
 * replica at the same index, forever.
 *
 * ## Command format (version 1), one command per log entry
 * ```
 * byte 0        version = 1 (a decoder rejects others)
 * byte 1        op: 1 put, 2 delete, 3 cas, 4 get (0 is invalid)
 * put, delete, cas only:
 *   varint      client id length (1..128), then the client id (UTF-8)
 *   varint      seq (1..2^53-1)
 * all:
 *   varint      key length (1..4096), then the key (UTF-8)
 * put:          varint value length, value bytes
 * cas:          1 byte expect flag (0 = absent, 1 = present),
 *               [if 1: varint expect length, expect bytes],
 *               varint value length, value bytes
 * ```
 * Varints are unsigned LEB128 (at most 8 bytes, value below 2^53). No trailing bytes.
 * A hand-written layout rather than protobuf: a put of a 16-byte key and a 256-byte
 * value costs 16 + 256 + about 45 bytes, decoding allocates nothing but the value copy,
 * and the version byte leaves room to change it.
 *
 * ## De-duplication (client sessions)
 * Every write carries `(clientId, seq)`. A client issues writes with increasing seq and
 * has at most one write outstanding at a time (give concurrent workers distinct client
 * ids); it retries a write with the same seq until it gets an answer. Per client id the
 * state machine remembers the last applied seq and its result:
 *   - seq above the remembered one (or an unknown client): the write is applied and its
 *     result remembered (seqs may skip numbers: a client that gave up on a write moves on);
 *   - seq equal: a retry; the remembered result is returned and nothing is applied again,
 *     so a retried non-idempotent write (CAS, put over a newer put) takes effect once;
 *   - seq below: `stale` with the remembered seq; nothing is applied.
 * Reads (`get`) carry no session, and neither does an anonymous write (client id "" and
 * seq 0: what an HTTP write without session headers becomes): it is applied and
 * remembered nowhere, so it costs no session; a client that retries it may apply it twice.
 *
 * Expiry (keeps the table bounded without breaking de-duplication for active clients):
 * a session expires once `sessionExpiryEntries` log indexes have passed since the entry
 * that last applied or retried one of its writes. Before applying the entry at index i,
 * every session with `lastIndex <= i - sessionExpiryEntries` is removed. This depends only
 * on log indexes, so every replica removes the same sessions at the same entry. Each entry
 * touches at most one session, so the table never holds more than `sessionExpiryEntries`
 * sessions. A client whose retry arrives after its session expired is treated as new and
 * its write is applied again: choose the window (default 100,000 entries) far longer than
 * any client keeps retrying. Every replica must use the same window (it is part of the
 * state hash, so a mismatch shows up as divergence).
 *
 * ## Applied index
 * `apply` takes entries in strictly increasing index order (re-applying or going back is an
 * assertion failure). Gaps are allowed because the host does not hand over leader no-ops
 * (entries with empty data); `appliedIndex()` is the index of the last command applied
 * (or the one restored from a snapshot), so a leader no-op never changes the state or the
 * hash.
 *
 * ## Snapshot stream format (version 1)
 * `snapshot()` captures the state at the moment it is called (applying may go on while the
 * stream is consumed) and yields chunks of at most SNAPSHOT_CHUNK_BYTES_MAX (1 MiB).
 * Chunk boundaries carry no meaning: `restore` accepts the same bytes cut anywhere.
 * ```
 * header, 16 bytes:  "RWKV" | version u8 = 1 | 3 zero bytes | applied index u64 big-endian
 * records, each starting with a type byte (0 is invalid):
 *   0x01 key       varint key length, key (UTF-8), varint value length, value
 *   0x02 session   varint client id length, client id (UTF-8), varint seq,
 *                  varint last index, result u8 (1 ok, 2 not-found, 3 mismatch
 *                  followed by varint length and the current value)
 *   0xFE end       varint key count, varint session count,
 *                  32-byte SHA-256 of every byte of the stream before it
 * ```
 * Keys come first, then sessions in ascending last index (the expiry order). `restore`
 * checks magic, version, every length against its limit (before buffering the bytes),
 * UTF-8, duplicates, session order, the counts and the checksum, and that nothing follows
 * the end record; any failure (including a stream that stops early) throws a RaftwalError
 * with code KV_ERR_SNAPSHOT_CORRUPT naming the byte offset, and leaves the current state
 * untouched.
 *
 * ## State hash
 * `hash()` is the hex SHA-256 of a canonical encoding: applied index, expiry window, keys
 * in sorted order with their values, sessions sorted by client id (seq, last index,
 * result). Two replicas have the same hash iff they hold the same state.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Entry } from "../proto/schema.js";
import { ByteWriter, bytesEqual } from "./bytes.js";
import { decodeCommand, type KvCommand, type KvWriteCommand } from "./command.js";
import {
  SNAPSHOT_CHUNK_BYTES_MAX,
  SnapshotParser,
  encodeKeyRecord,
  encodeSessionRecord,
  encodeSnapshot,
  type Session,
  type WriteResult,
} from "./snapshot.js";

/** Default session expiry window, in log entries. See "De-duplication" above. */
export const SESSION_EXPIRY_ENTRIES_DEFAULT = 100_000;

/**
 * What `apply` returns. Byte arrays in results are copies: the caller may keep or change them.
 */
export type KvResult =
  | { status: "ok"; value?: Uint8Array }
  | { status: "not-found" }
  | { status: "mismatch"; current: Uint8Array }
  | { status: "stale"; lastSeq: number }
  | { status: "invalid"; reason: string };

export interface KvStateMachineOptions {
  /** Sessions idle for this many log entries are removed. Same on every replica. Default 100,000. */
  sessionExpiryEntries?: number;
  /** Largest snapshot chunk, 64 bytes .. 1 MiB. Default 1 MiB. Any value restores anywhere. */
  snapshotChunkBytes?: number;
}

export class KvStateMachine {
  private data = new Map<string, Uint8Array>();
  /**
   * Invariant: iteration order is ascending `lastIndex` (a touched session is deleted and
   * re-inserted at the end), so expiry only ever looks at the front.
   */
  private sessions = new Map<string, Session>();
  /** Invariant: every session's lastIndex <= applied. */
  private applied = 0;
  readonly sessionExpiryEntries: number;
  private readonly snapshotChunkBytes: number;

  constructor(options: KvStateMachineOptions = {}) {
    this.sessionExpiryEntries = options.sessionExpiryEntries ?? SESSION_EXPIRY_ENTRIES_DEFAULT;
    this.snapshotChunkBytes = options.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES_MAX;
    assert.ok(Number.isSafeInteger(this.sessionExpiryEntries) && this.sessionExpiryEntries >= 1, "sessionExpiryEntries >= 1");
    assert.ok(this.snapshotChunkBytes >= 64 && this.snapshotChunkBytes <= SNAPSHOT_CHUNK_BYTES_MAX, "snapshotChunkBytes in 64..1 MiB");
  }

  /** Applies one committed entry (non-empty data, index above every index applied before). */
  apply(entry: Entry): KvResult {
    assert.ok(entry.data.length > 0, `entry ${entry.index}: empty data is a leader no-op and must not be applied`);
    assert.ok(
      Number.isSafeInteger(entry.index) && entry.index > this.applied,
      `entry ${entry.index} applied out of order (applied index ${this.applied})`,
    );
    this.applied = entry.index;
    this.expireSessions(entry.index);
    let command: KvCommand;
    try {
      command = decodeCommand(entry.data);
    } catch (error) {
      return { status: "invalid", reason: (error as Error).message };
    }
    if (command.op === "get") {
      const value = this.data.get(command.key);
      return value === undefined ? { status: "not-found" } : { status: "ok", value: value.slice() };
    }
    // An anonymous write (clientId "", seq 0) is applied as it is and remembered nowhere:
    // it costs no session, and a retry of it may apply twice (the client chose that).
    if (command.clientId === "") return copyResult(this.applyWrite(command));
    const session = this.sessions.get(command.clientId);
    if (session !== undefined) {
      if (command.seq < session.seq) return { status: "stale", lastSeq: session.seq };
      if (command.seq === session.seq) {
        this.touch(command.clientId, session, entry.index);
        return copyResult(session.result);
      }
    }
    const result = this.applyWrite(command);
    this.touch(command.clientId, { seq: command.seq, lastIndex: entry.index, result }, entry.index);
    return copyResult(result);
  }

  private applyWrite(command: KvWriteCommand): WriteResult {
    const current = this.data.get(command.key);
    switch (command.op) {
      case "put":
        this.data.set(command.key, command.value);
        return { status: "ok" };
      case "delete":
        if (current === undefined) return { status: "not-found" };
        this.data.delete(command.key);
        return { status: "ok" };
      case "cas":
        if (command.expect === null) {
          if (current !== undefined) return { status: "mismatch", current };
        } else {
          if (current === undefined) return { status: "not-found" };
          if (!bytesEqual(current, command.expect)) return { status: "mismatch", current };
        }
        this.data.set(command.key, command.value);
        return { status: "ok" };
    }
  }

  /** Moves the session to the end of the expiry order with `lastIndex = index`. */
  private touch(clientId: string, session: Session, index: number): void {
    this.sessions.delete(clientId);
    session.lastIndex = index;
    this.sessions.set(clientId, session);
  }

  private expireSessions(index: number): void {
    const expiredAtOrBelow = index - this.sessionExpiryEntries;
    for (const [clientId, session] of this.sessions) {
      if (session.lastIndex > expiredAtOrBelow) break;
      this.sessions.delete(clientId);
    }
  }

  /** The local value of `key` (a copy), or undefined. Not linearizable on its own: see ReadIndex. */
  get(key: string): Uint8Array | undefined {
    return this.data.get(key)?.slice();
  }

  /**
   * Keys that start with `prefix` and sort after `after` (when given), in the order of their
   * UTF-8 bytes (as etcd orders keys), with copies of their values: at most `limit` of
   * them, and no more once `bytesMax` bytes of keys and values are collected (always at
   * least one). `more` says whether matching keys were left out. Not linearizable on its
   * own (see ReadIndex). Costs a pass over every key and a sort of the matches: listing is
   * for operators and small scans, not a hot path.
   */
  list(options: { prefix: string; after?: string; limit: number; bytesMax: number }): { entries: Array<[string, Uint8Array]>; more: boolean } {
    const after = options.after === undefined ? undefined : Buffer.from(options.after);
    const matches: Array<[Buffer, string]> = [];
    for (const key of this.data.keys()) {
      if (!key.startsWith(options.prefix)) continue;
      const bytes = Buffer.from(key);
      if (after === undefined || Buffer.compare(bytes, after) > 0) matches.push([bytes, key]);
    }
    matches.sort((a, b) => Buffer.compare(a[0], b[0]));
    const entries: Array<[string, Uint8Array]> = [];
    let bytes = 0;
    for (const [keyBytes, key] of matches) {
      const value = this.data.get(key)!;
      if (entries.length === options.limit || (entries.length > 0 && bytes + keyBytes.length + value.length > options.bytesMax)) break;
      entries.push([key, value.slice()]);
      bytes += keyBytes.length + value.length;
    }
    return { entries, more: entries.length < matches.length };
  }

  /** Index of the last command applied (or of the restored snapshot); 0 at the start. */
  appliedIndex(): number {
    return this.applied;
  }

  /** Number of keys. */
  size(): number {
    return this.data.size;
  }

  /** Number of live client sessions (at most `sessionExpiryEntries`). */
  sessionCount(): number {
    return this.sessions.size;
  }

  /** The remembered session of a client, for inspection and tests. */
  session(clientId: string): { seq: number; lastIndex: number } | undefined {
    const session = this.sessions.get(clientId);
    return session && { seq: session.seq, lastIndex: session.lastIndex };
  }

  /**
   * Streams the state as it is now, in chunks of at most `snapshotChunkBytes`. The state is
   * captured when this is called (a shallow copy of the entries: stored arrays are never
   * mutated), so `apply` may continue while the stream is consumed.
   */
  snapshot(): AsyncIterable<Uint8Array> {
    const data = Array.from(this.data);
    const sessions = Array.from(this.sessions, ([clientId, s]) => [clientId, { ...s }] as const);
    const chunks = encodeSnapshot(this.applied, data, sessions, this.snapshotChunkBytes);
    return {
      [Symbol.asyncIterator]: () => ({
        next: async () => chunks.next(),
        return: async () => chunks.return(undefined),
      }),
    };
  }

  /**
   * Replaces the whole state with the snapshot streamed by `chunks`. Throws a RaftwalError
   * with code KV_ERR_SNAPSHOT_CORRUPT if the stream is damaged, truncated or not a KV
   * snapshot; the current state is then left as it was.
   */
  async restore(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    const parser = new SnapshotParser();
    for await (const chunk of chunks) parser.push(chunk);
    const state = parser.finish();
    this.data = state.data;
    this.sessions = state.sessions;
    this.applied = state.appliedIndex;
  }

  /** Hex SHA-256 of the canonical state (see "State hash" above). */
  hash(): string {
    const digest = createHash("sha256");
    const writer = new ByteWriter(4096);
    const flush = () => {
      digest.update(writer.finish());
      writer.reset();
    };
    writer.bytes(new TextEncoder().encode("raftwal-kv-state-v1")).varint(this.applied).varint(this.sessionExpiryEntries);
    writer.varint(this.data.size);
    for (const key of Array.from(this.data.keys()).sort()) {
      encodeKeyRecord(writer, key, this.data.get(key)!);
      if (writer.size >= 64 * 1024) flush();
    }
    writer.varint(this.sessions.size);
    for (const clientId of Array.from(this.sessions.keys()).sort()) {
      encodeSessionRecord(writer, clientId, this.sessions.get(clientId)!);
      if (writer.size >= 64 * 1024) flush();
    }
    flush();
    return digest.digest("hex");
  }
}

function copyResult(result: WriteResult): KvResult {
  return result.status === "mismatch" ? { status: "mismatch", current: result.current.slice() } : { ...result };
}
