import { afterEach, describe, expect, it } from "vitest";
import { TransportErrorCode } from "../../src/transport/errors.js";
import { encodeFrame } from "../../src/transport/framing.js";
import { HANDSHAKE_FRAME_BODY_BYTES_MAX, PROTOCOL_VERSION } from "../../src/transport/handshake.js";
import { appendMessage, heartbeat, LOCALHOST, Resources, startCluster, waitUntil, type ClusterNode } from "./helpers.js";
import { connectRaw, framePrefix, handshakeFrame, type RawClient } from "./raw-peer.js";

const resources = new Resources();
afterEach(() => resources.closeAll());

/** Node 1 of a 3-node cluster accepts connections; node 2 is a real, well-behaved peer. */
async function setUp(extra = {}): Promise<{ server: ClusterNode; good: ClusterNode }> {
  const [server, good] = await startCluster(resources, 3, { frameBodyBytesMax: 4096, ...extra });
  return { server, good };
}

function linesFor(node: ClusterNode, client: RawClient) {
  return node.logger.lines.filter((line) => line.fields.remote === client.remote);
}

/** Sends `bytes`, waits for the server to close the connection, returns its log lines for it. */
async function expectRejected(node: ClusterNode, client: RawClient, bytes: Buffer[], code: string, reason: string) {
  for (const chunk of bytes) client.socket.write(chunk);
  await client.closed;
  await waitUntil("the rejection log line", () => linesFor(node, client).length > 0);
  const lines = linesFor(node, client);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ level: "warn", message: "peer connection rejected", fields: { code } });
  expect(String(lines[0].fields.reason)).toContain(reason);
  // The server never accepted: at most it answered with a refusal naming the reason
  // (to a handshake of this protocol), and it delivered nothing.
  for (const frame of client.frames) expect(frame.handshake?.refusal).toContain(reason);
  expect(node.inbox.messages).toEqual([]);
}

/** After a rejection the server still serves a good peer. */
async function expectStillServing(server: ClusterNode, good: ClusterNode) {
  good.transport.send([heartbeat(2, 1, 42)]);
  await server.inbox.waitFor(1);
  expect(server.inbox.messages).toMatchObject([{ from: 2, term: 42 }]);
}

