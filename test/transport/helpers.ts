/**
 * Shared helpers of the transport tests: message builders, a recording logger, a
 * bounded condition wait, and a registry that closes everything a test opened.
 */
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { emptyMessage, MessageType, type Message } from "../../src/proto/schema.js";
import { TcpTransport, type TcpTransportOptions } from "../../src/transport/transport.js";
import type { TransportLogger } from "../../src/transport/logger.js";
import type { PeerAddress } from "../../src/transport/tls.js";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";

export const CLUSTER_ID = "test-cluster";
export const LOCALHOST = "127.0.0.1";
/** Bound of every wait in these tests: generous for a loaded 2-core machine, still fails fast. */
export const WAIT_TIMEOUT_MS = 5_000;

export function heartbeat(from: number, to: number, term = 1): Message {
  return { ...emptyMessage(), type: MessageType.HEARTBEAT, from, to, term, commit: term };
}

export function appendMessage(from: number, to: number, entryCount: number, entryBytes: number): Message {
  const entries = Array.from({ length: entryCount }, (_, i) => ({
    term: 3,
    index: 100 + i,
    type: 0 as const,
    data: new Uint8Array(entryBytes).fill(i & 0xff),
  }));
  return { ...emptyMessage(), type: MessageType.APPEND, from, to, term: 3, logTerm: 3, index: 99, commit: 98, entries };
}

export function snapshotChunk(from: number, to: number, offset: number, chunkBytes: number, done = false): Message {
  return {
    ...emptyMessage(),
    type: MessageType.SNAPSHOT,
    from,
    to,
    term: 2,
    snapshot: { meta: { index: 500, term: 2, config: clusterConfigOf([1, 2, 3]), sizeBytes: 1 << 30 }, offset, data: new Uint8Array(chunkBytes).fill(7), done },
  };
}

export interface LogLine {
  level: "info" | "warn" | "error";
  message: string;
  fields: Record<string, unknown>;
}

export function recordingLogger(): TransportLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (message, fields) => lines.push({ level: "info", message, fields }),
    warn: (message, fields) => lines.push({ level: "warn", message, fields }),
    error: (message, fields) => lines.push({ level: "error", message, fields }),
  };
}

/** Resolves once `predicate()` holds; rejects after `timeoutMs` naming `what`. Checks every 5 ms. */
export async function waitUntil(what: string, predicate: () => boolean, timeoutMs = WAIT_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Everything a test opens, closed in afterEach. */
export class Resources {
  readonly #closers: (() => Promise<void>)[] = [];

  transport(options: TcpTransportOptions): TcpTransport {
    const transport = new TcpTransport(options);
    this.#closers.push(() => transport.close());
    return transport;
  }

  server(server: net.Server): net.Server {
    const sockets = new Set<net.Socket>();
    server.on("connection", (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    this.#closers.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          if (!server.listening) return resolve();
          server.close(() => resolve());
        }),
    );
    return server;
  }

  socket<T extends net.Socket>(socket: T): T {
    this.#closers.push(async () => {
      socket.destroy();
    });
    return socket;
  }

  async closeAll(): Promise<void> {
    const closers = this.#closers.splice(0).reverse();
    await Promise.all(closers.map((close) => close()));
  }
}

/** Messages received by one transport, with a wait for a count. */
export class Inbox {
  readonly messages: Message[] = [];

  constructor(transport: TcpTransport) {
    transport.onMessage((message) => this.messages.push(message));
  }

  count(predicate: (message: Message) => boolean = () => true): number {
    return this.messages.filter(predicate).length;
  }

  waitFor(count: number, predicate: (message: Message) => boolean = () => true, what = `${count} messages`): Promise<void> {
    return waitUntil(what, () => this.count(predicate) >= count);
  }
}

export interface ClusterNode {
  id: number;
  transport: TcpTransport;
  inbox: Inbox;
  logger: ReturnType<typeof recordingLogger>;
}

/**
 * Starts transports for node ids 1..n on 127.0.0.1 port 0, then tells each the
 * others' bound ports.
 */
export async function startCluster(
  resources: Resources,
  n: number,
  extra: Partial<TcpTransportOptions> = {},
): Promise<ClusterNode[]> {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const placeholder: PeerAddress = { host: LOCALHOST, port: 1 };
  const nodes: ClusterNode[] = [];
  for (const id of ids) {
    const logger = recordingLogger();
    const transport = resources.transport({
      nodeId: id,
      clusterId: CLUSTER_ID,
      listen: { host: LOCALHOST, port: 0 },
      peers: new Map(ids.filter((other) => other !== id).map((other) => [other, placeholder])),
      logger,
      backoff: { initialDelayMs: 5, delayMsMax: 50 },
      ...extra,
    });
    await transport.start();
    nodes.push({ id, transport, inbox: new Inbox(transport), logger });
  }
  for (const node of nodes) {
    for (const other of nodes) if (other !== node) node.transport.setPeerAddress(other.id, other.transport.address());
  }
  return nodes;
}
