/**
 * FaultInjectingTransport (the partition fault of `raftwal node --fault-injection`) over a
 * recording stand-in for the real transport: blocked peers' messages go nowhere in either
 * direction and are counted; everything else passes through unchanged.
 */
import { describe, expect, it } from "vitest";
import { MessageType, newMessage, type Message } from "../../src/proto/schema.js";
import { FaultInjectingTransport } from "../../src/torture/node-hooks/fault-injecting-transport.js";
import type { MessageHandler, NodeTransport, PeerHandler } from "../../src/transport/node-transport.js";
import { emptyCounters } from "../../src/transport/stats.js";

/** Records what is sent; `deliver` plays a message arriving from the network. */
class RecordingTransport implements NodeTransport {
  readonly sent: Message[] = [];
  private readonly handlers: MessageHandler[] = [];
  started = false;
  closed = false;

  async start(): Promise<void> {
    this.started = true;
  }
  address() {
    return { host: "127.0.0.1", port: 7001 };
  }
  send(messages: readonly Message[]): void {
    this.sent.push(...messages);
  }
  onMessage(handler: MessageHandler): () => void {
    this.handlers.push(handler);
    return () => undefined;
  }
  onUnreachable(_handler: PeerHandler): () => void {
    return () => undefined;
  }
  onSnapshotDropped(_handler: PeerHandler): () => void {
    return () => undefined;
  }
  setPeers(): void {}
  onRefused(): () => void {
    return () => undefined;
  }
  stats() {
    return { ...emptyCounters(), bytesSent: 42, peers: {} };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  deliver(message: Message): void {
    for (const handler of this.handlers) handler(message);
  }
}

const heartbeat = (from: number, to: number) => newMessage(MessageType.HEARTBEAT, from, to, 1);

function setup(): { inner: RecordingTransport; faulty: FaultInjectingTransport; received: Message[] } {
  const inner = new RecordingTransport();
  const faulty = new FaultInjectingTransport(inner);
  const received: Message[] = [];
  faulty.onMessage((message) => received.push(message));
  return { inner, faulty, received };
}

describe("FaultInjectingTransport", () => {
  it("passes every message while no peer is blocked", () => {
    const { inner, faulty, received } = setup();
    faulty.send([heartbeat(1, 2), heartbeat(1, 3)]);
    inner.deliver(heartbeat(2, 1));
    expect(inner.sent.map((m) => m.to)).toEqual([2, 3]);
    expect(received.map((m) => m.from)).toEqual([2]);
    expect([faulty.droppedOutbound, faulty.droppedInbound]).toEqual([0, 0]);
  });

  it("drops messages to and from a blocked peer, counts them, and heals on an empty list", () => {
    const { inner, faulty, received } = setup();
    faulty.setBlockedPeers([3]);
    faulty.send([heartbeat(1, 2), heartbeat(1, 3), heartbeat(1, 3)]);
    inner.deliver(heartbeat(3, 1));
    inner.deliver(heartbeat(2, 1));
    expect(inner.sent.map((m) => m.to)).toEqual([2]);
    expect(received.map((m) => m.from)).toEqual([2]);
    expect([faulty.droppedOutbound, faulty.droppedInbound]).toEqual([2, 1]);
    expect(faulty.blockedPeers()).toEqual([3]);

    faulty.setBlockedPeers([]);
    faulty.send([heartbeat(1, 3)]);
    inner.deliver(heartbeat(3, 1));
    expect(inner.sent.map((m) => m.to)).toEqual([2, 3]);
    expect(received.map((m) => m.from)).toEqual([2, 3]);
  });

  it("refuses a block list that is not node ids", () => {
    const { faulty } = setup();
    expect(() => faulty.setBlockedPeers([0])).toThrow(RangeError);
    expect(() => faulty.setBlockedPeers([1.5])).toThrow(RangeError);
  });

  it("leaves start, close, address and stats to the wrapped transport", async () => {
    const { inner, faulty } = setup();
    await faulty.start();
    expect(inner.started).toBe(true);
    expect(faulty.address()).toEqual({ host: "127.0.0.1", port: 7001 });
    expect(faulty.stats().bytesSent).toBe(42);
    await faulty.close();
    expect(inner.closed).toBe(true);
  });
});
