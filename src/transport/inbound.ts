/**
 * One accepted peer connection, from its first byte to its close.
 *
 *   1. Until the handshake is verified the decoder accepts frames of at most
 *      HANDSHAKE_FRAME_BODY_BYTES_MAX bytes, and the connection has handshakeTimeoutMs
 *      to produce one.
 *   2. The first frame must be a handshake that verifyHandshake accepts; then this
 *      node replies with its own and raises the frame maximum to the configured one.
 *      A handshake refused for who sent it (another cluster, a node that is not a
 *      member) is answered with a refusal naming the reason before the close.
 *   3. Every later frame must be a message; it is delivered when its `from` is the
 *      handshake's node id and its `to` is this node, and dropped with a log line
 *      otherwise.
 *
 * Any protocol error (handshake refused, frame too large, malformed, truncated by the
 * end of the stream, a second handshake) closes the connection with exactly one log
 * line. Nothing from a connection whose handshake was refused is ever delivered.
 */
import type net from "node:net";
import type { Handshake, Message } from "../proto/schema.js";
import { TransportError, TransportErrorCode } from "./errors.js";
import { encodeFrame, FrameDecoder } from "./framing.js";
import { HANDSHAKE_FRAME_BODY_BYTES_MAX, localHandshake, PROTOCOL_VERSION, refusalHandshake, verifyHandshake } from "./handshake.js";
import type { TransportLogger } from "./logger.js";
import { describe, endSocket } from "./peer-link.js";
import type { TransportCounters } from "./stats.js";
import { KEEPALIVE_INITIAL_DELAY_MS, remoteOf } from "./tls.js";

export interface InboundOptions {
  localNodeId: number;
  clusterId: string;
  /** This node's peers; any other node of the cluster that was not removed is accepted too (thesis 4.1, TransportOptions.peers). */
  peerIds: ReadonlySet<number>;
  /** An accepted node outside `peerIds` told where it listens. */
  learnPeer: (id: number, peerAddress: string) => void;
  /** Whether `id` was removed from the cluster (the refusal says so, and the dialler may stop). */
  isRemovedPeer: (id: number) => boolean;
  frameBodyBytesMax: number;
  handshakeTimeoutMs: number;
  closeTimeoutMs: number;
  logger: TransportLogger;
  counters: TransportCounters;
  deliver: (message: Message) => void;
  onClosed: (connection: InboundConnection) => void;
}

export class InboundConnection {
  readonly #socket: net.Socket;
  readonly #options: InboundOptions;
  readonly #remote: string;
  readonly #decoder = new FrameDecoder(HANDSHAKE_FRAME_BODY_BYTES_MAX);
  /** The verified remote node id; 0 until the handshake is accepted. */
  #peerId = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Set once the connection is being closed: no more frames, no more log lines. */
  #closing = false;
  /** A refusal was written: the close waits for it to leave. */
  #refused = false;

