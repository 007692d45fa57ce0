/**
 * KV nodes in this process on 127.0.0.1 (free ports), real TCP: `startThree` founds a fresh
 * 3-node cluster (storage on the real disk in a temp directory unless `fs` gives each node
 * an in-memory one). Whatever is started here or handed to `closeAfterTest`, and every
 * `tempDirAfterTest`, is closed and removed by `closeKvNodes()` (the tests' afterEach).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import { startKvNode, type KvNode, type KvNodeOptions, type KvPeerConfig } from "../../src/kv/kv-node.js";
import { silentLogger } from "../../src/node/logger.js";
import type { TcpTransport, TcpTransportOptions } from "../../src/transport/transport.js";
import type { FileSystem } from "../../storage/fs/file-system.js";

export interface ThreeOptions {
  clusterId?: string;
  /** Each node's file system (its data under /data/node-<id>); the real disk when absent. */
  fs?: (id: number) => FileSystem;
  /** Node i's election randomness is seeded with seed * 10 + i (default seed 1). */
  seed?: number;
  transport?: (options: TcpTransportOptions) => TcpTransport;
  snapshotEveryEntries?: number;
  snapshotCatchUpEntries?: number;
  latencyTrace?: boolean;
  /** Core settings for every node (RaftNodeOptions.raft). */
  raft?: KvNodeOptions["raft"];
}

const running: KvNode[] = [];
const dirs: string[] = [];

/** A temp directory removed after the test. */
export async function tempDirAfterTest(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "raftwal-node-"));
  dirs.push(dir);
  return dir;
}

/** `node`, closed after the test. */
export function closeAfterTest(node: KvNode): KvNode {
  running.push(node);
  return node;
}

export async function startThree(options: ThreeOptions = {}): Promise<KvNode[]> {
  const dir = await tempDirAfterTest();
  const base = await findFreeBasePort(3);
  const peers: KvPeerConfig[] = [1, 2, 3].map((id) => ({ id, host: "127.0.0.1", port: base + id - 1, api: { host: "127.0.0.1", port: base + 99 + id } }));
  const nodes = await Promise.all(
    peers.map((peer) =>
      startKvNode({
        id: peer.id,
        clusterId: options.clusterId ?? "test",
        initialClusterState: "new",
        peers,
        dataDir: options.fs ? `/data/node-${peer.id}` : join(dir, `node-${peer.id}`),
        storage: options.fs ? { fs: options.fs(peer.id), wal: { segmentSizeBytes: 1024 * 1024 } } : undefined,
        tickMs: 10,
        seed: (options.seed ?? 1) * 10 + peer.id,
        snapshotEveryEntries: options.snapshotEveryEntries,
        snapshotCatchUpEntries: options.snapshotCatchUpEntries,
        logger: silentLogger,
        transport: options.transport,
        latencyTrace: options.latencyTrace,
        raft: options.raft,
      }),
    ),
  );
  running.push(...nodes);
  return nodes;
}

export async function closeKvNodes(): Promise<void> {
  for (const node of running.splice(0)) await node.close().catch(() => undefined);
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
}
