/** The replicated key-value service's pure parts: the command codec and the state machine. */
export {
  CLIENT_ID_BYTES_MAX,
  COMMAND_VERSION,
  KEY_BYTES_MAX,
  VALUE_BYTES_MAX,
  decodeCommand,
  encodeCommand,
  type CasCommand,
  type DeleteCommand,
  type GetCommand,
  type KvCommand,
  type KvWriteCommand,
  type PutCommand,
} from "./command.js";
export { SNAPSHOT_CHUNK_BYTES_MAX } from "./snapshot.js";
export { KvStateMachine, SESSION_EXPIRY_ENTRIES_DEFAULT, type KvResult, type KvStateMachineOptions } from "./state-machine.js";
