/**
 * The KV command codec: what a client proposes and the state machine applies.
 * The byte layout is documented at the top of `state-machine.ts`. Pure: no I/O.
 */
import { RaftwalError, RaftwalErrorCode } from "../../storage/errors.js";
import { ByteReader, ByteWriter, MalformedBytes, NeedMoreBytes, isWellFormedString, utf8Decode, utf8Encode } from "./bytes.js";

/** Version byte of the command layout. A decoder rejects any other version. */
export const COMMAND_VERSION = 1;

/** Keys appear in HTTP paths (`/kv/{key}`); 4 KiB keeps a URL under common 8 KiB limits. */
export const KEY_BYTES_MAX = 4 * 1024;
/** One value fits in one log entry and one default 1 MiB append message with room for the header. */
export const VALUE_BYTES_MAX = 1024 * 1024 - 8 * 1024;
/** Client ids are opaque tags (a UUID is 36 bytes); a bound keeps the session table small. */
export const CLIENT_ID_BYTES_MAX = 128;

/** Op codes. Zero is invalid so an all-zero buffer is never a command. */
export const OpCode = { PUT: 1, DELETE: 2, CAS: 3, GET: 4 } as const;

/** Write a value, creating or replacing the key. */
export interface PutCommand {
  op: "put";
  clientId: string;
  seq: number;
  key: string;
  value: Uint8Array;
}

/** Remove a key. */
export interface DeleteCommand {
  op: "delete";
  clientId: string;
  seq: number;
  key: string;
}

/** Compare-and-set: write `value` iff the current value equals `expect` (`null`: the key is absent). */
export interface CasCommand {
  op: "cas";
  clientId: string;
  seq: number;
  key: string;
  expect: Uint8Array | null;
  value: Uint8Array;
}

/** A read through the log (linearizable by construction, at the cost of a log entry). No session. */
export interface GetCommand {
  op: "get";
  key: string;
}

export type KvWriteCommand = PutCommand | DeleteCommand | CasCommand;
export type KvCommand = KvWriteCommand | GetCommand;

function invalid(message: string): RaftwalError {
  return new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `kv command: ${message}`);
}

function encodeText(what: string, text: string, bytesMin: number, bytesMax: number): Uint8Array {
  if (typeof text !== "string") throw invalid(`${what} must be a string`);
  if (!isWellFormedString(text)) throw invalid(`${what} contains a lone surrogate (not encodable as UTF-8)`);
  const bytes = utf8Encode(text);
  if (bytes.length < bytesMin || bytes.length > bytesMax) {
    throw invalid(`${what} is ${bytes.length} bytes; allowed ${bytesMin}..${bytesMax}`);
  }
  return bytes;
}

function checkValue(what: string, value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) throw invalid(`${what} must be a Uint8Array`);
  if (value.length > VALUE_BYTES_MAX) throw invalid(`${what} is ${value.length} bytes; at most ${VALUE_BYTES_MAX}`);
}

/** A session write has a client id and a seq >= 1; an anonymous one has neither ("" and 0). */
function checkSession(clientId: string, seq: number): void {
  if (clientId === "" && seq === 0) return;
  if (clientId === "") throw invalid(`a write with seq ${seq} needs a client id`);
  if (!Number.isSafeInteger(seq) || seq < 1) throw invalid(`seq must be an integer in 1..2^53-1, got ${seq}`);
}

/**
 * Encodes a command. Throws a RaftwalError with code RAFTWAL_ERR_INVALID_ARGUMENT for an
 * argument outside its documented range, so nothing the decoder would reject reaches the log.
 */
