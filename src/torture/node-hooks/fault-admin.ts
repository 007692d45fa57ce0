/**
 * The torture tool's hooks inside a KV node, all off unless `raftwal node` is started with
 * `--fault-injection` (and `--fault-power-loss` for the storage part). Without them the
 * node never constructs any of this and `/admin/...` answers 404. They reach the node only
 * through its ordinary seams: `transport` (FaultInjectingTransport), `storage.fs`
 * (PowerLossFileSystem) and the KV API's `extraRoutes`.
 *
 * | request                   | effect                                                          |
 * |---------------------------|-----------------------------------------------------------------|
 * | `POST /admin/faults` JSON `{"blockPeers": [2, 3]}` | drop every message to and from those peers (`[]` heals) |
 * | `GET /admin/faults`       | the blocked peers and the messages dropped so far               |
 * | `GET /admin/hash`         | `{id, appliedIndex, kvAppliedIndex, hash, term, role}`: the state hash, read in one turn of the event loop with the applied index |
 * | `POST /admin/tear?seed=N` | power-loss mode only: write a seeded random prefix of the unsynced bytes, then SIGKILL this process |
 * | `POST /admin/transfer?to=N` | the leader hands leadership to node N (Raft thesis 3.10); 409 on a node that does not lead |
 *
 * SIGUSR2 does what `/admin/tear` does (seed from the clock).
 */
import { writeSync } from "node:fs";
import type http from "node:http";
import type { ExtraRoutes } from "../../kv/http-api.js";
import type { KvNodeOptions } from "../../kv/kv-node.js";
import type { KvResult, KvStateMachine } from "../../kv/state-machine.js";
import type { Logger } from "../../node/logger.js";
import type { RaftNode } from "../../node/raft-node.js";
import { seededRandom } from "../../rng.js";
import { TcpTransport } from "../../transport/transport.js";
import { FaultInjectingTransport } from "./fault-injecting-transport.js";
import { PowerLossFileSystem, type TearReport } from "./power-loss-file-system.js";

export interface FaultFlags {
  faultInjection?: boolean;
  faultPowerLoss?: boolean;
  faultWalSegmentBytes?: number;
  /** Entries the WAL keeps in its cache of recent entries: small, so a leader reads older entries back from its segments. */
  faultWalCacheEntries?: number;
}

/** Largest /admin request body accepted. */
const ADMIN_BODY_BYTES_MAX = 4096;

/**
 * The node options that turn the hooks on, for `raftwal node` to spread into its
 * startKvNode options; `{}` when no fault flag is given.
 */
export function faultNodeOptions(flags: FaultFlags, logger: Logger): Partial<KvNodeOptions> {
  const walOptions = {
    ...(flags.faultWalSegmentBytes !== undefined ? { segmentSizeBytes: flags.faultWalSegmentBytes } : {}),
    ...(flags.faultWalCacheEntries !== undefined ? { cacheEntriesMax: flags.faultWalCacheEntries } : {}),
  };
  if (!flags.faultInjection && !flags.faultPowerLoss && Object.keys(walOptions).length === 0) return {};
  if (!flags.faultInjection) throw new Error("--fault-power-loss, --fault-wal-segment-bytes and --fault-wal-cache-entries need --fault-injection");
  // The node builds its transport (RaftNodeOptions.transport) before startKvNode asks for
  // the routes, so the routes always find it.
  let transport: FaultInjectingTransport | undefined;
  const faultyTransport = () => {
    if (!transport) throw new Error("the node has not built its transport yet");
    return transport;
  };
  const fs = flags.faultPowerLoss ? new PowerLossFileSystem() : undefined;
  if (fs) process.on("SIGUSR2", () => armTear(fs, Date.now() >>> 0));
  logger.warn("fault injection is ON: this node obeys /admin/faults (torture testing only)", { powerLoss: fs !== undefined });
  return {
    transport: (options) => (transport = new FaultInjectingTransport(new TcpTransport(options))),
    storage: {
      ...(fs ? { fs } : {}),
      ...(Object.keys(walOptions).length > 0 ? { wal: walOptions } : {}),
    },
    extraRoutes: ({ node, kv }) => ({ pathPrefix: "/admin/", handle: adminRoutes({ node, kv, transport: faultyTransport(), fs }) }),
  };
}

