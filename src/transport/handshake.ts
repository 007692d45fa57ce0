/**
 * The handshake: the first frame in each direction of every peer connection.
 *
 *   1. The dialling node sends Handshake{protocolVersion, clusterId, nodeId: its id}.
 *   2. The accepting node checks it (same version, same cluster id, a node id in its
 *      configured peer set). On failure it closes the connection without replying and
 *      logs one line; nothing from that connection reaches the core.
 *   3. On success it replies with its own Handshake. The dialler checks the reply
 *      (same version, same cluster id, and the node id of the peer it meant to reach)
 *      before it sends a single message.
 *
 * After the exchange, messages flow one way only: from the dialler to the acceptor.
 * Each ordered pair of nodes has its own connection(s).
 */
import type { Handshake } from "../proto/schema.js";
import { TransportError, TransportErrorCode } from "./errors.js";

/** The version of this wire protocol. Both ends must speak exactly the same one. */
export const PROTOCOL_VERSION = 1;

/**
 * Largest frame accepted before the handshake is verified: 1 KiB. A handshake is a few
 * dozen bytes; an unauthenticated connection must not make us buffer 16 MiB.
 */
export const HANDSHAKE_FRAME_BODY_BYTES_MAX = 1024;

/** Longest cluster id accepted: 256 bytes. */
export const CLUSTER_ID_BYTES_MAX = 256;

export function localHandshake(clusterId: string, nodeId: number): Handshake {
  return { protocolVersion: PROTOCOL_VERSION, clusterId, nodeId };
}

export interface HandshakeExpectation {
  clusterId: string;
  /** Node ids allowed on the other end. */
  nodeIds: ReadonlySet<number> | readonly number[];
}

/**
 * Checks a received handshake; returns the remote node id, or throws
 * TRANSPORT_ERR_HANDSHAKE whose message names what was wrong.
 */
export function verifyHandshake(handshake: Handshake | undefined, expected: HandshakeExpectation): number {
  if (handshake === undefined) {
    throw new TransportError(TransportErrorCode.HANDSHAKE, "first frame is a message, not a handshake");
  }
  if (handshake.protocolVersion !== PROTOCOL_VERSION) {
    throw new TransportError(
      TransportErrorCode.HANDSHAKE,
      `protocol version mismatch: peer speaks ${handshake.protocolVersion}, this node ${PROTOCOL_VERSION}`,
    );
  }
  if (handshake.clusterId !== expected.clusterId) {
    throw new TransportError(
      TransportErrorCode.HANDSHAKE,
      `cluster id mismatch: peer is in ${JSON.stringify(handshake.clusterId)}, this node in ${JSON.stringify(expected.clusterId)}`,
    );
  }
  const allowed = expected.nodeIds;
  const known = "has" in allowed ? allowed.has(handshake.nodeId) : allowed.includes(handshake.nodeId);
  if (!known) {
    throw new TransportError(TransportErrorCode.HANDSHAKE, `unknown node id ${handshake.nodeId}: not in the configured peer set`);
  }
  return handshake.nodeId;
}
