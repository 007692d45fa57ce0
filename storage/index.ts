/**
 * The storage engine's public API: the composite a node runtime opens, and the parts
 * (WAL, hard state, snapshot store) for tools and tests. Internals stay internal.
 */
export {
  openRaftStorage,
  RaftStorage,
  WAL_DIRECTORY_NAME,
  SNAPSHOT_DIRECTORY_NAME,
  HARD_STATE_DIRECTORY_NAME,
  type RaftStorageOptions,
  type RaftStorageRecovery,
  type SnapshotTargetInput,
} from "./raft-storage.js";
export { HardStateFile, readHardState, EMPTY_HARD_STATE, HARD_STATE_FILE_NAME, type HardStateReadResult } from "./hard-state.js";
export {
  SnapshotStore,
  SnapshotWriter,
  listSnapshotFiles,
  SNAPSHOT_RETAIN_COUNT_DEFAULT,
  type SnapshotListing,
  type SnapshotStoreOptions,
  type SnapshotStoreRecovery,
  type SnapshotTarget,
} from "./snapshot-store.js";
export * from "./wal/index.js";
export type { FileSystem, StorageFile, OpenOptions } from "./fs/file-system.js";
export { NodeFileSystem } from "./fs/node-file-system.js";
export { MemoryFileSystem } from "./fs/memory-file-system.js";
