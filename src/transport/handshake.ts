/**
 * The handshake: the first frame in each direction of every peer connection.
 *
 *   1. The dialling node sends Handshake{protocolVersion, clusterId, nodeId: its id,
 *      peerAddress: where it listens}.
 *   2. The accepting node checks it (same version, same cluster id, a node id in its
 *      peer set: the members of its cluster configuration; a node with no configuration
 *      yet, waiting to be added, accepts any node of its cluster and learns its address).
 *      On failure it logs one line and, when the frame was a handshake of this protocol,
 *      replies with a refusal (the reason, and whether the dialler was removed from the
 *      cluster) before closing, so the error is clear on both ends; nothing from that
 *      connection reaches the core.
 *   3. On success it replies with its own Handshake. The dialler checks the reply
 *      (same version, same cluster id, and the node id of the peer it meant to reach;
 *      a refusal is reported with its reason) before it sends a single message.
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

export function localHandshake(clusterId: string, nodeId: number, peerAddress = ""): Handshake {
  return { protocolVersion: PROTOCOL_VERSION, clusterId, nodeId, peerAddress, refusal: "", removed: false };
}

/** The accepting node's answer to a handshake it refuses. */
export function refusalHandshake(clusterId: string, nodeId: number, refusal: string, removed: boolean): Handshake {
  return { protocolVersion: PROTOCOL_VERSION, clusterId, nodeId, peerAddress: "", refusal, removed };
}

export interface HandshakeExpectation {
  clusterId: string;
  /** Node ids expected on the other end (a dialler: exactly the one it dialled). */
  nodeIds: ReadonlySet<number> | readonly number[];
  /**
   * Whether a node id outside `nodeIds` is accepted too (never 0 nor `localNodeId`). An
   * acceptor accepts every id not removed from the cluster: Raft thesis 4.1, servers
   * process RPCs without consulting their configurations (TcpTransportOptions.peers).
   */
  acceptsOutsider?: (nodeId: number) => boolean;
  localNodeId?: number;
}

/**
 * Checks a received handshake; returns the remote node id, or throws
 * TRANSPORT_ERR_HANDSHAKE whose message names what was wrong.
 */
export function verifyHandshake(handshake: Handshake | undefined, expected: HandshakeExpectation): number {
  if (handshake === undefined) {
    throw new TransportError(TransportErrorCode.HANDSHAKE, "first frame is a message, not a handshake");
  }
  if (handshake.refusal !== "") {
    throw new TransportError(TransportErrorCode.HANDSHAKE, `node ${handshake.nodeId} refused this node: ${handshake.refusal}`);
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
  const id = handshake.nodeId;
  const outsider = expected.acceptsOutsider;
  if (known || (outsider !== undefined && id > 0 && id !== expected.localNodeId && outsider(id))) return id;
  const why = outsider === undefined ? "not the node expected" : id === expected.localNodeId ? "this node's own id" : id > 0 ? "removed from the cluster" : "not a node id";
  throw new TransportError(TransportErrorCode.HANDSHAKE, `unknown node id ${id}: ${why}`);
}