/** Bound on waiting for a write to tear: an idle node is torn (with nothing unsynced) after it. */
const TEAR_WAIT_MS = 2_000;

/**
 * At the next fsync (a write in flight), writes a random prefix of the unsynced changes
 * without syncing, then dies like kill -9; after TEAR_WAIT_MS without any fsync, tears now.
 */
function armTear(fs: PowerLossFileSystem, seed: number): void {
  const die = (report: TearReport, when: string) => {
    // Synchronous: the process is about to vanish, an asynchronous logger would lose the line.
    writeSync(2, `${JSON.stringify({ level: 50, msg: "torn write-back, then SIGKILL (fault injection)", when, seed, files: report })}\n`);
    process.kill(process.pid, "SIGKILL");
  };
  const random = seededRandom(seed);
  fs.armTear(random, (report) => die(report, "at an fsync"));
  setTimeout(() => die(fs.tear(random), "idle"), TEAR_WAIT_MS).unref();
}

function adminRoutes(parts: { node: RaftNode<KvResult>; kv: KvStateMachine; transport: FaultInjectingTransport; fs?: PowerLossFileSystem }): ExtraRoutes["handle"] {
  const { node, kv, transport, fs } = parts;
  const faults = () => ({ blockPeers: transport.blockedPeers(), droppedOutbound: transport.droppedOutbound, droppedInbound: transport.droppedInbound, unsyncedBytes: fs?.unsyncedBytes() ?? null });
  return async (request, response, url) => {
    const route = `${request.method} ${url.pathname}`;
    if (route === "GET /admin/faults") return reply(response, 200, faults());
    if (route === "POST /admin/faults") {
      let body: { blockPeers?: unknown };
      try {
        body = JSON.parse((await readSmallBody(request)).toString()) as { blockPeers?: unknown };
      } catch (error) {
        return reply(response, 400, { error: "BAD_REQUEST", message: `the body must be JSON {"blockPeers": [ids]}: ${(error as Error).message}` });
      }
      if (!Array.isArray(body.blockPeers)) return reply(response, 400, { error: "BAD_REQUEST", message: "blockPeers must be an array of node ids" });
      try {
        transport.setBlockedPeers(body.blockPeers as number[]);
      } catch (error) {
        return reply(response, 400, { error: "BAD_REQUEST", message: (error as Error).message });
      }
      return reply(response, 200, faults());
    }
    if (route === "GET /admin/hash") {
      const status = node.status();
      return reply(response, 200, { id: status.id, appliedIndex: status.appliedIndex, kvAppliedIndex: kv.appliedIndex(), hash: kv.hash(), term: status.term, role: status.role });
    }
    if (route === "POST /admin/tear") {
      if (!fs) return reply(response, 409, { error: "NOT_POWER_LOSS", message: "start the node with --fault-power-loss to tear writes" });
      const seed = Number(url.searchParams.get("seed") ?? Date.now()) >>> 0;
      reply(response, 202, { tearing: true, seed });
      armTear(fs, seed);
      return;
    }
    if (route === "POST /admin/transfer") return transfer(node, url, response);
    return reply(response, 404, { error: "NOT_FOUND", message: `no route ${route}` });
  };
}

/** `POST /admin/transfer?to=N`: asks this node, the leader, to hand leadership to N; the caller watches /status for the outcome. */
function transfer(node: RaftNode<KvResult>, url: URL, response: http.ServerResponse): void {
  const to = Number(url.searchParams.get("to"));
  if (!Number.isSafeInteger(to) || to < 1) return reply(response, 400, { error: "BAD_REQUEST", message: "to must be a node id" });
  if (node.leadership().role !== "leader") return reply(response, 409, { error: "NOT_LEADER", message: "only the leader transfers leadership" });
  try {
    node.transferLeadership(to);
  } catch (error) {
    return reply(response, 409, { error: (error as { code?: string }).code ?? "REFUSED", message: (error as Error).message });
  }
  reply(response, 202, { transferring: to });
}

function reply(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

async function readSmallBody(request: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > ADMIN_BODY_BYTES_MAX) throw new Error(`body larger than ${ADMIN_BODY_BYTES_MAX} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
