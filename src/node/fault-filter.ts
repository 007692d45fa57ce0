/**
 * A network partition done in the node's own message path, for the torture suite
 * (`raftwal node --fault-injection`, driven through `POST /admin/faults`).
 *
 * While peer P is blocked, every message this node would send to P is dropped before it
 * reaches the transport, and every message that arrives from P is dropped before it
 * reaches the core. Blocking P on this node and this node on P cuts the link in both
 * directions, exactly as a network partition would (Raft tolerates lost messages:
 * section 5.1, "servers retry RPCs if they do not receive a response in a timely
 * manner"). No real network setting changes; the TCP connections stay up.
 *
 * Off unless installed: a node started without --fault-injection never constructs one.
 */
import type { Message } from "../proto/schema.js";

/** The two methods of the transport the filter wraps (TcpTransport has both). */
export interface FilterableTransport {
  send(messages: Message[]): void;
  onMessage(handler: (message: Message) => void): void;
}

export class FaultFilter {
  private blocked: ReadonlySet<number> = new Set();
  /** Messages dropped so far, per direction (for /admin/faults answers and logs). */
  droppedOutbound = 0;
  droppedInbound = 0;

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

  /** The messages of `messages` that may be sent now (counts the others as dropped). */
  filterOutbound(messages: Message[]): Message[] {
    if (this.blocked.size === 0) return messages;
    const passed = messages.filter((message) => this.allows(message.to));
    this.droppedOutbound += messages.length - passed.length;
    return passed;
  }

  /**
   * Routes the transport's send and receive paths through this filter. Call once, before
   * the node registers its message handler.
   */
  install(transport: FilterableTransport): void {
    const send = transport.send.bind(transport);
    const onMessage = transport.onMessage.bind(transport);
    transport.send = (messages) => send(this.filterOutbound(messages));
    transport.onMessage = (handler) =>
      onMessage((message) => {
        if (this.allows(message.from)) handler(message);
        else this.droppedInbound++;
      });
  }
}
