/**
 * `raftwal node` (one node of the KV service), `raftwal cluster` (a local cluster of node
 * processes on 127.0.0.1) and `raftwal kv` (a client of the KV service).
 */
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { startKvNode } from "../kv/kv-node.js";
import { KvClient } from "../kv/client.js";
import { createLogger } from "../node/logger.js";
import { SNAPSHOT_EVERY_ENTRIES_DEFAULT, SNAPSHOT_EVERY_WAL_BYTES_DEFAULT } from "../node/options.js";
import { faultNodeOptions, type FaultFlags } from "../torture/node-hooks/fault-admin.js";
import { parseHostPort, parseInteger, parseLogLevel, parsePeers, type HostPort, type PeerSpec } from "./arguments.js";
import { RaftwalError } from "../errors.js";
import { NodeErrorCode } from "../node/errors.js";
import { CliError, ExitCode } from "./io.js";
import { LocalCluster } from "./local-cluster.js";
import type { CliContext } from "./program.js";

/** How long `raftwal cluster` waits before restarting a node that died. */
const RESTART_DELAY_MS = 5000;

/** The local cluster's defaults: peers on 7001.., APIs on 7101.. */
export const CLUSTER_BASE_PORT_DEFAULT = 7001;

interface NodeFlags extends FaultFlags {
  id?: number;
  peers?: PeerSpec[];
  initialClusterState?: "new" | "existing";
  join?: boolean;
  dir?: string;
  clusterId: string;
  listen?: HostPort;
  api?: HostPort;
  tickMs: number;
  electionTicks: number;
  snapshotEvery: number;
  snapshotEveryBytes: number;
  logLevel: "debug" | "info" | "warn" | "error" | "silent";
  config?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** Mutual TLS for peer links: all three files or none. */
function readTls(flags: NodeFlags): { ca: Buffer; cert: Buffer; key: Buffer } | undefined {
  const files = [flags.tlsCa, flags.tlsCert, flags.tlsKey];
  if (files.every((f) => f === undefined)) return undefined;
  if (files.some((f) => f === undefined)) throw new CliError("--tls-ca, --tls-cert and --tls-key go together");
  const read = (path: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  };
  return { ca: read(flags.tlsCa!), cert: read(flags.tlsCert!), key: read(flags.tlsKey!) };
}

/** Resolves on SIGINT or SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals) => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
      resolve(signal);
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
  });
}

/** A JSON config file gives the same settings as the flags (flags win). */
function readConfig(path: string): Partial<NodeFlags> & { peers?: PeerSpec[] } {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (error) {
    throw new CliError(`cannot read config ${path}: ${(error as Error).message}`);
  }
  const config: Partial<NodeFlags> = {};
  if (typeof parsed.id === "number") config.id = parsed.id;
  if (typeof parsed.dir === "string") config.dir = parsed.dir;
  if (typeof parsed.clusterId === "string") config.clusterId = parsed.clusterId;
  if (typeof parsed.peers === "string") config.peers = parsePeers(parsed.peers);
  if (typeof parsed.snapshotEvery === "number") config.snapshotEvery = parsed.snapshotEvery;
  return config;
}

function registerNode(program: Command, context: CliContext): void {
  program
    .command("node")
    .description("run one node of the replicated KV service")
    .option("--id <n>", "this node's id", parseInteger(1, 2 ** 31))
    .option("--peers <list>", "the founding members as ID=PEER_HOST:PORT/API_HOST:PORT, comma-separated (read to bootstrap a new cluster)", parsePeers)
    .option("--initial-cluster-state <state>", "new: an empty --dir founds a new cluster of --peers; existing: --dir must hold this node's state", parseInitialClusterState, "existing")
    .option("--join", "a new member: an empty --dir waits for a leader to add this node (raftwal member add); needs --listen")
    .option("--dir <dir>", "data directory")
    .option("--cluster-id <id>", "peers must present the same cluster id", "local")
    .option("--listen <host:port>", "peer address to listen on (default: this node's entry in --peers)", parseHostPort)
    .option("--api <host:port>", "HTTP API address (default: this node's entry in --peers)", parseHostPort)
    .option("--tick-ms <ms>", "length of one Raft tick", parseInteger(1, 10_000), 100)
    .option("--election-ticks <n>", "election timeout base, in ticks", parseInteger(2, 1000), 10)
    .option("--snapshot-every <n>", "snapshot and compact every N applied entries", parseInteger(1, 2 ** 31), SNAPSHOT_EVERY_ENTRIES_DEFAULT)
    .option("--snapshot-every-bytes <n>", "... or once about N bytes of entries went into the WAL", parseInteger(1024, 2 ** 50), SNAPSHOT_EVERY_WAL_BYTES_DEFAULT)
    .option("--log-level <level>", "debug, info, warn, error or silent", parseLogLevel, "info")
    .option("--config <file>", "JSON file with id, peers, dir, clusterId, snapshotEvery (flags win)")
    .option("--tls-ca <file>", "mutual TLS for peer links: the CA certificate (PEM) peers must be signed by")
    .option("--tls-cert <file>", "mutual TLS: this node's certificate (PEM)")
    .option("--tls-key <file>", "mutual TLS: this node's private key (PEM)")
    .option("--fault-injection", "torture testing only: obey /admin/faults (partitions) and serve /admin/hash")
    .option("--fault-power-loss", "torture testing only: keep unsynced writes in memory, so kill -9 loses them like a power cut")
    .option("--fault-wal-segment-bytes <n>", "torture testing only: WAL segment size", parseInteger(65_536, 2 ** 30))
    .action(async (flags: NodeFlags) => {
      const merged = { ...(flags.config ? readConfig(flags.config) : {}), ...stripUndefined(flags) } as NodeFlags;
      if (merged.id === undefined || !merged.dir) throw new CliError("node needs --id and --dir (or a --config with them)");
      if (merged.join && merged.initialClusterState === "new") throw new CliError("--join and --initial-cluster-state new exclude each other");
      if (merged.initialClusterState === "new" && !merged.peers?.some((peer) => peer.id === merged.id)) {
        throw new CliError(`--initial-cluster-state new needs --peers listing every founding member, node ${merged.id} included`);
      }
      if (merged.join && !merged.listen) throw new CliError("--join needs --listen (the peer address this node is added with)");
      const logger = createLogger({ level: merged.logLevel });
      const node = await startKvNode({
        id: merged.id,
        clusterId: merged.clusterId,
        initialClusterState: merged.join ? "join" : merged.initialClusterState,
        peers: merged.peers,
        dataDir: merged.dir,
        listen: merged.listen,
        apiListen: merged.api,
        tickMs: merged.tickMs,
        electionTimeoutTicks: merged.electionTicks,
        snapshotEveryEntries: merged.snapshotEvery,
        snapshotEveryWalBytes: merged.snapshotEveryBytes,
        tls: readTls(merged),
        logger,
        ...faultNodeOptions(merged, logger),
      });
      logger.info("serving", { api: `http://${node.apiAddress.host}:${node.apiAddress.port}`, peer: `${node.node.address().host}:${node.node.address().port}` });
      const fatal = new Promise<Error>((resolve) => node.node.onFatal(resolve));
      const outcome = await Promise.race([untilSignal(), fatal]);
      if (outcome instanceof RaftwalError && outcome.code === NodeErrorCode.REMOVED) {
        await node.close().catch(() => undefined);
        context.io.stderr.write(`node ${merged.id} was removed from the cluster and stopped; its data directory ${merged.dir} can be deleted\n`);
        return;
      }
      if (outcome instanceof Error) {
        await node.close().catch(() => undefined);
        throw new CliError(`node ${merged.id} stopped: ${outcome.message}`, ExitCode.ERROR);
      }
      await node.close();
    });
}

function parseInitialClusterState(value: string): "new" | "existing" {
  if (value !== "new" && value !== "existing") throw new InvalidArgumentError(`'${value}' is not new or existing`);
  return value;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function registerCluster(program: Command, context: CliContext): void {
  program
    .command("cluster")
    .description("run a local cluster of node processes on 127.0.0.1 with the KV service (Ctrl-C stops it)")
    .option("--nodes <n>", "number of nodes", parseInteger(1, 9), 3)
    .option("--dir <dir>", "data directory (restarting on the same dir recovers the data)", "./data")
    .option("--base-port <port>", `first peer port; APIs listen 100 above (default ${CLUSTER_BASE_PORT_DEFAULT})`, parseInteger(1024, 65_000), CLUSTER_BASE_PORT_DEFAULT)
    .option("--snapshot-every <n>", "snapshot and compact every N applied entries", parseInteger(1, 2 ** 31))
    .action(async (flags: { nodes: number; dir: string; basePort: number; snapshotEvery?: number }) => {
      const out = context.io.stdout;
      const cluster = new LocalCluster({
        nodes: flags.nodes,
        dir: flags.dir,
        basePort: flags.basePort,
        logs: "file",
        nodeArgs: flags.snapshotEvery ? ["--snapshot-every", String(flags.snapshotEvery)] : [],
      });
      const stopped = untilSignal();
      try {
        await cluster.start();
      } catch (error) {
        await cluster.stop();
        throw new CliError(`cluster did not start: ${(error as Error).message} (logs in ${flags.dir})`);
      }
      for (const spec of cluster.specs) {
        out.write(`node ${spec.id}: api ${spec.apiUrl}  peer 127.0.0.1:${spec.peerPort}  pid ${cluster.pid(spec.id)}  data ${spec.dataDir}  log ${flags.dir}/node-${spec.id}.log\n`);
      }
      let leader = 0;
      let stopping = false;
      const restarting = new Set<number>();
      const watch = setInterval(() => {
        void (async () => {
          const statuses = await Promise.all(cluster.specs.map((s) => cluster.status(s.id)));
          const current = statuses.find((s) => s?.role === "leader");
          if (current && current.id !== leader) {
            leader = current.id;
            out.write(`leader: node ${leader} (term ${current.term}) at ${cluster.spec(leader).apiUrl}\n`);
          }
          // Supervise: a node that died (kill -9 in the tour) is restarted after a pause, long
          // enough to watch the others elect a new leader without it.
          for (const spec of cluster.specs) {
            if (cluster.isRunning(spec.id) || restarting.has(spec.id)) continue;
            restarting.add(spec.id);
            out.write(`node ${spec.id} exited; restarting it in ${RESTART_DELAY_MS / 1000} s\n`);
            setTimeout(() => {
              restarting.delete(spec.id);
              if (stopping) return;
              cluster.startNode(spec.id);
              out.write(`node ${spec.id} restarted (pid ${cluster.pid(spec.id)})\n`);
            }, RESTART_DELAY_MS);
          }
        })();
      }, 500);
      out.write("Ctrl-C stops the cluster.\n");
      await stopped;
      stopping = true;
      clearInterval(watch);
      out.write("stopping...\n");
      await cluster.stop();
      out.write("stopped.\n");
    });
}

function registerKv(program: Command, context: CliContext): void {
  const kv = program
    .command("kv")
    .description("a client of the KV service (follows redirects to the leader)")
    .option(
      "--endpoints <urls>",
      "comma-separated API URLs",
      `http://127.0.0.1:${CLUSTER_BASE_PORT_DEFAULT + 100},http://127.0.0.1:${CLUSTER_BASE_PORT_DEFAULT + 101},http://127.0.0.1:${CLUSTER_BASE_PORT_DEFAULT + 102}`,
    );
  const client = () => new KvClient({ endpoints: (kv.opts().endpoints as string).split(",") });
  const run = async (action: (c: KvClient) => Promise<void>) => {
    const c = client();
    try {
      await action(c);
    } catch (error) {
      throw new CliError((error as Error).message);
    } finally {
      c.close();
    }
  };
  kv.command("put <key> <value>").action((key: string, value: string) =>
    run(async (c) => {
      await c.put(key, value);
      context.io.stdout.write("OK\n");
    }),
  );
  kv.command("get <key>")
    .option("--stale", "read this node's state without a leadership check")
    .action((key: string, options: { stale?: boolean }) =>
      run(async (c) => {
        const value = await c.get(key, { stale: options.stale });
        if (value === undefined) {
          context.io.stderr.write(`raftwal: no key ${JSON.stringify(key)}\n`);
          context.exitCode = ExitCode.ERROR;
          return;
        }
        context.io.stdout.write(`${value.toString()}\n`);
      }),
    );
  kv.command("del <key>").action((key: string) =>
    run(async (c) => {
      const existed = await c.delete(key);
      context.io.stdout.write(existed ? "OK\n" : "(absent)\n");
    }),
  );
  kv.command("cas <key> <expect> <value>")
    .option("--absent", "succeed only if the key is absent (<expect> is ignored)")
    .action((key: string, expect: string, value: string, options: { absent?: boolean }) =>
      run(async (c) => {
        const result = await c.cas(key, options.absent ? null : expect, value);
        if (result.ok) context.io.stdout.write("OK\n");
        else {
          context.io.stdout.write(`MISMATCH (current: ${result.current === undefined ? "absent" : JSON.stringify(result.current)})\n`);
          context.exitCode = ExitCode.ERROR;
        }
      }),
    );
}

export function registerNodeCommands(program: Command, context: CliContext): void {
  registerNode(program, context);
  registerCluster(program, context);
  registerKv(program, context);
}