describe("inbound handshake and frame checks", () => {
  it("accepts a good handshake, replies with its own, delivers the messages that follow", async () => {
    const { server } = await setUp();
    const client = await connectRaw(resources, server.transport.address());
    client.socket.write(Buffer.concat([handshakeFrame(), encodeFrame({ message: heartbeat(2, 1, 5) })]));
    await server.inbox.waitFor(1);
    await waitUntil("the handshake reply", () => client.frames.length === 1);
    expect(client.frames[0].handshake).toMatchObject({ protocolVersion: PROTOCOL_VERSION, clusterId: "test-cluster", nodeId: 1, refusal: "" });
    expect(server.inbox.messages[0]).toMatchObject({ from: 2, to: 1, term: 5 });
  });

  it.each([
    ["a wrong cluster id", { clusterId: "other-cluster" }, "cluster id mismatch"],
    ["its own node id", { nodeId: 1 }, "unknown node id 1"],
    ["node id 0", { nodeId: 0 }, "unknown node id 0"],
    ["a protocol version mismatch", { protocolVersion: PROTOCOL_VERSION + 1 }, "protocol version mismatch"],
  ])("refuses a connection whose handshake has %s, delivers nothing from it, keeps serving", async (_name, overrides, reason) => {
    const { server, good } = await setUp();
    const client = await connectRaw(resources, server.transport.address());
    // A valid message in the same write as the bad handshake must not get through.
    const bytes = [Buffer.concat([handshakeFrame(overrides), encodeFrame({ message: heartbeat(2, 1) })])];
    await expectRejected(server, client, bytes, TransportErrorCode.HANDSHAKE, reason);
    await expectStillServing(server, good);
  });

  it("accepts a node id outside its peer set (thesis 4.1: a leader or candidate it has not heard of yet), not a removed one", async () => {
    const { server, good } = await setUp();
    const outsider = await connectRaw(resources, server.transport.address());
    outsider.socket.write(Buffer.concat([handshakeFrame({ nodeId: 9 }), encodeFrame({ message: heartbeat(9, 1, 7) })]));
    await server.inbox.waitFor(1);
    expect(server.inbox.messages[0]).toMatchObject({ from: 9, term: 7 });
    server.transport.setRemovedPeerCheck((id) => id === 8);
    const removed = await connectRaw(resources, server.transport.address());
    removed.socket.write(Buffer.concat([handshakeFrame({ nodeId: 8 }), encodeFrame({ message: heartbeat(8, 1) })]));
    await removed.closed;
    expect(removed.frames.map((frame) => frame.handshake?.refusal)).toEqual(["node 8 was removed from the cluster"]);
    good.transport.send([heartbeat(2, 1, 42)]);
    await server.inbox.waitFor(2);
    expect(server.inbox.messages.map((m) => m.from)).toEqual([9, 2]);
  });

  it("closes a connection whose first frame is a message", async () => {
    const { server, good } = await setUp();
    const client = await connectRaw(resources, server.transport.address());
    await expectRejected(server, client, [encodeFrame({ message: heartbeat(2, 1) })], TransportErrorCode.HANDSHAKE, "not a handshake");
    await expectStillServing(server, good);
  });

  it("refuses a first frame over the handshake maximum from its prefix alone", async () => {
    const { server, good } = await setUp();
    const client = await connectRaw(resources, server.transport.address());
    await expectRejected(server, client, [framePrefix(HANDSHAKE_FRAME_BODY_BYTES_MAX + 1)], TransportErrorCode.FRAME_TOO_LARGE, "over the maximum");
    await expectStillServing(server, good);
  });

  it("refuses a frame over frameBodyBytesMax after the handshake, keeping what came before", async () => {
    const { server, good } = await setUp();
    const client = await connectRaw(resources, server.transport.address());
    client.socket.write(Buffer.concat([handshakeFrame(), encodeFrame({ message: heartbeat(2, 1, 1) })]));
    await server.inbox.waitFor(1);
    client.socket.write(framePrefix(4097));
    await client.closed;
    await waitUntil("the rejection log line", () => linesFor(server, client).some((line) => line.level === "warn"));
    const warnings = linesFor(server, client).filter((line) => line.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0].fields.code).toBe(TransportErrorCode.FRAME_TOO_LARGE);
    expect(server.inbox.messages).toHaveLength(1);
    server.inbox.messages.length = 0;
    await expectStillServing(server, good);
  });

  it("accepts a frame of exactly frameBodyBytesMax after the handshake", async () => {
    const { server } = await setUp();
    let entryBytes = 3900;
    let frame = encodeFrame({ message: appendMessage(2, 1, 1, entryBytes) });
    entryBytes += 4096 - (frame.length - 4);
    frame = encodeFrame({ message: appendMessage(2, 1, 1, entryBytes) });
    expect(frame.length - 4).toBe(4096);
    const client = await connectRaw(resources, server.transport.address());
    client.socket.write(Buffer.concat([handshakeFrame(), frame]));
    await server.inbox.waitFor(1);
    expect(server.inbox.messages[0].entries[0].data.length).toBe(entryBytes);
  });

  it("closes a connection sending a zero-length frame", async () => {
    const { server, good } = await setUp();
    const client = await connectRaw(resources, server.transport.address());
    await expectRejected(server, client, [framePrefix(0)], TransportErrorCode.MALFORMED_FRAME, "zero-length");
    await expectStillServing(server, good);
  });

  it("closes a connection sending an undecodable frame", async () => {
    const { server, good } = await setUp();
    const client = await connectRaw(resources, server.transport.address());
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]);
    await expectRejected(server, client, [framePrefix(garbage.length), garbage], TransportErrorCode.MALFORMED_FRAME, "undecodable");
    await expectStillServing(server, good);
  });

  it("never delivers a frame truncated by the end of the stream", async () => {
    const { server, good } = await setUp();
    const client = await connectRaw(resources, server.transport.address());
    const whole = encodeFrame({ message: heartbeat(2, 1, 1) });
    const cut = encodeFrame({ message: heartbeat(2, 1, 2) });
    client.socket.end(Buffer.concat([handshakeFrame(), whole, cut.subarray(0, cut.length - 3)]));
    await client.closed;
    await waitUntil("the rejection log line", () => linesFor(server, client).some((line) => line.level === "warn"));
    const warnings = linesFor(server, client).filter((line) => line.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0].fields.code).toBe(TransportErrorCode.MALFORMED_FRAME);
    expect(String(warnings[0].fields.reason)).toContain("ended inside a frame");
    expect(server.inbox.messages.map((m) => m.term)).toEqual([1]);
    server.inbox.messages.length = 0;
    await expectStillServing(server, good);
  });

  it("closes a connection that sends no handshake in time", async () => {
    const { server } = await setUp({ handshakeTimeoutMs: 50 });
    const client = await connectRaw(resources, server.transport.address());
    await expectRejected(server, client, [], TransportErrorCode.HANDSHAKE, "no handshake within 50 ms");
  });

  it("drops a message whose from is not the handshake's node, or whose to is not this node", async () => {
    const { server } = await setUp();
    const client = await connectRaw(resources, server.transport.address());
    client.socket.write(
      Buffer.concat([
        handshakeFrame({ nodeId: 2 }),
        encodeFrame({ message: heartbeat(3, 1, 1) }),
        encodeFrame({ message: heartbeat(2, 3, 2) }),
        encodeFrame({ message: heartbeat(2, 1, 3) }),
      ]),
    );
    await server.inbox.waitFor(1);
    expect(server.inbox.messages.map((m) => m.term)).toEqual([3]);
    const drops = linesFor(server, client).filter((line) => line.message.startsWith("peer message dropped"));
    expect(drops.map((line) => [line.fields.from, line.fields.to])).toEqual([
      [3, 1],
      [2, 3],
    ]);
    expect(server.transport.stats().messagesRejected).toBe(2);
  });

  it("listens on the requested host with a port picked by the system", async () => {
    const { server } = await setUp();
    expect(server.transport.address().host).toBe(LOCALHOST);
    expect(server.transport.address().port).toBeGreaterThan(0);
  });
});
