/**
 * Plain counters of one transport, monotonic from construction. `TcpTransport.stats()`
 * returns a copy; a metrics exporter reads it on scrape.
 */
export interface TransportCounters {
  /** Bytes written to peer sockets (frames, prefixes included; handshakes included). */
  bytesSent: number;
  /** Bytes read from peer sockets. */
  bytesReceived: number;
  /** Frames written (handshakes included). */
  framesSent: number;
  /** Complete frames decoded (handshakes included). */
  framesReceived: number;
  /** Messages handed to the onMessage handlers. */
  messagesDelivered: number;
  /** Outbound messages dropped: queue full, unknown peer, too large, or discarded at close. */
  messagesDropped: number;
  /** Inbound messages dropped after the handshake: `from` or `to` not matching the connection. */
  messagesRejected: number;
  /** Dials after a link's first one (a link lost or never established, tried again). */
  reconnects: number;
  /** Dials that failed before the handshake completed, and established links lost. */
  connectionFailures: number;
  /** Inbound connections whose handshake was accepted. */
  connectionsAccepted: number;
  /** Inbound connections closed for a protocol error: TLS, handshake, frame. */
  connectionsRejected: number;
  /** Times an onUnreachable report was made. */
  unreachableReports: number;
}

export function emptyCounters(): TransportCounters {
  return {
    bytesSent: 0,
    bytesReceived: 0,
    framesSent: 0,
    framesReceived: 0,
    messagesDelivered: 0,
    messagesDropped: 0,
    messagesRejected: 0,
    reconnects: 0,
    connectionFailures: 0,
    connectionsAccepted: 0,
    connectionsRejected: 0,
    unreachableReports: 0,
  };
}

/** State of one outbound lane to one peer. */
export interface LaneStats {
  state: "idle" | "connecting" | "ready" | "backoff" | "closed";
  queuedMessages: number;
  queuedBytes: number;
  messagesDropped: number;
  reconnects: number;
}

export interface TransportStats extends TransportCounters {
  /** Per peer: the message lane and, once used, the snapshot lane. */
  peers: Record<number, { message?: LaneStats; snapshot?: LaneStats }>;
}
