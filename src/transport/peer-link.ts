/**
 * One outbound lane to one peer: a bounded queue of encoded frames and at most one
 * connection that drains it.
 *
 * Life of a link:
 *
 *   idle --enqueue--> connecting --handshake reply ok--> ready
 *   connecting | ready --error, close, timeout--> backoff --timer--> connecting
 *   any --close()--> closed
 *
 * - The first dial happens on the first enqueue (lazy). After a failure the link
 *   redials after an exponential, jittered delay (backoff.ts); the attempt count resets
 *   once a handshake reply is accepted. A lane created with `reconnectWhenIdle: false`
 *   (the snapshot lane) goes idle instead when nothing is queued.
 * - Frames queue while the link is not ready; the queue is bounded by count and bytes.
 *   A frame that does not fit is dropped (Raft tolerates loss).
 * - Writes respect back-pressure: when `socket.write` returns false the link stops
 *   and resumes on 'drain', so at most one socket buffer's worth sits in user space
 *   beyond the bounded queue.
 * - The peer is reported unreachable when a frame is dropped or the connection fails;
 *   once per outage: the report is re-armed when a frame is written to a ready link.
 */
import type net from "node:net";
import { backoffDelayMs, type BackoffOptions } from "./backoff.js";
import { TransportError, TransportErrorCode } from "./errors.js";
import { encodeFrame, FrameDecoder } from "./framing.js";
import { HANDSHAKE_FRAME_BODY_BYTES_MAX, localHandshake, verifyHandshake } from "./handshake.js";
import type { TransportLogger } from "./logger.js";
import { BoundedQueue } from "./queue.js";
import type { LaneStats, TransportCounters } from "./stats.js";
import { dialPeer, KEEPALIVE_INITIAL_DELAY_MS, type PeerAddress, type TransportTlsOptions } from "./tls.js";

/** Which connection a message travels on: snapshot chunks get their own. */
export type Lane = "message" | "snapshot";

export interface PeerLinkOptions {
  peerId: number;
  lane: Lane;
  localNodeId: number;
  clusterId: string;
  /** Read at every dial, so an updated address is used from the next connection on. */
  address: () => PeerAddress;
  tls: TransportTlsOptions | undefined;
  queueMessagesMax: number;
  queueBytesMax: number;
  backoff: BackoffOptions;
  random: () => number;
  /** Bound on dial + TLS + handshake reply. */
  connectTimeoutMs: number;
  /** Bound on a graceful close before the socket is destroyed. */
  closeTimeoutMs: number;
  reconnectWhenIdle: boolean;
  logger: TransportLogger;
  counters: TransportCounters;
  onUnreachable: () => void;
  /** This node's peer address, sent in the handshake ("" for none). */
  advertisedAddress: string;
  /** The peer refused our handshake and said why (and whether this node was removed from the cluster). */
  onRefused: (refusal: string, removed: boolean) => void;
  /**
   * Called once per frame dropped because the queue was full, and once per snapshot-lane
   * connection lost after frames were written on it. Not called by close().
   */
  onDrop: () => void;
}

interface QueuedFrame {
  readonly bytes: Buffer;
}

export class PeerLink {
  readonly #options: PeerLinkOptions;
  readonly #queue: BoundedQueue<QueuedFrame>;
  #state: LaneStats["state"] = "idle";
  #socket: net.Socket | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Consecutive failed attempts since the last accepted handshake reply. */
  #failedAttempts = 0;
  #dials = 0;
  #reconnects = 0;
  #dropped = 0;
  /** The socket asked us to wait for 'drain'. */
  #blocked = false;
  #flushScheduled = false;
  #unreachableReported = false;
  /** Frames written on the current connection (a snapshot lane losing some reports them). */
  #framesWrittenOnSocket = 0;

  constructor(options: PeerLinkOptions) {
    this.#options = options;
    this.#queue = new BoundedQueue({ itemsMax: options.queueMessagesMax, bytesMax: options.queueBytesMax });
  }

  get state(): LaneStats["state"] {
    return this.#state;
  }

  stats(): LaneStats {
    return {
      state: this.#state,
      queuedMessages: this.#queue.length,
      queuedBytes: this.#queue.bytes,
      messagesDropped: this.#dropped,
      reconnects: this.#reconnects,
    };
  }

