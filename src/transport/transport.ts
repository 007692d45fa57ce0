/**
 * TcpTransport: carries the Raft core's messages between nodes over TCP (optionally
 * mutual TLS), one length-prefixed protobuf frame per message.
 *
 * Connections are one-way for messages: this node dials each peer it sends to and
 * only writes on that connection; each peer dials this node to send back. Per peer
 * there are up to two outbound lanes, each its own connection and bounded queue:
 *   - "message": every message except snapshot chunks. Always kept connected once used.
 *   - "snapshot": MSG_SNAPSHOT chunks only, dialled when the first chunk is sent.
 * A stream of 1 MiB snapshot chunks therefore never waits in front of heartbeats or
 * appends, neither to other peers nor to the same peer: they only share the network.
 * Order is kept within a lane, not across lanes (Raft does not need it: every message
 * carries its term and indexes).
 *
 * `send` never blocks and never throws for a network condition: a message that cannot
 * be queued is dropped and counted, and the peer is reported through onUnreachable so
 * the host can call `core.reportUnreachable(peer)`. A dropped snapshot chunk is also
 * reported through onSnapshotDropped (host: `core.reportSnapshot(peer, false)`), as is
 * a snapshot connection lost with chunks written on it. Both kinds of handler may be
 * called synchronously from inside `send` (a full queue) as well as from socket events.
 */
import assert from "node:assert/strict";
import type net from "node:net";
import { RaftwalError, RaftwalErrorCode } from "../../storage/errors.js";
import { MessageType, type Message } from "../proto/schema.js";
import { BACKOFF_DEFAULTS, type BackoffOptions } from "./backoff.js";
import { TransportError } from "./errors.js";
import { encodeFrame, FRAME_BODY_BYTES_MAX_DEFAULT, FRAME_BODY_BYTES_MAX_LIMIT } from "./framing.js";
import { CLUSTER_ID_BYTES_MAX } from "./handshake.js";
import { InboundConnection } from "./inbound.js";
import type { MessageHandler, NodeTransport, PeerHandler, RefusedHandler } from "./node-transport.js";
import { silentLogger, type TransportLogger } from "./logger.js";
import { describe, PeerLink, type Lane } from "./peer-link.js";
import { emptyCounters, type TransportCounters, type TransportStats } from "./stats.js";
import { createPeerServer, type PeerAddress, type TransportTlsOptions } from "./tls.js";

/** Default bound on messages queued per peer lane: 4,096. */
export const QUEUE_MESSAGES_MAX_DEFAULT = 4096;
/** Default bound on bytes queued per peer lane: 64 MiB (four 16 MiB frames). */
export const QUEUE_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/** Default bound on dial + TLS + handshake reply: 5 s. */
export const CONNECT_TIMEOUT_MS_DEFAULT = 5_000;
/** Default time an accepted connection has to send its handshake: 5 s. */
export const HANDSHAKE_TIMEOUT_MS_DEFAULT = 5_000;
/** Default bound on a graceful socket close before it is destroyed: 1 s. */
export const CLOSE_TIMEOUT_MS_DEFAULT = 1_000;
/** Accepted connections allowed per configured peer (two lanes, plus stale ones being replaced). */
const INBOUND_CONNECTIONS_PER_PEER_MAX = 4;
/** Accepted connections allowed beyond the per-peer allowance (handshakes in progress, probes). */
const INBOUND_CONNECTIONS_SPARE = 16;

