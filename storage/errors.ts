/**
 * The base of every deliberate raftwal error, and the storage engine's own codes.
 *
 * Every error raftwal raises on purpose is a RaftwalError with a stable `code`. Match on
 * `code`, never on the message text: messages carry detail and may change.
 *
 * The base class lives here, in the lowest layer, so that storage imports nothing from
 * above it. Each layer keeps its codes beside it (this file for storage, src/raft/errors.ts,
 * src/node/errors.ts, src/transport/errors.ts, src/kv/errors.ts) as a table of
 * name -> { code, meaning }; src/errors.ts gathers the tables into the one registry that
 * the README's Errors section is checked against.
 *
 * Programmer errors (a broken invariant, an impossible transition) are assertions, not
 * RaftwalErrors, and are not meant to be caught.
 */
export class RaftwalError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** One stable code and what it means, in one line (the README shows it as written). */
export interface ErrorCodeEntry {
  readonly code: string;
  readonly meaning: string;
}

/** One layer's codes: a short name (used in code) -> the code and its meaning. */
export type ErrorCodeTable = Readonly<Record<string, ErrorCodeEntry>>;

/** The short name -> code map of a table, for code sites: `WalErrorCode.CORRUPT`. */
export function codesOf<const T extends ErrorCodeTable>(table: T): { readonly [K in keyof T]: T[K]["code"] } {
  return Object.freeze(Object.fromEntries(Object.entries(table).map(([name, entry]) => [name, entry.code]))) as {
    readonly [K in keyof T]: T[K]["code"];
  };
}

/** Codes any layer raises (prefix RAFTWAL_ERR_). */
export const RAFTWAL_ERRORS = {
  INVALID_ARGUMENT: {
    code: "RAFTWAL_ERR_INVALID_ARGUMENT",
    meaning: "An argument or option outside its documented range (a bad configuration, an entry too large, indexes out of order).",
  },
} as const satisfies ErrorCodeTable;
export const RaftwalErrorCode = codesOf(RAFTWAL_ERRORS);
export type RaftwalErrorCode = (typeof RaftwalErrorCode)[keyof typeof RaftwalErrorCode];

/** The storage engine's codes (prefix WAL_ERR_): the WAL, the hard-state file, the snapshot store. */
export const WAL_ERRORS = {
  CORRUPT: {
    code: "WAL_ERR_CORRUPT",
    meaning:
      "Acknowledged data is damaged (a bad record before the last complete batch, a commit index ahead of the log); never repaired automatically. A `WalCorruptionError` names `segment`, `offset` and `indexes`.",
  },
  FAILED: {
    code: "WAL_ERR_FAILED",
    meaning: "A write or fsync failed: the WAL (or hard-state file, snapshot store) refuses every later write. Never retried: reopen to recover.",
  },
  CLOSED: { code: "WAL_ERR_CLOSED", meaning: "The WAL, snapshot store or storage was closed." },
  NOT_A_WAL: { code: "WAL_ERR_NOT_A_WAL", meaning: "A directory or file is not a raftwal WAL or segment." },
  COMPACTED: { code: "WAL_ERR_COMPACTED", meaning: "An index below the first entry the storage holds: it is compacted into a snapshot." },
  UNAVAILABLE: { code: "WAL_ERR_UNAVAILABLE", meaning: "An index above the last entry, or a snapshot read when there is no snapshot." },
  HARD_STATE_CORRUPT: { code: "WAL_ERR_HARD_STATE_CORRUPT", meaning: "The hard-state file is damaged (it is never read as term 0)." },
  SNAPSHOT_CORRUPT: {
    code: "WAL_ERR_SNAPSHOT_CORRUPT",
    meaning: "A snapshot file fails its checksum or is malformed, or the snapshot that covered compacted entries is gone.",
  },
  LOCKED: {
    code: "WAL_ERR_LOCKED",
    meaning: "The data directory is in use: another process (a running node, `raftwal wal repair`) or another open storage holds its lock. The message names the holder's pid.",
  },
} as const satisfies ErrorCodeTable;
export const WalErrorCode = codesOf(WAL_ERRORS);
export type WalErrorCode = (typeof WalErrorCode)[keyof typeof WalErrorCode];
