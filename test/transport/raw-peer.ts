/**
 * A hand-driven peer built from the framing helpers: it writes exactly the bytes a
 * test wants (bad handshakes, garbage, truncated frames) and records what comes back.
 */
import net from "node:net";
import type { Frame, Handshake, Message } from "../../src/proto/schema.js";
import { encodeFrame, FrameDecoder } from "../../src/transport/framing.js";
import { PROTOCOL_VERSION } from "../../src/transport/handshake.js";
import { CLUSTER_ID, LOCALHOST, type Resources } from "./helpers.js";
import type { PeerAddress } from "../../src/transport/tls.js";

export interface RawClient {
  socket: net.Socket;
  /** Frames the server sent back. */
  frames: Frame[];
  /** Resolves when the socket has closed (either side). */
  closed: Promise<void>;
  /** "127.0.0.1:port" of this client, as the server logs it. */
  remote: string;
}

export function handshakeFrame(overrides: Partial<Handshake> = {}): Buffer {
  return encodeFrame({ handshake: { protocolVersion: PROTOCOL_VERSION, clusterId: CLUSTER_ID, nodeId: 2, peerAddress: "", refusal: "", removed: false, ...overrides } });
}

export async function connectRaw(resources: Resources, address: PeerAddress): Promise<RawClient> {
  const socket = resources.socket(net.connect(address));
  socket.on("error", () => {});
  const frames: Frame[] = [];
  const decoder = new FrameDecoder();
  socket.on("data", (chunk: Buffer) => {
    try {
      decoder.push(chunk, (frame) => void frames.push(frame));
    } catch {
      socket.destroy();
    }
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { socket, frames, closed, remote: `${socket.localAddress}:${socket.localPort}` };
}

export function framePrefix(bodyBytes: number): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(bodyBytes, 0);
  return prefix;
}

export interface FakePeerOptions {
  /** The handshake reply; defaults to node 2 of CLUSTER_ID. */
  reply?: Partial<Handshake>;
  /** Called for every message; return false to stop reading this connection. */
  onMessage?: (message: Message, socket: net.Socket) => boolean | void;
}

/** A listening hand-driven peer: answers every handshake with `reply`, hands messages to `onMessage`. */
export async function startFakePeer(resources: Resources, options: FakePeerOptions = {}): Promise<{ server: net.Server; address: PeerAddress; handshakes: Handshake[] }> {
  const server = resources.server(net.createServer());
  const handshakes: Handshake[] = [];
  server.on("connection", (socket) => {
    const decoder = new FrameDecoder();
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      try {
        decoder.push(chunk, (frame) => {
          if (frame.handshake) {
            handshakes.push(frame.handshake);
            socket.write(handshakeFrame(options.reply));
            return;
          }
          return options.onMessage?.(frame.message, socket);
        });
      } catch {
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, LOCALHOST, resolve));
  return { server, address: { host: LOCALHOST, port: (server.address() as net.AddressInfo).port }, handshakes };
}