export interface TcpTransportOptions {
  /** This node's id (> 0). */
  nodeId: number;
  /** Every peer must present the same cluster id in its handshake. */
  clusterId: string;
  /** Where to listen for peers; port 0 picks a free port (see `address()`). */
  listen: PeerAddress;
  /**
   * Every other member: id -> where to dial it. An entry for this node's own id is ignored.
   * `setPeers` replaces the set when the cluster's configuration changes. Any node of the
   * cluster that was not removed may connect, in the set or not, and the address of one
   * outside it is learned from its handshake so that this node can answer it. Thesis 4.1:
   * servers process RPCs without consulting their configurations; a node behind the
   * cluster's configuration (a new member whose snapshot predates its own addition, a
   * voter that was down while a node was added) must accept that node as its leader and
   * vote for it as a candidate, or it never catches up and a majority may be unable to
   * elect anyone.
   */
  peers: ReadonlyMap<number, PeerAddress>;
  /** This node's peer address as others reach it ("host:port"), sent in every handshake. */
  advertisedAddress?: string;
  /** Whether a node id was removed from the cluster: its handshake is refused saying so. */
  isRemovedPeer?: (id: number) => boolean;
  /** Largest frame body accepted or sent, in bytes. Default FRAME_BODY_BYTES_MAX_DEFAULT (16 MiB). */
  frameBodyBytesMax?: number;
  /** Bound on messages queued per peer lane. Default QUEUE_MESSAGES_MAX_DEFAULT. */
  queueMessagesMax?: number;
  /** Bound on encoded bytes queued per peer lane. Default QUEUE_BYTES_MAX_DEFAULT. */
  queueBytesMax?: number;
  /** Default: discard log lines. */
  logger?: TransportLogger;
  /** Mutual TLS for every peer link. Default: plain TCP. */
  tls?: TransportTlsOptions;
  /** Reconnect delays. Defaults: BACKOFF_DEFAULTS. */
  backoff?: Partial<BackoffOptions>;
  /** Source of jitter in [0, 1). Default Math.random. */
  random?: () => number;
  connectTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  closeTimeoutMs?: number;
}

export class TcpTransport implements NodeTransport {
  readonly #nodeId: number;
  readonly #clusterId: string;
  readonly #listen: PeerAddress;
  readonly #peers: Map<number, PeerAddress>;
  /** The ids of #peers, shared with every inbound connection (it sees changes at once). */
  readonly #peerIds = new Set<number>();
  readonly #advertisedAddress: string;
  #isRemovedPeer: (id: number) => boolean;
  readonly #frameBodyBytesMax: number;
  readonly #queueMessagesMax: number;
  readonly #queueBytesMax: number;
  readonly #logger: TransportLogger;
  readonly #tls: TransportTlsOptions | undefined;
  readonly #backoff: BackoffOptions;
  readonly #random: () => number;
  readonly #connectTimeoutMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #counters: TransportCounters = emptyCounters();
  readonly #links = new Map<number, { message?: PeerLink; snapshot?: PeerLink }>();
  readonly #inbound = new Set<InboundConnection>();
  /** Every accepted TCP socket, including TLS ones still in their TLS handshake. */
  readonly #acceptedSockets = new Set<net.Socket>();
  readonly #messageHandlers: MessageHandler[] = [];
  readonly #unreachableHandlers: PeerHandler[] = [];
  readonly #snapshotDroppedHandlers: PeerHandler[] = [];
  readonly #refusedHandlers: RefusedHandler[] = [];
  #server: net.Server | undefined;
  #address: PeerAddress | undefined;
  #state: "new" | "starting" | "started" | "closed" = "new";