  constructor(socket: net.Socket, options: InboundOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#remote = remoteOf(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_INITIAL_DELAY_MS);
    this.#timer = setTimeout(
      () => this.#reject(new TransportError(TransportErrorCode.HANDSHAKE, `no handshake within ${options.handshakeTimeoutMs} ms`)),
      options.handshakeTimeoutMs,
    );
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("end", () => this.#onEnd());
    socket.on("error", (error) => {
      if (this.#closing) return;
      this.#closing = true;
      // A reset after the handshake is ordinary (the peer restarted or redialled).
      const log = this.#peerId === 0 ? this.#options.logger.warn : this.#options.logger.info;
      log.call(this.#options.logger, "peer connection failed", this.#fields({ reason: describe(error) }));
      socket.destroy();
    });
    socket.on("close", () => {
      this.#clearTimer();
      this.#closing = true;
      options.onClosed(this);
    });
  }

  /** The verified remote node id; 0 until the handshake is accepted. */
  get peerId(): number {
    return this.#peerId;
  }

  /** Ends the connection (graceful, bounded by closeTimeoutMs). */
  close(): Promise<void> {
    this.#closing = true;
    this.#clearTimer();
    return endSocket(this.#socket, this.#options.closeTimeoutMs);
  }

  #onData(chunk: Buffer): void {
    if (this.#closing) return;
    const options = this.#options;
    options.counters.bytesReceived += chunk.length;
    try {
      this.#decoder.push(chunk, (frame) => {
        options.counters.framesReceived++;
        if (this.#peerId === 0) {
          this.#handshake(frame.handshake);
          return;
        }
        if (frame.message === undefined) {
          throw new TransportError(TransportErrorCode.MALFORMED_FRAME, "second handshake on an established connection");
        }
        this.#onMessage(frame.message);
        return !this.#closing;
      });
    } catch (error) {
      this.#reject(error);
    }
  }

  #handshake(handshake: Handshake | undefined): void {
    const options = this.#options;
    let peerId: number;
    try {
      peerId = verifyHandshake(handshake, {
        clusterId: options.clusterId,
        nodeIds: options.peerIds,
        acceptsOutsider: (id) => !options.isRemovedPeer(id),
        localNodeId: options.localNodeId,
      });
    } catch (error) {
      if (handshake !== undefined && handshake.protocolVersion === PROTOCOL_VERSION && handshake.refusal === "") this.#refuse(handshake, error);
      throw error;
    }
    if (!options.peerIds.has(peerId) && handshake!.peerAddress !== "") options.learnPeer(peerId, handshake!.peerAddress);
    this.#accept(peerId);
  }

  /** Tells the dialler why it is refused; the caller then closes the connection. */
  #refuse(handshake: Handshake, error: unknown): void {
    const options = this.#options;
    const reason = error instanceof Error ? error.message : String(error);
    const removed = handshake.clusterId === options.clusterId && options.isRemovedPeer(handshake.nodeId);
    const refusal = removed ? `node ${handshake.nodeId} was removed from the cluster` : reason;
    const reply = encodeFrame({ handshake: refusalHandshake(options.clusterId, options.localNodeId, refusal, removed) });
    options.counters.bytesSent += reply.length;
    options.counters.framesSent++;
    this.#refused = true;
    this.#socket.write(reply);
  }

  #accept(peerId: number): void {
    const options = this.#options;
    this.#peerId = peerId;
    this.#clearTimer();
    this.#decoder.setFrameBodyBytesMax(options.frameBodyBytesMax);
    options.counters.connectionsAccepted++;
    const reply = encodeFrame({ handshake: localHandshake(options.clusterId, options.localNodeId) });
    options.counters.bytesSent += reply.length;
    options.counters.framesSent++;
    this.#socket.write(reply);
    options.logger.info("peer connection accepted", this.#fields({}));
  }

  #onMessage(message: Message): void {
    const options = this.#options;
    if (message.from !== this.#peerId || message.to !== options.localNodeId) {
      options.counters.messagesRejected++;
      options.logger.warn(
        "peer message dropped: from/to do not match the connection",
        this.#fields({ from: message.from, to: message.to, type: message.type }),
      );
      return;
    }
    options.deliver(message);
  }

  #onEnd(): void {
    if (this.#closing) return;
    try {
      this.#decoder.end();
    } catch (error) {
      this.#reject(error);
      return;
    }
    this.#closing = true;
    this.#clearTimer();
    const reason = this.#peerId === 0 ? "peer closed the connection before a handshake" : "peer closed the connection";
    this.#options.logger.info(reason, this.#fields({}));
    this.#socket.end();
  }

  /** Closes the connection for a protocol error, with one log line. */
  #reject(error: unknown): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#clearTimer();
    this.#options.counters.connectionsRejected++;
    const code = error instanceof TransportError ? error.code : undefined;
    this.#options.logger.warn("peer connection rejected", this.#fields({ code, reason: error instanceof Error ? error.message : String(error) }));
    // A refusal was written with end(): let it leave, but never wait longer than a close.
    if (this.#refused) endSocket(this.#socket, this.#options.closeTimeoutMs).catch(() => undefined);
    else this.#socket.destroy();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fields(extra: Record<string, unknown>): Record<string, unknown> {
    return { remote: this.#remote, ...(this.#peerId !== 0 ? { peer: this.#peerId } : {}), ...extra };
  }
}
