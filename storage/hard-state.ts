/**
 * The hard state (term, vote, commit) in its own small checksummed file, replaced
 * atomically by write-temp, fsync, rename, fsync-directory.
 *
 * File `<dir>/hardstate` (all integers little-endian):
 *
 *   offset  size  field
 *   0       4     magic "RWHS" (0x52 0x57 0x48 0x53)
 *   4       2     format version (1)
 *   6       2     flags (0; reserved)
 *   8       4     payload length n (bytes, <= HARD_STATE_PAYLOAD_BYTES_MAX)
 *   12      n     payload: the `HardState` protobuf message (hardStateCodec)
 *   12 + n  4     CRC-32 (IEEE) of bytes [0, 12 + n)
 *
 * The file is exactly 16 + n bytes long; anything else is corrupt.
 *
 * Why a temporary file and a rename rather than two alternating slots: with two slots a
 * bit flip in the newest slot is indistinguishable from a torn write of it, so the reader
 * would have to fall back to the older slot, silently rolling back a vote or term that
 * was acknowledged durable (a double vote, Raft paper section 5.2). With rename, the
 * file named `hardstate` only ever holds a complete, fsynced image; any damage to it is
 * media corruption and is reported (WAL_ERR_HARD_STATE_CORRUPT), never read as term 0.
 *
 * Save procedure (each step completes before the next starts):
 *   1. write the new image to `hardstate.tmp` (created or truncated);
 *   2. fsync `hardstate.tmp`;
 *   3. rename `hardstate.tmp` over `hardstate`;
 *   4. fsync the directory. Only now does save() resolve.
 * A crash before step 4 completes leaves the old `hardstate` (or none) in place: the
 * reader sees either the old or the new state. A leftover `hardstate.tmp` is ignored and
 * removed at open. A failed fsync or write is fatal to the instance: it refuses every
 * later save and reports the first failure (never retried and reported as success).
 */
import { join } from "node:path";
import { RaftwalError, RaftwalErrorCode, WalErrorCode } from "./errors.js";
import { hardStateCodec, type HardState } from "../src/proto/schema.js";
import { crc32 } from "./wal/crc.js";
import type { FileSystem } from "./fs/file-system.js";
import { replaceFileDurably } from "./fs/replace-file.js";

export const HARD_STATE_FILE_NAME = "hardstate";
/** `<hardstate>.tmp`: the temporary file replaceFileDurably writes before the rename. */
export const HARD_STATE_TEMPORARY_FILE_NAME = `${HARD_STATE_FILE_NAME}.tmp`;
/** "RWHS": identifies a raftwal hard-state file. */
export const HARD_STATE_MAGIC = 0x53485752;
export const HARD_STATE_FORMAT_VERSION = 1;
/** Magic + version + flags + payload length. */
export const HARD_STATE_HEADER_BYTES = 12;
export const HARD_STATE_CHECKSUM_BYTES = 4;
/**
 * Three uint64 varint fields take at most 3 * (1 tag + 10 value) = 33 bytes; 64 leaves
 * room for a field or two added later while keeping a garbage length from driving a
 * large allocation.
 */
export const HARD_STATE_PAYLOAD_BYTES_MAX = 64;
export const HARD_STATE_FILE_BYTES_MAX = HARD_STATE_HEADER_BYTES + HARD_STATE_PAYLOAD_BYTES_MAX + HARD_STATE_CHECKSUM_BYTES;

/** The hard state of a node that has never saved one. */
export const EMPTY_HARD_STATE: Readonly<HardState> = Object.freeze({ term: 0, vote: 0, commit: 0 });

function corrupt(path: string, detail: string, cause?: unknown): RaftwalError {
  return new RaftwalError(WalErrorCode.HARD_STATE_CORRUPT, `hard-state file ${path}: ${detail}`, { cause });
}

function assertValid(state: HardState): void {
  for (const key of ["term", "vote", "commit"] as const) {
    const value = state[key];
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `hard state ${key} must be a non-negative safe integer, got ${value}`);
    }
  }
}

/** The whole file image for `state`. Pure. */
export function encodeHardStateFile(state: HardState): Uint8Array {
  assertValid(state);
  const payload = hardStateCodec.encode({ term: state.term, vote: state.vote, commit: state.commit });
  if (payload.length > HARD_STATE_PAYLOAD_BYTES_MAX) throw new Error(`hard state encodes to ${payload.length} bytes`);
  const image = new Uint8Array(HARD_STATE_HEADER_BYTES + payload.length + HARD_STATE_CHECKSUM_BYTES);
  const view = new DataView(image.buffer);
  view.setUint32(0, HARD_STATE_MAGIC, true);
  view.setUint16(4, HARD_STATE_FORMAT_VERSION, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, payload.length, true);
  image.set(payload, HARD_STATE_HEADER_BYTES);
  const checked = HARD_STATE_HEADER_BYTES + payload.length;
  view.setUint32(checked, crc32(image.subarray(0, checked)), true);
  return image;
}