  constructor(options: TcpTransportOptions) {
    requireInteger("nodeId", options.nodeId, 1, Number.MAX_SAFE_INTEGER);
    const clusterIdBytes = Buffer.byteLength(options.clusterId ?? "", "utf8");
    if (clusterIdBytes === 0 || clusterIdBytes > CLUSTER_ID_BYTES_MAX) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `clusterId must be 1 to ${CLUSTER_ID_BYTES_MAX} bytes`);
    }
    this.#nodeId = options.nodeId;
    this.#clusterId = options.clusterId;
    this.#listen = { ...options.listen };
    this.#peers = new Map();
    for (const [id, address] of options.peers) {
      requireInteger("peer id", id, 1, Number.MAX_SAFE_INTEGER);
      if (id !== options.nodeId) this.#peers.set(id, { ...address });
    }
    for (const id of this.#peers.keys()) this.#peerIds.add(id);
    this.#advertisedAddress = options.advertisedAddress ?? "";
    this.#isRemovedPeer = options.isRemovedPeer ?? (() => false);
    this.#frameBodyBytesMax = options.frameBodyBytesMax ?? FRAME_BODY_BYTES_MAX_DEFAULT;
    requireInteger("frameBodyBytesMax", this.#frameBodyBytesMax, 64, FRAME_BODY_BYTES_MAX_LIMIT);
    this.#queueMessagesMax = options.queueMessagesMax ?? QUEUE_MESSAGES_MAX_DEFAULT;
    requireInteger("queueMessagesMax", this.#queueMessagesMax, 1, Number.MAX_SAFE_INTEGER);
    this.#queueBytesMax = options.queueBytesMax ?? QUEUE_BYTES_MAX_DEFAULT;
    requireInteger("queueBytesMax", this.#queueBytesMax, 1, Number.MAX_SAFE_INTEGER);
    this.#logger = options.logger ?? silentLogger;
    this.#tls = options.tls;
    this.#backoff = { ...BACKOFF_DEFAULTS, ...options.backoff };
    if (!(this.#backoff.initialDelayMs > 0 && this.#backoff.delayMsMax >= this.#backoff.initialDelayMs)) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, "backoff needs 0 < initialDelayMs <= delayMsMax");
    }
    if (!(this.#backoff.jitterRatio >= 0 && this.#backoff.jitterRatio <= 1)) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, "backoff.jitterRatio must be in [0, 1]");
    }
    this.#random = options.random ?? Math.random;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS_DEFAULT;
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS_DEFAULT;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS_DEFAULT;
  }

  /** Starts listening. Resolves once bound (see `address()`); rejects if it cannot bind. */
  async start(): Promise<void> {
    assert.equal(this.#state, "new", "start() is called once, before close()");
    this.#state = "starting";
    const server = createPeerServer(this.#tls, {
      onSocket: (socket) => this.#onSocket(socket),
      onTlsError: (error, remote) => {
        this.#counters.connectionsRejected++;
        this.#logger.warn("peer connection rejected", { remote, code: "TLS", reason: describe(error) });
      },
    }, this.#handshakeTimeoutMs);
    server.on("connection", (socket: net.Socket) => {
      this.#acceptedSockets.add(socket);
      socket.once("close", () => this.#acceptedSockets.delete(socket));
    });
    server.maxConnections = this.#maxConnections();
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#listen.port, this.#listen.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (error) => this.#logger.error("peer server error", { reason: describe(error) }));
    const bound = server.address() as net.AddressInfo;
    this.#address = { host: bound.address, port: bound.port };
    if (this.#state === "starting") this.#state = "started";
    this.#logger.info("transport listening", { address: `${bound.address}:${bound.port}`, tls: this.#tls !== undefined });
  }

  /** The bound address (the actual port when `listen.port` was 0). Only after start(). */
  address(): PeerAddress {
    assert.ok(this.#address, "address() is available after start()");
    return { ...this.#address };
  }

  /**
   * Changes where peer `id` is dialled, from its next connection on (the peer set is
   * fixed at construction). Useful when peers listen on port 0 and learn each other's
   * ports after starting.
   */
  setPeerAddress(id: number, address: PeerAddress): void {
    if (!this.#peers.has(id)) throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `node ${id} is not a configured peer`);
    this.#peers.set(id, { ...address });
  }

  /**
   * Replaces the peer set (the cluster's configuration changed): links to peers no longer
   * in it are closed and their queued messages dropped, and so are the connections they
   * dialled (their next dial is refused, saying why: a removed node learns so); a peer
   * whose address changed is dialled at the new one, new peers are dialled when first sent
   * to (ids outside it may still connect: see TransportOptions.peers; removed ones may not).
   */
  setPeers(peers: ReadonlyMap<number, PeerAddress>): void {
    for (const id of [...this.#peers.keys()]) {
      if (peers.has(id)) continue;
      this.#peers.delete(id);
      this.#peerIds.delete(id);
      this.#closeLinks(id);
      for (const connection of this.#inbound) if (connection.peerId === id) void connection.close();
    }
    for (const [id, address] of peers) {
      if (id === this.#nodeId) continue;
      const previous = this.#peers.get(id);
      this.#peers.set(id, { ...address });
      this.#peerIds.add(id);
      if (previous && (previous.host !== address.host || previous.port !== address.port)) this.#closeLinks(id);
    }
    this.#resizeInbound();
  }

  /** Tells the host how this node learns who counts as removed (for refusals). */
  setRemovedPeerCheck(isRemovedPeer: (id: number) => boolean): void {
    this.#isRemovedPeer = isRemovedPeer;
  }

  /**
   * Queues each message for its `to` peer. Never blocks; never throws for a network
   * condition. Messages to an unknown peer, too large for a frame, or sent after
   * close() are dropped (counted; the first two logged).
   */
  send(messages: readonly Message[]): void {
    for (const message of messages) {
      assert.equal(message.from, this.#nodeId, "a sent message's `from` is this node");
      if (this.#state === "closed") {
        this.#counters.messagesDropped++;
        continue;
      }
      if (!this.#peers.has(message.to)) {
        this.#counters.messagesDropped++;
        this.#logger.warn("message to an unknown peer dropped", { to: message.to, type: message.type });
        continue;
      }
      const lane: Lane = message.type === MessageType.SNAPSHOT ? "snapshot" : "message";
      let bytes: Buffer;
      try {
        bytes = encodeFrame({ message }, this.#frameBodyBytesMax);
      } catch (error) {
        if (!(error instanceof TransportError)) throw error;
        this.#counters.messagesDropped++;
        this.#logger.error("message too large for a frame dropped", { to: message.to, type: message.type, reason: error.message });
        if (lane === "snapshot") this.#emit(this.#snapshotDroppedHandlers, message.to);
        continue;
      }
      this.#link(message.to, lane).enqueue(bytes);
    }
  }

  /** Registers a handler for every delivered message; returns a function removing it. */
  onMessage(handler: MessageHandler): () => void {
    return register(this.#messageHandlers, handler);
  }

  /** Registers a handler told when a peer looks unreachable (host: core.reportUnreachable(peer)). */
  onUnreachable(handler: PeerHandler): () => void {
    return register(this.#unreachableHandlers, handler);
  }

  /**
   * Registers a handler told when a snapshot transfer to a peer is broken: a chunk was
   * dropped (queue full, too large) or the snapshot connection was lost after chunks were
   * written on it. Host: core.reportSnapshot(peer, false).
   */
  onSnapshotDropped(handler: PeerHandler): () => void {
    return register(this.#snapshotDroppedHandlers, handler);
  }

  /** Registers a handler told when a peer refused this node's handshake, with its reason. */
  onRefused(handler: RefusedHandler): () => void {
    return register(this.#refusedHandlers, handler);
  }

  /** A copy of the counters, with per-peer lane state. */
  stats(): TransportStats {
    const peers: TransportStats["peers"] = {};
    for (const [id, lanes] of this.#links) {
      peers[id] = {
        ...(lanes.message ? { message: lanes.message.stats() } : {}),
        ...(lanes.snapshot ? { snapshot: lanes.snapshot.stats() } : {}),
      };
    }
    return { ...this.#counters, peers };
  }

  /**
   * Stops listening, ends every connection (each destroyed if not closed within
   * closeTimeoutMs), cancels every timer, discards queued messages. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    const server = this.#server;
    const serverClosed = server
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : Promise.resolve();
    const closing: Promise<void>[] = [];
    for (const lanes of this.#links.values()) {
      if (lanes.message) closing.push(lanes.message.close());
      if (lanes.snapshot) closing.push(lanes.snapshot.close());
    }
    for (const connection of this.#inbound) closing.push(connection.close());
    await Promise.all(closing);
    // Sockets that never became an InboundConnection (a TLS handshake in progress).
    for (const socket of this.#acceptedSockets) socket.destroy();
    await serverClosed;
    this.#logger.info("transport closed", {});
  }

  /** Inbound connections the server admits: a few per peer (learned ones included) and a spare. */
  #resizeInbound(): void {
    if (this.#server) this.#server.maxConnections = this.#maxConnections();
  }

  #maxConnections(): number {
    return this.#peers.size * INBOUND_CONNECTIONS_PER_PEER_MAX + INBOUND_CONNECTIONS_SPARE;
  }

  #closeLinks(peerId: number): void {
    const lanes = this.#links.get(peerId);
    if (lanes === undefined) return;
    this.#links.delete(peerId);
    void lanes.message?.close();
    void lanes.snapshot?.close();
  }

  #link(peerId: number, lane: Lane): PeerLink {
    let lanes = this.#links.get(peerId);
    if (lanes === undefined) {
      lanes = {};
      this.#links.set(peerId, lanes);
    }
    let link = lanes[lane];
    if (link === undefined) {
      link = new PeerLink({
        peerId,
        lane,
        localNodeId: this.#nodeId,
        clusterId: this.#clusterId,
        address: () => this.#peers.get(peerId)!,
        tls: this.#tls,
        queueMessagesMax: this.#queueMessagesMax,
        queueBytesMax: this.#queueBytesMax,
        backoff: this.#backoff,
        random: this.#random,
        connectTimeoutMs: this.#connectTimeoutMs,
        closeTimeoutMs: this.#closeTimeoutMs,
        reconnectWhenIdle: lane === "message",
        logger: this.#logger,
        counters: this.#counters,
        onUnreachable: () => this.#emit(this.#unreachableHandlers, peerId),
        advertisedAddress: this.#advertisedAddress,
        onRefused: (refusal, removed) => {
          for (const handler of this.#refusedHandlers) handler(peerId, refusal, removed);
        },
        onDrop: lane === "snapshot" ? () => this.#emit(this.#snapshotDroppedHandlers, peerId) : () => {},
      });
      lanes[lane] = link;
    }
    return link;
  }

  #onSocket(socket: net.Socket): void {
    if (this.#state === "closed") {
      socket.destroy();
      return;
    }
    const connection = new InboundConnection(socket, {
      localNodeId: this.#nodeId,
      clusterId: this.#clusterId,
      peerIds: this.#peerIds,
      learnPeer: (id, peerAddress) => this.#learnPeer(id, peerAddress),
      isRemovedPeer: (id) => this.#isRemovedPeer(id),
      frameBodyBytesMax: this.#frameBodyBytesMax,
      handshakeTimeoutMs: this.#handshakeTimeoutMs,
      closeTimeoutMs: this.#closeTimeoutMs,
      logger: this.#logger,
      counters: this.#counters,
      deliver: (message) => this.#deliver(message),
      onClosed: (closed) => this.#inbound.delete(closed),
    });
    this.#inbound.add(connection);
  }

  /** A node outside the peer set connected (its leader, a candidate: TransportOptions.peers): answer it there. */
  #learnPeer(id: number, peerAddress: string): void {
    const match = /^(.+):(\d{1,5})$/.exec(peerAddress);
    if (!match || this.#peers.has(id)) return;
    this.#peers.set(id, { host: match[1].replace(/^\[(.*)\]$/, "$1"), port: Number(match[2]) });
    this.#peerIds.add(id);
    this.#resizeInbound();
    this.#logger.info("learned a peer's address from its handshake", { peer: id, address: peerAddress });
  }

  #deliver(message: Message): void {
    this.#counters.messagesDelivered++;
    for (const handler of this.#messageHandlers) {
      try {
        handler(message);
      } catch (error) {
        this.#logger.error("message handler threw", { from: message.from, type: message.type, reason: describe(error) });
      }
    }
  }

  #emit(handlers: PeerHandler[], peer: number): void {
    for (const handler of handlers) {
      try {
        handler(peer);
      } catch (error) {
        this.#logger.error("peer handler threw", { peer, reason: describe(error) });
      }
    }
  }
}

function register<T>(handlers: T[], handler: T): () => void {
  handlers.push(handler);
  return () => {
    const index = handlers.indexOf(handler);
    if (index >= 0) handlers.splice(index, 1);
  };
}

function requireInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}
