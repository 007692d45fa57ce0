/**
 * How the KV API answers an error: its code picks the HTTP status from one table, and
 * the body is JSON `{"error": code, "message": text}` (plus details such as `current`
 * for a CAS mismatch). `error` is always a registered code (src/errors.ts): the KV
 * service's own (`KV_ERR_NOT_FOUND`), or the node's or core's passed through
 * (`NODE_ERR_TIMEOUT`). Anything that is not a RaftwalError is `KV_ERR_INTERNAL`.
 */
import { RaftwalError, RaftwalErrorCode } from "../../storage/errors.js";
import { NodeErrorCode } from "../node/errors.js";
import { RaftErrorCode } from "../raft/errors.js";
import { KvErrorCode } from "./errors.js";

/** The status of every code the API answers with; any other code answers 500. */
export const HTTP_STATUS_BY_CODE: ReadonlyMap<string, number> = new Map([
  [KvErrorCode.BAD_REQUEST, 400],
  [RaftwalErrorCode.INVALID_ARGUMENT, 400],
  [KvErrorCode.UNAUTHORIZED, 401],
  [KvErrorCode.NOT_FOUND, 404],
  [KvErrorCode.NO_ROUTE, 404],
  [KvErrorCode.METHOD_NOT_ALLOWED, 405],
  [KvErrorCode.CAS_MISMATCH, 409],
  [KvErrorCode.STALE_SEQUENCE, 409],
  // Membership changes (/members): a change that conflicts with the cluster's state now
  // (another change pending, a learner not caught up yet) is 409, an unknown member 404,
  // a change that can never be made 400.
  [RaftErrorCode.CONFIG_CHANGE_IN_PROGRESS, 409],
  [RaftErrorCode.LEARNER_BEHIND, 409],
  [RaftErrorCode.UNKNOWN_MEMBER, 404],
  [RaftErrorCode.INVALID_CONFIG_CHANGE, 400],
  [RaftErrorCode.LAST_VOTER, 400],
  [KvErrorCode.TOO_LARGE, 413],
  [KvErrorCode.INTERNAL, 500],
  // Retry later: no leader right now, or the outcome is not known (a timed-out write may
  // still take effect: retry it with the same client id and seq).
  [KvErrorCode.NO_LEADER, 503],
  [RaftErrorCode.NOT_LEADER, 503],
  [RaftErrorCode.LEADER_NOT_READY, 503],
  [RaftErrorCode.PROPOSAL_DROPPED, 503],
  [NodeErrorCode.TIMEOUT, 503],
  [NodeErrorCode.PROPOSAL_LOST, 503],
  [NodeErrorCode.CLOSED, 503],
  [NodeErrorCode.TRANSFER_FAILED, 503],
]);

export const HTTP_STATUS_UNLISTED = 500;

export interface ErrorAnswer {
  status: number;
  body: { error: string; message: string } & Record<string, unknown>;
}

/** The answer to a request that failed with `error`; `details` join the body. */
export function errorAnswer(error: unknown, details: Record<string, unknown> = {}): ErrorAnswer {
  const code = error instanceof RaftwalError ? error.code : KvErrorCode.INTERNAL;
  const message = error instanceof Error ? error.message : String(error);
  return { status: HTTP_STATUS_BY_CODE.get(code) ?? HTTP_STATUS_UNLISTED, body: { error: code, message, ...details } };
}
