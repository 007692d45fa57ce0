/**
 * Shared by the CLI tests: running `raftwal` in-process and capturing what it prints, and
 * starting a cluster of in-process KV nodes (TCP on 127.0.0.1, free ports, the in-memory
 * file system) for the commands to talk to.
 */
import { Readable } from "node:stream";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import { runCli } from "../../src/cli/program.js";
import { startKvNode, type KvNode, type KvNodeOptions, type KvPeerConfig } from "../../src/kv/kv-node.js";
import { silentLogger } from "../../src/node/logger.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `raftwal <argv>` in this process; `stdin` is what it reads for `-`. */
export async function raftwal(argv: string[], stdin?: string | Buffer): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    stdout: { write: (text: string) => ((stdout += text), true) },
    stderr: { write: (text: string) => ((stderr += text), true) },
    stdin: stdin === undefined ? undefined : Readable.from([Buffer.from(stdin)]),
  });
  return { code, stdout, stderr };
}

/**
 * Nodes 1..count of a new cluster in this process, each on the in-memory file system,
 * with 10 ms ticks; resolves once every node knows a leader. `options` apply to every node.
 */
export async function startInProcessCluster(count: number, options: Partial<KvNodeOptions> & { clusterId: string }): Promise<KvNode[]> {
  const base = await findFreeBasePort(count);
  const ids = Array.from({ length: count }, (_, k) => k + 1);
  const peers: KvPeerConfig[] = ids.map((id) => ({ id, host: "127.0.0.1", port: base + id - 1, api: { host: "127.0.0.1", port: base + 99 + id } }));
  const nodes = await Promise.all(
    peers.map((peer) =>
      startKvNode({
        id: peer.id,
        initialClusterState: "new",
        peers,
        dataDir: `/data/node-${peer.id}`,
        tickMs: 10,
        logger: silentLogger,
        ...options,
        storage: { fs: new MemoryFileSystem(), ...options.storage },
      }),
    ),
  );
  await Promise.all(nodes.map((node) => node.node.waitForLeader({ timeoutMs: 10_000 })));
  return nodes;
}
