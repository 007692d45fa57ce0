import net from "node:net";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { TcpTransport } from "../../src/transport/transport.js";
import { createTestPki, type Pem, type TestPki } from "./certificates.js";
import { CLUSTER_ID, heartbeat, Inbox, LOCALHOST, recordingLogger, Resources, waitUntil } from "./helpers.js";
import { handshakeFrame } from "./raw-peer.js";

const resources = new Resources();
let pki: TestPki;
let node1: Pem;
let node2: Pem;
let rogue3: Pem;

beforeAll(() => {
  pki = createTestPki();
  node1 = pki.issue("cluster-ca", "node1");
  node2 = pki.issue("cluster-ca", "node2");
  // Node 3's impostor: a well-formed certificate from a CA the cluster does not trust.
  // It trusts the cluster CA itself, so only the server side can refuse it.
  rogue3 = { ...pki.issue("rogue-ca", "rogue3"), ca: pki.caCert("cluster-ca") };
});
afterAll(() => pki?.remove());
afterEach(() => resources.closeAll());

/** Node 1 with mutual TLS, expecting peers 2 and 3. */
async function tlsServer() {
  const logger = recordingLogger();
  const transport = resources.transport({
    nodeId: 1,
    clusterId: CLUSTER_ID,
    listen: { host: LOCALHOST, port: 0 },
    peers: new Map([
      [2, { host: LOCALHOST, port: 1 }],
      [3, { host: LOCALHOST, port: 1 }],
    ]),
    tls: node1,
    logger,
    backoff: { initialDelayMs: 5, delayMsMax: 50 },
  });
  await transport.start();
  return { transport, logger, inbox: new Inbox(transport) };
}

async function client(nodeId: number, server: TcpTransport, pem: Pem | undefined) {
  const transport = resources.transport({
    nodeId,
    clusterId: CLUSTER_ID,
    listen: { host: LOCALHOST, port: 0 },
    peers: new Map([[1, server.address()]]),
    tls: pem,
    backoff: { initialDelayMs: 5, delayMsMax: 50 },
  });
  await transport.start();
  server.setPeerAddress(nodeId, transport.address());
  return { transport, inbox: new Inbox(transport) };
}

function tlsRejections(logger: ReturnType<typeof recordingLogger>) {
  return logger.lines.filter((line) => line.message === "peer connection rejected" && line.fields.code === "TLS");
}

describe("mutual TLS peer links", () => {
  it("peers with certificates from the cluster CA exchange messages both ways", async () => {
    const server = await tlsServer();
    const two = await client(2, server.transport, node2);
    two.transport.send([heartbeat(2, 1, 7)]);
    server.transport.send([heartbeat(1, 2, 8)]);
    await server.inbox.waitFor(1);
    await two.inbox.waitFor(1);
    expect(server.inbox.messages[0]).toMatchObject({ from: 2, term: 7 });
    expect(two.inbox.messages[0]).toMatchObject({ from: 1, term: 8 });
    expect(tlsRejections(server.logger)).toEqual([]);
  });

  it("refuses a peer whose certificate comes from another CA, and keeps serving good peers", async () => {
    const server = await tlsServer();
    const impostor = await client(3, server.transport, rogue3);
    const unreachable: number[] = [];
    impostor.transport.onUnreachable((peer) => unreachable.push(peer));
    impostor.transport.send([heartbeat(3, 1, 1)]);
    await waitUntil("the server to refuse the impostor", () => tlsRejections(server.logger).length > 0);
    await waitUntil("the impostor to find node 1 unreachable", () => unreachable.includes(1));
    expect(String(tlsRejections(server.logger)[0].fields.reason)).toContain("client certificate not trusted");

    const good = await client(2, server.transport, node2);
    good.transport.send([heartbeat(2, 1, 9)]);
    await server.inbox.waitFor(1);
    expect(server.inbox.messages.map((m) => m.from)).toEqual([2]);
    expect(impostor.transport.stats().peers[1].message?.state).not.toBe("ready");
  });

  it("refuses a TLS client without a certificate", async () => {
    const server = await tlsServer();
    const socket = resources.socket(tls.connect({ ...server.transport.address(), ca: node1.ca }));
    socket.on("error", () => {});
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.once("secureConnect", () => socket.write(handshakeFrame({ nodeId: 2 })));
    let received = 0;
    socket.on("data", (chunk: Buffer) => (received += chunk.length));
    await closed;
    await waitUntil("the rejection log line", () => tlsRejections(server.logger).length > 0);
    expect(received).toBe(0);
    expect(tlsRejections(server.logger)[0].fields.reason).toBe("no client certificate presented");
    expect(server.inbox.messages).toEqual([]);
  });

  it("refuses a plain TCP peer", async () => {
    const server = await tlsServer();
    const plain = await client(2, server.transport, undefined);
    plain.transport.send([heartbeat(2, 1)]);
    await waitUntil("the rejection log line", () => tlsRejections(server.logger).length > 0);
    expect(server.inbox.messages).toEqual([]);
    const socket = resources.socket(net.connect(server.transport.address()));
    socket.on("error", () => {});
    socket.write(handshakeFrame({ nodeId: 2 }));
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    expect(server.inbox.messages).toEqual([]);
  });

  it("a TLS dialler refuses a server whose certificate it cannot verify", async () => {
    const server = await tlsServer();
    const logger = recordingLogger();
    const rogueServer = resources.transport({
      nodeId: 2,
      clusterId: CLUSTER_ID,
      listen: { host: LOCALHOST, port: 0 },
      peers: new Map([[1, server.transport.address()]]),
      tls: { ...pki.issue("rogue-ca", "rogue2"), ca: pki.caCert("rogue-ca") },
    });
    await rogueServer.start();
    const rogueInbox = new Inbox(rogueServer);
    const dialler = resources.transport({
      nodeId: 1,
      clusterId: CLUSTER_ID,
      listen: { host: LOCALHOST, port: 0 },
      peers: new Map([[2, rogueServer.address()]]),
      tls: node1,
      logger,
      backoff: { initialDelayMs: 5, delayMsMax: 50 },
    });
    await dialler.start();
    dialler.send([heartbeat(1, 2)]);
    await waitUntil("the dial to fail on the certificate", () =>
      logger.lines.some((line) => line.message === "peer dial failed" && /certificate|self.signed|verify/i.test(String(line.fields.reason))),
    );
    expect(rogueInbox.messages).toEqual([]);
  });
});