  /** Queues one encoded frame; returns false when it was dropped. */
  enqueue(bytes: Buffer): boolean {
    if (this.#state === "closed") return false;
    if (!this.#queue.push({ bytes })) {
      this.#drop();
      this.#reportUnreachable(`outbound queue full (${this.#queue.length} messages, ${this.#queue.bytes} bytes)`);
      return false;
    }
    if (this.#state === "idle") this.#dial();
    else if (this.#state === "ready") this.#scheduleFlush();
    return true;
  }

  /**
   * Stops the link: cancels timers, discards queued frames (counted as dropped), ends
   * the connection after what was already written, destroying it after closeTimeoutMs.
   */
  close(): Promise<void> {
    if (this.#state === "closed") return Promise.resolve();
    const wasReady = this.#state === "ready";
    this.#state = "closed";
    this.#clearTimer();
    // Discarded at close: counted, but no drop hooks (the host is shutting down).
    const discarded = this.#queue.clear().length;
    this.#dropped += discarded;
    this.#options.counters.messagesDropped += discarded;
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket === undefined || socket.destroyed) return Promise.resolve();
    if (!wasReady) {
      // Still dialling or handshaking: nothing of ours to flush.
      socket.destroy();
      return Promise.resolve();
    }
    return endSocket(socket, this.#options.closeTimeoutMs);
  }

  #dial(): void {
    const options = this.#options;
    this.#state = "connecting";
    this.#dials++;
    if (this.#dials > 1) {
      this.#reconnects++;
      options.counters.reconnects++;
    }
    const address = options.address();
    const { socket, readyEvent } = dialPeer(address, options.tls);
    this.#socket = socket;
    this.#blocked = false;
    this.#framesWrittenOnSocket = 0;
    const decoder = new FrameDecoder(HANDSHAKE_FRAME_BODY_BYTES_MAX);
    this.#timer = setTimeout(
      () => this.#fail(socket, `no handshake reply within ${options.connectTimeoutMs} ms`),
      options.connectTimeoutMs,
    );
    socket.once(readyEvent, () => {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEPALIVE_INITIAL_DELAY_MS);
      const hello = encodeFrame({ handshake: localHandshake(options.clusterId, options.localNodeId, options.advertisedAddress) });
      options.counters.bytesSent += hello.length;
      options.counters.framesSent++;
      socket.write(hello);
    });
    socket.on("data", (chunk: Buffer) => {
      options.counters.bytesReceived += chunk.length;
      try {
        decoder.push(chunk, (frame) => {
          options.counters.framesReceived++;
          if (this.#state !== "connecting" || socket !== this.#socket) {
            throw new TransportError(TransportErrorCode.MALFORMED_FRAME, "peer sent a frame after its handshake reply");
          }
          if (frame.handshake !== undefined && frame.handshake.refusal !== "") options.onRefused(frame.handshake.refusal, frame.handshake.removed);
          verifyHandshake(frame.handshake, { clusterId: options.clusterId, nodeIds: [options.peerId] });
          this.#becomeReady();
        });
      } catch (error) {
        this.#fail(socket, describe(error));
      }
    });
    socket.on("drain", () => {
      if (socket !== this.#socket) return;
      this.#blocked = false;
      this.#flush();
    });
    socket.on("error", (error) => this.#fail(socket, describe(error)));
    socket.on("close", () => this.#fail(socket, "connection closed by peer"));
  }

  #becomeReady(): void {
    this.#clearTimer();
    this.#state = "ready";
    this.#failedAttempts = 0;
    this.#options.logger.info("peer link up", this.#fields({}));
    this.#flush();
  }

  /** Handles the end of `socket`, whatever ended it; ignores sockets already replaced. */
  #fail(socket: net.Socket, reason: string): void {
    if (socket !== this.#socket) return;
    this.#socket = undefined;
    this.#clearTimer();
    socket.destroy();
    const options = this.#options;
    const wasReady = this.#state === "ready";
    options.counters.connectionFailures++;
    this.#failedAttempts++;
    // Chunks written on a lost snapshot connection may not have arrived: the transfer
    // is broken, tell the host (core.reportSnapshot(peer, false)).
    if (options.lane === "snapshot" && this.#framesWrittenOnSocket > 0) options.onDrop();
    this.#blocked = false;
    if (!wasReady || this.#queue.length > 0 || options.reconnectWhenIdle) {
      this.#reportUnreachable(reason);
    }
    if (options.reconnectWhenIdle || this.#queue.length > 0) {
      const delayMs = backoffDelayMs(this.#failedAttempts, options.backoff, options.random);
      options.logger.warn(wasReady ? "peer link lost" : "peer dial failed", this.#fields({ reason, retryInMs: Math.round(delayMs), attempt: this.#failedAttempts }));
      this.#state = "backoff";
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#dial();
      }, delayMs);
    } else {
      options.logger.info(wasReady ? "peer link closed while idle" : "peer dial failed while idle", this.#fields({ reason }));
      this.#state = "idle";
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /** Writes queued frames until the queue is empty or the socket asks to wait. */
  #flush(): void {
    const socket = this.#socket;
    if (this.#state !== "ready" || socket === undefined || this.#blocked || this.#queue.length === 0) return;
    const counters = this.#options.counters;
    socket.cork();
    let frame: QueuedFrame | undefined;
    while ((frame = this.#queue.shift()) !== undefined) {
      counters.bytesSent += frame.bytes.length;
      counters.framesSent++;
      this.#framesWrittenOnSocket++;
      if (!socket.write(frame.bytes)) {
        this.#blocked = true;
        break;
      }
    }
    socket.uncork();
    this.#unreachableReported = false;
  }

  #drop(): void {
    this.#dropped++;
    this.#options.counters.messagesDropped++;
    this.#options.onDrop();
  }

  #reportUnreachable(reason: string): void {
    if (this.#unreachableReported || this.#state === "closed") return;
    this.#unreachableReported = true;
    this.#options.counters.unreachableReports++;
    this.#options.logger.warn("peer unreachable", this.#fields({ reason }));
    this.#options.onUnreachable();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fields(extra: Record<string, unknown>): Record<string, unknown> {
    const address = this.#options.address();
    return { peer: this.#options.peerId, lane: this.#options.lane, address: `${address.host}:${address.port}`, ...extra };
  }
}

/** Ends `socket` gracefully; destroys it if it has not closed within `timeoutMs`. */
export function endSocket(socket: net.Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on("error", () => {});
    socket.end();
  });
}

export function describe(error: unknown): string {
  if (error instanceof TransportError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ? `${(error as NodeJS.ErrnoException).code}: ${error.message}` : error.message;
  return String(error);
}
