/**
 * The KV service's error codes (prefix KV_ERR_): what its HTTP API answers with (the
 * `error` field of a JSON error body; http-errors.ts maps each code to its status),
 * what KvClient reports, and the state machine's damaged-snapshot code.
 */
import { codesOf, type ErrorCodeTable } from "../../storage/errors.js";

export const KV_ERRORS = {
  NOT_FOUND: { code: "KV_ERR_NOT_FOUND", meaning: "The key does not exist (GET, DELETE, CAS)." },
  CAS_MISMATCH: { code: "KV_ERR_CAS_MISMATCH", meaning: "A compare-and-set found another value; the answer carries it as `current`." },
  STALE_SEQUENCE: {
    code: "KV_ERR_STALE_SEQUENCE",
    meaning: "A write's `x-raftwal-seq` is older than the last one this client id applied.",
  },
  BAD_REQUEST: {
    code: "KV_ERR_BAD_REQUEST",
    meaning: "A malformed request (key, session headers, CAS body, POST without `?cas`) or a command the state machine refuses.",
  },
  TOO_LARGE: { code: "KV_ERR_TOO_LARGE", meaning: "A value or request body over its limit." },
  NO_ROUTE: { code: "KV_ERR_NO_ROUTE", meaning: "No such path on the API." },
  METHOD_NOT_ALLOWED: { code: "KV_ERR_METHOD_NOT_ALLOWED", meaning: "An HTTP method the path does not support." },
  NO_LEADER: {
    code: "KV_ERR_NO_LEADER",
    meaning: "No leader is known to serve the request or to redirect it to (an election, a partition); retry shortly.",
  },
  UNAUTHORIZED: { code: "KV_ERR_UNAUTHORIZED", meaning: "The API requires a bearer token and the request carried none, or a wrong one." },
  INTERNAL: { code: "KV_ERR_INTERNAL", meaning: "An unexpected failure inside the node; its log has the detail." },
  BAD_RESPONSE: { code: "KV_ERR_BAD_RESPONSE", meaning: "KvClient got an error answer without the API's JSON error body (e.g. from a proxy)." },
  BACKUP_CORRUPT: {
    code: "KV_ERR_BACKUP_CORRUPT",
    meaning: "A backup file (`raftwal snapshot save`) is damaged, truncated or not a raftwal backup; a restore refuses it before writing anything.",
  },
  UNAVAILABLE: {
    code: "KV_ERR_UNAVAILABLE",
    meaning: "KvClient got no answer from any endpoint within its operation timeout; the message names every endpoint and its last error.",
  },
  SNAPSHOT_CORRUPT: {
    code: "KV_ERR_SNAPSHOT_CORRUPT",
    meaning: "A KV snapshot stream is damaged, truncated or not a KV snapshot; the state machine keeps its current state.",
  },
} as const satisfies ErrorCodeTable;
export const KvErrorCode = codesOf(KV_ERRORS);
export type KvErrorCode = (typeof KvErrorCode)[keyof typeof KvErrorCode];
