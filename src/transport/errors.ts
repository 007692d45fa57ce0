/**
 * Typed errors of the transport. Each one is a RaftwalError with a stable `code`
 * (match on `code`, never on the message text).
 *
 * These are operating errors: a peer sent bytes we refuse, or a message could not be
 * framed. The transport handles them itself (it closes the offending connection and
 * logs one line, or drops the message and counts it); they reach the host only through
 * the logger, the counters of `stats()`, and `encodeFrame` when called directly.
 */
import { RaftwalError } from "../errors.js";

export const TransportErrorCode = {
  /** A frame's length prefix announces a body larger than the configured maximum. */
  FRAME_TOO_LARGE: "TRANSPORT_ERR_FRAME_TOO_LARGE",
  /**
   * A frame that cannot be used: zero length, a body protobuf cannot decode, a message
   * of an unknown type, a stream that ends inside a frame, a frame out of protocol order.
   */
  MALFORMED_FRAME: "TRANSPORT_ERR_MALFORMED_FRAME",
  /** The first frame is not an acceptable handshake (cluster id, node id, version). */
  HANDSHAKE: "TRANSPORT_ERR_HANDSHAKE",
} as const;
export type TransportErrorCode = (typeof TransportErrorCode)[keyof typeof TransportErrorCode];

export class TransportError extends RaftwalError {
  declare readonly code: TransportErrorCode;

  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
