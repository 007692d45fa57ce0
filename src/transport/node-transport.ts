/**
 * NodeTransport: what a RaftNode needs of the link to its peers, and nothing more.
 * TcpTransport is the implementation; a host passes another one (a decorator around
 * TcpTransport, a test double) through `RaftNodeOptions.transport`.
 *
 * The contract the node relies on (TcpTransport keeps it; an implementation must too):
 *   - `send` never blocks and never throws for a network condition: a message that cannot
 *     go is dropped (Raft tolerates lost messages: section 5.1, "servers retry RPCs if
 *     they do not receive a response in a timely manner"), and the peer may be reported
 *     through `onUnreachable`.
 *   - A handler may be called synchronously from inside `send` as well as from I/O events.
 *   - `start()` is called once, after the node registered its handlers; `close()` is
 *     idempotent.
 */
import type { Message } from "../proto/schema.js";
import type { TransportStats } from "./stats.js";
import type { PeerAddress } from "./tls.js";

export type MessageHandler = (message: Message) => void;
export type PeerHandler = (peer: number) => void;
/** A peer refused this node's handshake: its words, and whether it says this node was removed. */
export type RefusedHandler = (peer: number, refusal: string, removed: boolean) => void;

export interface NodeTransport {
  /** Starts listening for peers. Resolves once bound; rejects if it cannot bind. */
  start(): Promise<void>;
  /** The bound address (the actual port when the listen port was 0). Only after start(). */
  address(): PeerAddress;
  /** Queues each message for its `to` peer. Never blocks; never throws for a network condition. */
  send(messages: readonly Message[]): void;
  /** Registers a handler for every delivered message; returns a function removing it. */
  onMessage(handler: MessageHandler): () => void;
  /** Registers a handler told when a peer looks unreachable (host: core.reportUnreachable(peer)). */
  onUnreachable(handler: PeerHandler): () => void;
  /** Registers a handler told when a snapshot transfer to a peer broke (host: core.reportSnapshot(peer, false)). */
  onSnapshotDropped(handler: PeerHandler): () => void;
  /**
   * Replaces the set of peers (the cluster's configuration changed): connects to new
   * members when first sent to, drops links to ones no longer in it; handshakes of removed
   * ids are refused (TransportOptions.peers says why other ids outside the set are not).
   */
  setPeers(peers: ReadonlyMap<number, PeerAddress>): void;
  /** Registers a handler told when a peer refused this node's handshake. */
  onRefused(handler: RefusedHandler): () => void;
  /** Counters for the node's metrics. */
  stats(): TransportStats;
  /** Ends every connection and discards queued messages. Idempotent. */
  close(): Promise<void>;
}