export function encodeCommand(command: KvCommand): Uint8Array {
  const key = encodeText("key", command.key, 1, KEY_BYTES_MAX);
  // Sized for the whole command up front (header, varints, client id, key, value, expect): no regrowth on the hot path.
  const valueBytes = command.op === "put" ? command.value.length : command.op === "cas" ? command.value.length + (command.expect?.length ?? 0) : 0;
  const clientIdBytes = command.op === "get" ? 0 : command.clientId.length * 3;
  const writer = new ByteWriter(48 + key.length + clientIdBytes + valueBytes);
  writer.u8(COMMAND_VERSION);
  switch (command.op) {
    case "get":
      return writer.u8(OpCode.GET).lengthPrefixed(key).finish();
    case "put":
    case "delete":
    case "cas": {
      // An anonymous write (no session: clientId "" and seq 0) costs no session (state-machine.ts).
      const clientId = encodeText("clientId", command.clientId, 0, CLIENT_ID_BYTES_MAX);
      checkSession(command.clientId, command.seq);
      const code = command.op === "put" ? OpCode.PUT : command.op === "delete" ? OpCode.DELETE : OpCode.CAS;
      writer.u8(code).lengthPrefixed(clientId).varint(command.seq).lengthPrefixed(key);
      if (command.op === "put") {
        checkValue("value", command.value);
        writer.lengthPrefixed(command.value);
      } else if (command.op === "cas") {
        if (command.expect === null) writer.u8(0);
        else {
          checkValue("expect", command.expect);
          writer.u8(1).lengthPrefixed(command.expect);
        }
        checkValue("value", command.value);
        writer.lengthPrefixed(command.value);
      }
      return writer.finish();
    }
    default:
      throw invalid(`unknown op ${(command as { op: unknown }).op}`);
  }
}

function readText(reader: ByteReader, what: string, bytesMin: number, bytesMax: number): string {
  const length = reader.varint();
  if (length < bytesMin || length > bytesMax) throw invalid(`${what} length ${length} outside ${bytesMin}..${bytesMax}`);
  try {
    return utf8Decode(reader.bytes(length));
  } catch (error) {
    if (error instanceof NeedMoreBytes) throw error;
    throw invalid(`${what} is not valid UTF-8`);
  }
}

/** A copy, so the state machine never keeps a view into a log entry's (possibly large, possibly reused) buffer. */
function readValue(reader: ByteReader, what: string): Uint8Array {
  const length = reader.varint();
  if (length > VALUE_BYTES_MAX) throw invalid(`${what} length ${length} above ${VALUE_BYTES_MAX}`);
  return reader.bytes(length).slice();
}

/**
 * Decodes a command. Throws a RaftwalError with code RAFTWAL_ERR_INVALID_ARGUMENT on
 * anything `encodeCommand` would not produce: other version, unknown op, truncation,
 * trailing bytes, lengths out of range, invalid UTF-8.
 */
export function decodeCommand(data: Uint8Array): KvCommand {
  const reader = new ByteReader(data);
  try {
    const version = reader.u8();
    if (version !== COMMAND_VERSION) throw invalid(`unsupported version ${version} (this build reads ${COMMAND_VERSION})`);
    const code = reader.u8();
    let command: KvCommand;
    if (code === OpCode.GET) {
      command = { op: "get", key: readText(reader, "key", 1, KEY_BYTES_MAX) };
    } else if (code === OpCode.PUT || code === OpCode.DELETE || code === OpCode.CAS) {
      const clientId = readText(reader, "clientId", 0, CLIENT_ID_BYTES_MAX);
      const seq = reader.varint();
      if ((clientId === "") !== (seq === 0)) throw invalid(`clientId "${clientId}" with seq ${seq}: an anonymous write has neither, a session write both`);
      const key = readText(reader, "key", 1, KEY_BYTES_MAX);
      if (code === OpCode.PUT) {
        command = { op: "put", clientId, seq, key, value: readValue(reader, "value") };
      } else if (code === OpCode.DELETE) {
        command = { op: "delete", clientId, seq, key };
      } else {
        const expectPresent = reader.u8();
        if (expectPresent > 1) throw invalid(`expect flag ${expectPresent}`);
        const expect = expectPresent === 1 ? readValue(reader, "expect") : null;
        command = { op: "cas", clientId, seq, key, expect, value: readValue(reader, "value") };
      }
    } else {
      throw invalid(`unknown op code ${code}`);
    }
    if (reader.remaining !== 0) throw invalid(`${reader.remaining} trailing bytes`);
    return command;
  } catch (error) {
    if (error instanceof NeedMoreBytes) throw invalid(`truncated (${data.length} bytes)`);
    if (error instanceof MalformedBytes) throw invalid(error.message);
    throw error;
  }
}
