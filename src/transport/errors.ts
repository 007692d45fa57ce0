/**
 * Typed errors of the transport. Each one is a RaftwalError with a stable `code`
 * (match on `code`, never on the message text).
 *
 * These are operating errors: a peer sent bytes we refuse, or a message could not be
 * framed. The transport handles them itself (it closes the offending connection and
 * logs one line, or drops the message and counts it); they reach the host only through
 * the logger, the counters of `stats()`, and `encodeFrame` when called directly.
 */
import { codesOf, RaftwalError, type ErrorCodeTable } from "../../storage/errors.js";

export const TRANSPORT_ERRORS = {
  FRAME_TOO_LARGE: {
    code: "TRANSPORT_ERR_FRAME_TOO_LARGE",
    meaning: "A frame's length prefix announces a body larger than the configured maximum, or a message is too large to send in one frame.",
  },
  MALFORMED_FRAME: {
    code: "TRANSPORT_ERR_MALFORMED_FRAME",
    meaning:
      "A frame that cannot be used: zero length, an undecodable body, a message of an unknown type, a stream ending inside a frame, a frame out of protocol order.",
  },
  HANDSHAKE: {
    code: "TRANSPORT_ERR_HANDSHAKE",
    meaning: "The first frame is not an acceptable handshake (protocol version, cluster id, node id), or none came in time.",
  },
} as const satisfies ErrorCodeTable;
export const TransportErrorCode = codesOf(TRANSPORT_ERRORS);
export type TransportErrorCode = (typeof TransportErrorCode)[keyof typeof TransportErrorCode];

export class TransportError extends RaftwalError {
  declare readonly code: TransportErrorCode;

  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
