/**
 * The error registry: every stable code raftwal raises, per layer, with its meaning.
 *
 * Every error raftwal raises on purpose is a RaftwalError with a stable `code`; match on
 * `code`, never on the message text. Each layer keeps its codes beside it, as a table
 * of short name -> { code, meaning } (storage/errors.ts, src/raft/errors.ts,
 * src/node/errors.ts, src/transport/errors.ts, src/kv/errors.ts); this module gathers
 * them into one list. The README's Errors section is checked against `ERROR_CODES` by
 * test/errors-registry.test.ts, which also fails on a `*_ERR_*` code in the source
 * tree that is not registered here.
 *
 * Layer modules never import this one (it imports them all): they take RaftwalError
 * from storage/errors.ts (the core from src/raft/errors.ts).
 */
import assert from "node:assert/strict";
import { KV_ERRORS } from "./kv/errors.js";
import { NODE_ERRORS } from "./node/errors.js";
import { RAFT_ERRORS } from "./raft/errors.js";
import { TRANSPORT_ERRORS } from "./transport/errors.js";
import { RAFTWAL_ERRORS, WAL_ERRORS, type ErrorCodeTable } from "../storage/errors.js";

export { RaftwalError, RaftwalErrorCode, WalErrorCode } from "../storage/errors.js";
export { RaftErrorCode } from "./raft/errors.js";
export { NodeErrorCode } from "./node/errors.js";
export { TransportErrorCode } from "./transport/errors.js";
export { KvErrorCode } from "./kv/errors.js";

/** The layers in the registry's order (bottom up), each with its code prefix. */
const LAYERS = [
  { layer: "arguments", prefix: "RAFTWAL_ERR_", table: RAFTWAL_ERRORS },
  { layer: "storage", prefix: "WAL_ERR_", table: WAL_ERRORS },
  { layer: "core", prefix: "RAFT_ERR_", table: RAFT_ERRORS },
  { layer: "node", prefix: "NODE_ERR_", table: NODE_ERRORS },
  { layer: "transport", prefix: "TRANSPORT_ERR_", table: TRANSPORT_ERRORS },
  { layer: "kv", prefix: "KV_ERR_", table: KV_ERRORS },
] as const satisfies readonly { layer: string; prefix: string; table: ErrorCodeTable }[];

export type ErrorLayer = (typeof LAYERS)[number]["layer"];

type CodeOf<Table> = Table extends ErrorCodeTable ? Table[keyof Table]["code"] : never;
/** Every registered code. */
export type ErrorCode = CodeOf<(typeof LAYERS)[number]["table"]>;

export interface RegisteredErrorCode {
  code: ErrorCode;
  layer: ErrorLayer;
  /** One line; the README's Errors section shows it as written. */
  meaning: string;
}

/** Every code of every layer, in layer order, each once. */
export const ERROR_CODES: readonly RegisteredErrorCode[] = Object.freeze(
  LAYERS.flatMap(({ layer, prefix, table }) =>
    Object.values(table).map((entry: { code: string; meaning: string }) => {
      // A code names its layer: the prefix is how users (and the README check) tell them apart.
      assert.ok(entry.code.startsWith(prefix), `error code ${entry.code} of layer ${layer} lacks the prefix ${prefix}`);
      return Object.freeze({ code: entry.code as ErrorCode, layer, meaning: entry.meaning });
    }),
  ),
);

assert.equal(new Set(ERROR_CODES.map((entry) => entry.code)).size, ERROR_CODES.length, "an error code is registered twice");
