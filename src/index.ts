/**
 * raftwal's public API. Everything not exported here is internal and may change.
 *
 * - Embed a replicated state machine: `createNode` (src/node).
 * - Drive the Raft core yourself: `createRaft` and its contract types (src/raft).
 * - Use the storage engine on its own: `openRaftStorage`, `Wal` (storage/).
 * - The reference application: `KvStateMachine`, `KvClient`, `startKvNode` (src/kv).
 * - Check histories: `checkLinearizable` (src/check).
 * - Run the `raftwal` command in your own process, with your application's payload decoder
 *   for `raftwal wal dump`: `registerPayloadDecoder`, `runCli` (src/cli).
 * Errors: every deliberate error is a `RaftwalError`; match on its `code`. `ERROR_CODES`
 * lists every code with its layer and meaning (src/errors.ts); each layer's codes are
 * also exported by name (`WalErrorCode.CORRUPT`, `KvErrorCode.NOT_FOUND`, ...).
 */
export {
  RaftwalError,
  ERROR_CODES,
  RaftwalErrorCode,
  WalErrorCode,
  RaftErrorCode,
  NodeErrorCode,
  TransportErrorCode,
  KvErrorCode,
  type ErrorCode,
  type ErrorLayer,
  type RegisteredErrorCode,
} from "./errors.js";
export * from "./node/index.js";
export { createRaft, MemoryStorage } from "./raft/index.js";
export type {
  RaftCore,
  RaftConfig,
  RaftLogStorage,
  Ready,
  ReadState,
  SoftState,
  Role,
  ProposalPosition,
  Entry,
  HardState,
  Message,
  SnapshotMeta,
  SnapshotChunk,
} from "./raft/types.js";
export { MessageType, EntryType } from "./proto/schema.js";
export { openRaftStorage, RaftStorage, Wal, type RaftStorageOptions, type WalOptions, NodeFileSystem, MemoryFileSystem, type FileSystem } from "../storage/index.js";
export { TcpTransport, type TcpTransportOptions, type TransportTlsOptions, type NodeTransport } from "./transport/index.js";
export { KvStateMachine, type KvResult } from "./kv/index.js";
export { KvClient, type KvClientOptions } from "./kv/client.js";
export { startKvNode, type KvNode, type KvNodeOptions, type KvPeerConfig } from "./kv/kv-node.js";
export { checkLinearizable, type HistoryOperation, type CheckResult } from "./check/index.js";
export { runCli } from "./cli/run-cli.js";
export type { CliIo, TextOutput } from "./cli/io.js";
export {
  registerPayloadDecoder,
  unregisterPayloadDecoder,
  payloadDecoderNames,
  type PayloadDecoder,
  type PayloadDescription,
} from "./cli/payload-decoders.js";
