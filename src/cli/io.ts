/**
 * What a CLI command may touch: injected so tests run commands in-process and read
 * their output without spawning the binary.
 */
import type { FileSystem } from "../../storage/fs/file-system.js";

/** A writable text stream (process.stdout and process.stderr fit). */
export interface TextOutput {
  write(text: string): unknown;
  /** True on a terminal: progress bars are drawn only then. */
  isTTY?: boolean;
  /** Terminal width in characters, when known. */
  columns?: number;
}

export interface CliIo {
  stdout: TextOutput;
  stderr: TextOutput;
  /** What `raftwal kv put KEY -` reads (default: process.stdin). */
  stdin?: AsyncIterable<Uint8Array | string>;
  /** The file system to inspect (default: the real disk). */
  fs?: FileSystem;
  /** Called once `raftwal node` has opened its data and serves (the binary tunes V8 then: v8-tiering.ts). */
  onNodeServing?: () => void;
}

/** Exit codes of every `raftwal` command. Scripts may rely on them. */
export const ExitCode = {
  /** Success; for `wal verify`: every record is healthy. */
  OK: 0,
  /** A usage error or an operational failure (bad path, not a WAL, unreadable file). */
  ERROR: 1,
  /** `wal verify`: the WAL ends in a torn tail (an interrupted write), repairable with `wal repair`. */
  TORN_TAIL: 2,
  /** `wal verify` / `wal repair`: corruption before the last complete batch (or a damaged hard-state or snapshot file). */
  CORRUPT: 3,
  /**
   * `node`: the node refused to start on its data directory as asked (an existing member's
   * empty directory, a bootstrap that does not list it): starting it the same way again
   * cannot succeed. `raftwal cluster` does not restart it.
   */
  REFUSED: 4,
  /** `kv get`, `kv del`, `kv cas` (expecting a value): the key is absent; nothing was done. */
  ABSENT: 5,
  /** `kv cas`: the key holds another value (printed on stdout); nothing was done. */
  MISMATCH: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error that ends a command with a one-line message and an exit code (no stack trace). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.ERROR,
  ) {
    super(message);
    this.name = "CliError";
  }
}
