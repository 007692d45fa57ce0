import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { messageCodec, MessageType, type Message } from "../../src/proto/schema.js";
import {
  appendMessage,
  CLUSTER_ID,
  heartbeat,
  Inbox,
  LOCALHOST,
  recordingLogger,
  Resources,
  snapshotChunk,
  startCluster,
  waitUntil,
} from "./helpers.js";
import { startFakePeer } from "./raw-peer.js";
import type { TcpTransport, TcpTransportOptions } from "../../src/transport/transport.js";
import type { PeerAddress } from "../../src/transport/tls.js";

const resources = new Resources();
afterEach(() => resources.closeAll());

/** A port nothing listens on (bound by the system, then released). */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, LOCALHOST, resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Starts node 1's transport with one peer, node 2, at `peer` (default: a port nothing
 * listens on); the other fields add to or override the options.
 */
async function startNodeOne({ peer, ...extra }: Partial<TcpTransportOptions> & { peer?: PeerAddress } = {}): Promise<TcpTransport> {
  const transport = resources.transport({
    nodeId: 1,
    clusterId: CLUSTER_ID,
    listen: { host: LOCALHOST, port: 0 },
    peers: new Map([[2, peer ?? { host: LOCALHOST, port: await deadPort() }]]),
    ...extra,
  });
  await transport.start();
  return transport;
}

