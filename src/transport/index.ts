/**
 * The transport's public API. Everything else in src/transport is internal.
 */
export { TcpTransport, QUEUE_BYTES_MAX_DEFAULT, QUEUE_MESSAGES_MAX_DEFAULT } from "./transport.js";
export type { TcpTransportOptions } from "./transport.js";
export type { NodeTransport, MessageHandler, PeerHandler } from "./node-transport.js";
export type { PeerAddress, TransportTlsOptions } from "./tls.js";
export type { TransportLogger } from "./logger.js";
export type { TransportStats, TransportCounters, LaneStats } from "./stats.js";
export type { BackoffOptions } from "./backoff.js";
export { BACKOFF_DEFAULTS } from "./backoff.js";
export { TransportError, TransportErrorCode } from "./errors.js";
export { FRAME_BODY_BYTES_MAX_DEFAULT, FRAME_HEADER_BYTES, encodeFrame, FrameDecoder } from "./framing.js";
export { PROTOCOL_VERSION } from "./handshake.js";