/** Decodes a whole file image; throws WAL_ERR_HARD_STATE_CORRUPT naming `path` if it is damaged. Pure. */
export function decodeHardStateFile(image: Uint8Array, path: string): HardState {
  if (image.length < HARD_STATE_HEADER_BYTES + HARD_STATE_CHECKSUM_BYTES) {
    throw corrupt(path, `${image.length} bytes, shorter than the smallest valid file`);
  }
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== HARD_STATE_MAGIC) throw corrupt(path, `bad magic 0x${magic.toString(16).padStart(8, "0")}`);
  const version = view.getUint16(4, true);
  if (version !== HARD_STATE_FORMAT_VERSION) throw corrupt(path, `unsupported format version ${version}`);
  const flags = view.getUint16(6, true);
  if (flags !== 0) throw corrupt(path, `unknown flags 0x${flags.toString(16)}`);
  const length = view.getUint32(8, true);
  if (length > HARD_STATE_PAYLOAD_BYTES_MAX) throw corrupt(path, `payload length ${length} over the maximum ${HARD_STATE_PAYLOAD_BYTES_MAX}`);
  const expectedBytes = HARD_STATE_HEADER_BYTES + length + HARD_STATE_CHECKSUM_BYTES;
  if (image.length !== expectedBytes) throw corrupt(path, `${image.length} bytes, expected ${expectedBytes}`);
  const checked = HARD_STATE_HEADER_BYTES + length;
  const stored = view.getUint32(checked, true);
  const actual = crc32(image.subarray(0, checked));
  if (stored !== actual) {
    throw corrupt(path, `checksum mismatch (stored 0x${stored.toString(16)}, computed 0x${actual.toString(16)})`);
  }
  let state: HardState;
  try {
    state = hardStateCodec.decode(image.subarray(HARD_STATE_HEADER_BYTES, checked));
  } catch (error) {
    throw corrupt(path, "payload is not a HardState message", error);
  }
  for (const key of ["term", "vote", "commit"] as const) {
    if (!Number.isSafeInteger(state[key]) || state[key] < 0) throw corrupt(path, `${key} ${state[key]} out of range`);
  }
  return { term: state.term, vote: state.vote, commit: state.commit };
}

export interface HardStateReadResult {
  hardState: HardState;
  /** False when no hard-state file exists (a node that never saved one): the state is all zeros. */
  exists: boolean;
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

/**
 * Reads the hard state of `directory` without changing anything (for tools and for open).
 * A missing file (or directory) is all zeros; a damaged or unreadable one throws
 * WAL_ERR_HARD_STATE_CORRUPT.
 */
export async function readHardState(fs: FileSystem, directory: string): Promise<HardStateReadResult> {
  const path = join(directory, HARD_STATE_FILE_NAME);
  if (!(await fs.exists(path))) return { hardState: { ...EMPTY_HARD_STATE }, exists: false };
  if (await fs.isDirectory(path)) throw corrupt(path, "is a directory");
  let image: Uint8Array;
  try {
    image = await fs.readFile(path);
  } catch (error) {
    if (isMissing(error)) return { hardState: { ...EMPTY_HARD_STATE }, exists: false };
    throw corrupt(path, `unreadable (${(error as Error).message})`, error);
  }
  return { hardState: decodeHardStateFile(image, path), exists: true };
}

/** The hard-state file of one node, open for saving. Saves must not overlap (await each). */
export class HardStateFile {
  private current: HardState;
  private failure: RaftwalError | undefined;
  private saving = false;

  private constructor(
    private readonly fs: FileSystem,
    readonly directory: string,
    initial: HardState,
    /** Whether a hard-state file existed at open. */
    readonly existedAtOpen: boolean,
  ) {
    this.current = initial;
  }

  /** Creates `directory` if needed, removes a leftover temporary file and reads the state. */
  static async open(fs: FileSystem, directory: string): Promise<HardStateFile> {
    await fs.ensureDirectory(directory);
    // A leftover temporary file is an interrupted save that never reached step 4: it
    // was never acknowledged, so it is discarded. Its removal need not be durable.
    await fs.remove(join(directory, HARD_STATE_TEMPORARY_FILE_NAME));
    const { hardState, exists } = await readHardState(fs, directory);
    return new HardStateFile(fs, directory, hardState, exists);
  }

  get path(): string {
    return join(this.directory, HARD_STATE_FILE_NAME);
  }

  /** The last durable hard state. */
  get(): HardState {
    return { ...this.current };
  }

  /** The failure that made this instance refuse saves, if any. */
  failed(): RaftwalError | undefined {
    return this.failure;
  }

  /** Replaces the hard state durably; resolves only once the new state survives a crash. */
  async save(state: HardState): Promise<void> {
    assertValid(state);
    if (this.failure) throw this.failure;
    if (this.saving) throw new Error("HardStateFile.save: a save is already in progress");
    this.saving = true;
    const image = encodeHardStateFile(state);
    try {
      // Steps 1-4 above (HARD_STATE_TEMPORARY_FILE_NAME is the temporary file it uses).
      await replaceFileDurably(this.fs, this.path, image);
    } catch (error) {
      // The new image may or may not be durable: this instance can no longer tell
      // which state a restart will see, so it refuses all further saves.
      this.failure = new RaftwalError(
        WalErrorCode.FAILED,
        `saving the hard state to ${this.path} failed (${(error as Error).message}); the hard-state file refuses further saves`,
        { cause: error },
      );
      throw this.failure;
    } finally {
      this.saving = false;
    }
    this.current = { term: state.term, vote: state.vote, commit: state.commit };
  }
}