describe("TcpTransport", () => {
  it("two transports exchange messages both ways, entries intact", async () => {
    const [one, two] = await startCluster(resources, 2);
    const append = appendMessage(1, 2, 10, 256);
    one.transport.send([append, heartbeat(1, 2, 3)]);
    two.transport.send([heartbeat(2, 1, 4)]);
    await two.inbox.waitFor(2);
    await one.inbox.waitFor(1);
    // Decoded bytes fields are Buffers (views of the received frame): compare encodings.
    expect(Buffer.from(messageCodec.encode(two.inbox.messages[0])).equals(Buffer.from(messageCodec.encode(append)))).toBe(true);
    expect(two.inbox.messages[0].entries.map((e) => [e.index, e.data.length, e.data[0]])).toEqual(
      append.entries.map((e) => [e.index, 256, e.data[0]]),
    );
    expect(two.inbox.messages[1]).toMatchObject({ type: MessageType.HEARTBEAT, from: 1, to: 2, term: 3 });
    expect(one.inbox.messages[0]).toMatchObject({ type: MessageType.HEARTBEAT, from: 2, to: 1, term: 4 });
    const stats = one.transport.stats();
    expect(stats.framesSent).toBeGreaterThanOrEqual(3); // handshake + 2 messages
    expect(stats.bytesSent).toBeGreaterThan(2560);
    expect(stats.messagesDelivered).toBe(1);
    expect(stats.peers[2].message?.state).toBe("ready");
  });

  it("three transports: every node reaches every other, in order per lane", async () => {
    const nodes = await startCluster(resources, 3);
    const perPair = 50;
    for (const from of nodes) {
      for (const to of nodes) {
        if (from === to) continue;
        from.transport.send(Array.from({ length: perPair }, (_, i) => ({ ...heartbeat(from.id, to.id), index: i })));
      }
    }
    for (const node of nodes) await node.inbox.waitFor(perPair * 2);
    for (const node of nodes) {
      for (const other of nodes) {
        if (other === node) continue;
        const indexes = node.inbox.messages.filter((m) => m.from === other.id).map((m) => m.index);
        expect(indexes).toEqual(Array.from({ length: perPair }, (_, i) => i));
      }
    }
  });

  it("reconnects after the peer restarts and delivers what was queued meanwhile", async () => {
    const [one, two] = await startCluster(resources, 2, { backoff: { initialDelayMs: 5, delayMsMax: 40 } });
    const unreachable: number[] = [];
    one.transport.onUnreachable((peer) => unreachable.push(peer));
    one.transport.send([heartbeat(1, 2, 1)]);
    await two.inbox.waitFor(1);
    const port = two.transport.address().port;

    await two.transport.close();
    await waitUntil("node 1 to notice node 2 is gone", () => unreachable.includes(2));
    one.transport.send([heartbeat(1, 2, 2)]); // queued while node 2 is down
    await waitUntil("a failed redial", () => one.transport.stats().reconnects >= 1);

    const restarted = resources.transport({
      nodeId: 2,
      clusterId: CLUSTER_ID,
      listen: { host: LOCALHOST, port },
      peers: new Map([[1, one.transport.address()]]),
    });
    const inbox = new Inbox(restarted);
    await restarted.start();
    await inbox.waitFor(1);
    expect(inbox.messages[0]).toMatchObject({ from: 1, term: 2 });
    expect(one.transport.stats().peers[2].message?.state).toBe("ready");
  });

  it("drops beyond the count bound and reports the peer unreachable while it is down", async () => {
    const logger = recordingLogger();
    const transport = await startNodeOne({
      queueMessagesMax: 10,
      logger,
      backoff: { initialDelayMs: 5, delayMsMax: 20 },
    });
    const unreachable: number[] = [];
    transport.onUnreachable((peer) => unreachable.push(peer));
    transport.send(Array.from({ length: 25 }, (_, i) => heartbeat(1, 2, i + 1)));
    expect(transport.stats().messagesDropped).toBe(15);
    expect(transport.stats().peers[2].message).toMatchObject({ queuedMessages: 10, messagesDropped: 15 });
    expect(unreachable).toEqual([2]);
    // Redials keep failing; the queue stays bounded and the report is not repeated for the same outage.
    await waitUntil("three failed redials", () => transport.stats().reconnects >= 3);
    transport.send(Array.from({ length: 5 }, (_, i) => heartbeat(1, 2, 100 + i)));
    expect(transport.stats().peers[2].message?.queuedMessages).toBe(10);
    expect(transport.stats().messagesDropped).toBe(20);
    expect(unreachable).toEqual([2]);
    expect(logger.lines.some((line) => line.message === "peer dial failed" && String(line.fields.reason).includes("ECONNREFUSED"))).toBe(true);
  });

  it("redials a dead peer with exponentially growing, bounded delays drawn with the injected randomness", async () => {
    const logger = recordingLogger();
    const draws: number[] = [];
    const transport = await startNodeOne({
      logger,
      backoff: { initialDelayMs: 2, delayMsMax: 16, jitterRatio: 0.5 },
      random: () => {
        draws.push(0);
        return 0; // no jitter: every delay is its ceiling
      },
    });
    transport.send([heartbeat(1, 2)]);
    const delays = () => logger.lines.filter((line) => line.message === "peer dial failed").map((line) => line.fields.retryInMs);
    await waitUntil("six failed dials", () => delays().length >= 6);
    expect(delays().slice(0, 6)).toEqual([2, 4, 8, 16, 16, 16]);
    expect(draws.length).toBeGreaterThanOrEqual(6);
  });

  it("drops beyond the byte bound; a dropped snapshot chunk is reported for reportSnapshot", async () => {
    const transport = await startNodeOne({ queueBytesMax: 10_000 });
    const snapshotDropped: number[] = [];
    transport.onSnapshotDropped((peer) => snapshotDropped.push(peer));
    transport.send(Array.from({ length: 5 }, () => appendMessage(1, 2, 1, 3_000)));
    expect(transport.stats().peers[2].message).toMatchObject({ queuedMessages: 3, messagesDropped: 2 });
    transport.send(Array.from({ length: 4 }, (_, i) => snapshotChunk(1, 2, i * 4_000, 4_000)));
    expect(transport.stats().peers[2].snapshot).toMatchObject({ queuedMessages: 2, messagesDropped: 2 });
    expect(snapshotDropped).toEqual([2, 2]);
  });

  it("drops messages to unknown peers and messages too large for a frame, without throwing", async () => {
    const logger = recordingLogger();
    const transport = await startNodeOne({
      frameBodyBytesMax: 1024,
      logger,
    });
    transport.send([heartbeat(1, 7), appendMessage(1, 2, 1, 2048)]);
    expect(transport.stats().messagesDropped).toBe(2);
    expect(logger.lines.map((line) => line.message)).toEqual(
      expect.arrayContaining(["message to an unknown peer dropped", "message too large for a frame dropped"]),
    );
  });

  it("a snapshot stream that fills its connection does not hold up heartbeats to that peer or another", async () => {
    // Node 2 is a hand-driven peer that stops reading any connection carrying snapshot chunks.
    const heartbeatsAtTwo: Message[] = [];
    const stalled = await startFakePeer(resources, {
      onMessage: (message, socket) => {
        if (message.type !== MessageType.SNAPSHOT) return void heartbeatsAtTwo.push(message);
        socket.pause();
        return false;
      },
    });
    const [one, , three] = await startCluster(resources, 3);
    one.transport.setPeerAddress(2, stalled.address);

    const chunkBytes = 1024 * 1024;
    const chunks = 32;
    one.transport.send(Array.from({ length: chunks }, (_, i) => snapshotChunk(1, 2, i * chunkBytes, chunkBytes, i === chunks - 1)));
    // Let the snapshot lane connect and fill the socket buffers until it is blocked.
    await waitUntil("the snapshot lane to connect", () => one.transport.stats().peers[2].snapshot?.state === "ready");

    for (let round = 1; round <= 3; round++) {
      one.transport.send([heartbeat(1, 2, round), heartbeat(1, 3, round)]);
      await waitUntil(`heartbeat ${round} at node 2`, () => heartbeatsAtTwo.length === round, 2_000);
      await three.inbox.waitFor(round, () => true, `heartbeat ${round} at node 3`);
    }
    // The snapshot stream is still stuck behind node 2's full receive buffer.
    expect(one.transport.stats().peers[2].snapshot?.queuedMessages).toBeGreaterThan(0);
    expect(heartbeatsAtTwo.map((m) => m.term)).toEqual([1, 2, 3]);
  });

  it.each([
    ["another node", { nodeId: 3 }, "unknown node id 3"],
    ["another cluster", { clusterId: "other-cluster" }, "cluster id mismatch"],
    ["another protocol version", { protocolVersion: 99 }, "protocol version mismatch"],
  ])("the dialler refuses a handshake reply from %s and sends it nothing", async (_name, reply, reason) => {
    const received: Message[] = [];
    const fake = await startFakePeer(resources, { reply, onMessage: (message) => void received.push(message) });
    const logger = recordingLogger();
    const transport = await startNodeOne({
      peer: fake.address,
      logger,
      backoff: { initialDelayMs: 5, delayMsMax: 20 },
    });
    transport.send([heartbeat(1, 2)]);
    await waitUntil("two refused replies", () => fake.handshakes.length >= 2);
    const failures = logger.lines.filter((line) => line.message === "peer dial failed");
    expect(String(failures[0].fields.reason)).toContain(reason);
    expect(received).toEqual([]);
    expect(transport.stats().peers[2].message?.queuedMessages).toBe(1);
  });

  it("a snapshot connection lost after chunks were written is reported for reportSnapshot", async () => {
    const fake = await startFakePeer(resources, {
      onMessage: (message, socket) => {
        if (message.type === MessageType.SNAPSHOT) socket.destroy();
        return false;
      },
    });
    const transport = await startNodeOne({ peer: fake.address });
    const snapshotDropped: number[] = [];
    const unreachable: number[] = [];
    transport.onSnapshotDropped((peer) => snapshotDropped.push(peer));
    transport.onUnreachable((peer) => unreachable.push(peer));
    transport.send([snapshotChunk(1, 2, 0, 1024)]);
    await waitUntil("the snapshot failure report", () => snapshotDropped.length === 1);
    expect(snapshotDropped).toEqual([2]);
    // An idle snapshot lane closing is no outage by itself: the message lane reports those.
    expect(unreachable).toEqual([]);
    // The snapshot lane does not redial with nothing to send.
    await waitUntil("the snapshot lane to go idle", () => transport.stats().peers[2].snapshot?.state === "idle");
  });

  it("close() stops the server, cancels redials, and drops later sends", async () => {
    const transport = await startNodeOne({ backoff: { initialDelayMs: 5, delayMsMax: 10 } });
    const { port } = transport.address();
    transport.send([heartbeat(1, 2)]);
    await waitUntil("a redial", () => transport.stats().reconnects >= 1);
    await transport.close();
    await transport.close();
    expect(transport.stats().peers[2].message?.state).toBe("closed");
    const reconnects = transport.stats().reconnects;
    transport.send([heartbeat(1, 2)]);
    expect(transport.stats().peers[2].message?.queuedMessages).toBe(0);
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: LOCALHOST, port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(false);
      });
      socket.once("error", () => resolve(true));
    });
    expect(refused).toBe(true);
    expect(transport.stats().reconnects).toBe(reconnects);
  });

  it("close() ends established connections in both directions", async () => {
    const [one, two] = await startCluster(resources, 2);
    const unreachable: number[] = [];
    two.transport.onUnreachable((peer) => unreachable.push(peer));
    one.transport.send([heartbeat(1, 2)]);
    two.transport.send([heartbeat(2, 1)]);
    await two.inbox.waitFor(1);
    await one.inbox.waitFor(1);
    await one.transport.close();
    await waitUntil("node 2 to see node 1 leave", () => unreachable.includes(1));
    expect(two.transport.stats().peers[1].message?.state).not.toBe("ready");
  });

  it("refuses invalid options with RAFTWAL_ERR_INVALID_ARGUMENT", () => {
    const base = { nodeId: 1, clusterId: "c", listen: { host: LOCALHOST, port: 0 }, peers: new Map() };
    for (const bad of [{ nodeId: 0 }, { clusterId: "" }, { frameBodyBytesMax: 2 ** 31 }, { queueMessagesMax: 0 }, { backoff: { initialDelayMs: 0 } }]) {
      expect(() => resources.transport({ ...base, ...bad })).toThrowError(expect.objectContaining({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" }));
    }
  });
});
