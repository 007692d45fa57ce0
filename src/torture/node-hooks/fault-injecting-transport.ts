/**
 * A network partition done in the node's own message path, for the torture tool
 * (`raftwal node --fault-injection`, driven through `POST /admin/faults`): a
 * NodeTransport that wraps the node's real one.
 *
 * While peer P is blocked, every message this node sends to P is dropped before it
 * reaches the wrapped transport, and every message that arrives from P is dropped before
 * it reaches the node. Blocking P on this node and this node on P cuts the link in both
 * directions, exactly as a network partition would (Raft tolerates lost messages:
 * section 5.1, "servers retry RPCs if they do not receive a response in a timely
 * manner"). No real network setting changes; the TCP connections stay up.
 */
import type { Message } from "../../proto/schema.js";
import type { MessageHandler, NodeTransport, PeerHandler, RefusedHandler } from "../../transport/node-transport.js";
import type { TransportStats } from "../../transport/stats.js";
import type { PeerAddress } from "../../transport/tls.js";

export class FaultInjectingTransport implements NodeTransport {
  private blocked: ReadonlySet<number> = new Set();
  /** Messages dropped so far, per direction (for /admin/faults answers and logs). */
  droppedOutbound = 0;
  droppedInbound = 0;

  constructor(private readonly inner: NodeTransport) {}

  /** Replaces the set of blocked peers; an empty list heals every link of this node. */
  setBlockedPeers(peers: readonly number[]): void {
    for (const peer of peers) {
      if (!Number.isSafeInteger(peer) || peer < 1) throw new RangeError(`blockPeers: ${String(peer)} is not a node id`);
    }
    this.blocked = new Set(peers);
  }

  blockedPeers(): number[] {
    return [...this.blocked].sort((a, b) => a - b);
  }

  /** Whether messages to and from `peer` pass. */
  allows(peer: number): boolean {
    return !this.blocked.has(peer);
  }

  send(messages: readonly Message[]): void {
    if (this.blocked.size === 0) return this.inner.send(messages);
    const passed = messages.filter((message) => this.allows(message.to));
    this.droppedOutbound += messages.length - passed.length;
    this.inner.send(passed);
  }

  onMessage(handler: MessageHandler): () => void {
    return this.inner.onMessage((message) => {
      if (this.allows(message.from)) handler(message);
      else this.droppedInbound++;
    });
  }

  // Everything else is the wrapped transport's.

  start(): Promise<void> {
    return this.inner.start();
  }

  address(): PeerAddress {
    return this.inner.address();
  }

  onUnreachable(handler: PeerHandler): () => void {
    return this.inner.onUnreachable(handler);
  }

  onSnapshotDropped(handler: PeerHandler): () => void {
    return this.inner.onSnapshotDropped(handler);
  }

  setPeers(peers: ReadonlyMap<number, PeerAddress>): void {
    this.inner.setPeers(peers);
  }

  onRefused(handler: RefusedHandler): () => void {
    return this.inner.onRefused(handler);
  }

  stats(): TransportStats {
    return this.inner.stats();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
