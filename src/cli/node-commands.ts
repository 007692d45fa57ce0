/**
 * `raftwal node`: one node of the KV service. With `raftwal cluster` (cluster-command.ts: a
 * local cluster of node processes on 127.0.0.1), `raftwal kv` (kv-commands.ts, a client)
 * and `raftwal member` (member-commands.ts: the cluster's membership).
 *
 * Stopping: the first SIGINT or SIGTERM stops the node in order (the API stops accepting
 * requests and lets those in flight finish, the node saves its commit index, closes its
 * WAL and logs "stopped"); a second SIGINT (Ctrl-C again) ends the process at once.
 */
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { startKvNode, type KvNode, type KvNodeOptions } from "../kv/kv-node.js";
import { createLogger, type Logger } from "../node/logger.js";
import { formatAddress } from "../node/membership.js";
import { SNAPSHOT_EVERY_ENTRIES_DEFAULT, SNAPSHOT_EVERY_WAL_BYTES_DEFAULT } from "../node/options.js";
import { faultNodeOptions, type FaultFlags } from "../torture/node-hooks/fault-admin.js";
import { parseHostPort, parseInteger, parseLogLevel, parsePeers, parseReadMode, type HostPort, type PeerSpec } from "./arguments.js";
import { RaftwalError } from "../errors.js";
import { NodeErrorCode } from "../node/errors.js";
import { CliError, ExitCode } from "./io.js";
import { readFileOption, readToken } from "./client-options.js";
import { registerClusterCommand } from "./cluster-command.js";
import { askToJoin } from "./join-request.js";
import { registerKvCommands } from "./kv-commands.js";
import { shutdownSignals } from "./signals.js";
import type { CliContext } from "./program.js";

interface NodeFlags extends FaultFlags {
  id?: number;
  peers?: PeerSpec[];
  initialClusterState?: "new" | "existing";
  /** true: wait to be added; a URL: ask that member's API to add this node. */
  join?: boolean | string;
  dir?: string;
  clusterId: string;
  listen?: HostPort;
  api?: HostPort;
  tickMs: number;
  electionTicks: number;
  initialElectionTickAdvance: boolean;
  snapshotEvery: number;
  snapshotEveryBytes: number;
  snapshotCatchUp?: number;
  logLevel: "debug" | "info" | "warn" | "error" | "silent";
  config?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  walSegmentBytes?: number;
  readMode?: "read-index" | "lease";
  leaseClockDriftTicks?: number;
  traceLatency?: boolean;
  apiCert?: string;
  apiKey?: string;
  apiClientCa?: string;
  apiTokenFile?: string;
  apiInsecureToken?: boolean;
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

/** The API's TLS and bearer token, from --api-cert/--api-key/--api-client-ca and --api-token-file. */
type ApiSecurity = Pick<KvNodeOptions, "apiTls" | "apiToken" | "apiAllowInsecureToken">;

function apiSecurity(flags: NodeFlags): ApiSecurity {
  if ((flags.apiCert === undefined) !== (flags.apiKey === undefined)) throw new CliError("--api-cert and --api-key go together");
  if (flags.apiClientCa !== undefined && flags.apiCert === undefined) throw new CliError("--api-client-ca needs --api-cert and --api-key (client certificates are checked over TLS)");
  const apiTls = flags.apiCert
    ? {
        cert: readFileOption(flags.apiCert, "the API certificate"),
        key: readFileOption(flags.apiKey!, "the API private key"),
        ...(flags.apiClientCa ? { clientCa: readFileOption(flags.apiClientCa, "the API client CA") } : {}),
      }
    : undefined;
  // The node refuses a token over plain HTTP on an address other than loopback (http-server.ts) unless allowed.
  const apiToken = flags.apiTokenFile ? readToken(flags.apiTokenFile) : undefined;
  return { apiTls, apiToken, apiAllowInsecureToken: flags.apiInsecureToken };
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
    .option("--id <n>", "this node's id (a replacement node gets a new one: ids are never reused)", parseInteger(1, 2 ** 31))
    .option("--peers <list>", "the founding members as ID=PEER_HOST:PORT/API_HOST:PORT, comma-separated (read to bootstrap a new cluster)", parsePeers)
    .option("--initial-cluster-state <state>", "new: an empty --dir founds a new cluster of --peers; existing: --dir must hold this node's state", parseInitialClusterState, "existing")
    .option(
      "--join [url]",
      "a new member: an empty --dir waits to be added as a learner (raftwal member add); with the URL of a member's API, this node asks it to add it (needs --listen)",
      parseJoinUrl,
    )
    .option("--dir <dir>", "data directory")
    .option("--cluster-id <id>", "peers must present the same cluster id", "local")
    .option("--listen <host:port>", "peer address to listen on (default: this node's address in the configuration, or in its data directory's MEMBER file)", parseHostPort)
    .option("--api <host:port>", "HTTP API address (default: this node's API address in the configuration, or in its data directory's MEMBER file)", parseHostPort)
    .option("--tick-ms <ms>", "length of one Raft tick", parseInteger(1, 10_000), 100)
    .option("--election-ticks <n>", "election timeout base, in ticks", parseInteger(2, 1000), 10)
    .option("--no-initial-election-tick-advance", "at start without a leader, wait a whole election timeout before the first campaign (default: after 2..election-ticks + 1 ticks, as etcd)")
    .option("--snapshot-every <n>", "snapshot and compact every N applied entries", parseInteger(1, 2 ** 31), SNAPSHOT_EVERY_ENTRIES_DEFAULT)
    .option("--snapshot-every-bytes <n>", "... or once about N bytes of entries went into the WAL", parseInteger(1024, 2 ** 50), SNAPSHOT_EVERY_WAL_BYTES_DEFAULT)
    .option("--snapshot-catch-up <n>", "entries kept in the log behind each snapshot, for followers a little behind (default: 5000 or half of --snapshot-every, whichever is smaller; 0: none)", parseInteger(0, 2 ** 31))
    .option("--log-level <level>", "debug, info, warn, error or silent", parseLogLevel, "info")
    .option("--config <file>", "JSON file with id, peers, dir, clusterId, snapshotEvery (flags win)")
    .option("--tls-ca <file>", "mutual TLS for peer links: the CA certificate (PEM) peers must be signed by")
    .option("--tls-cert <file>", "mutual TLS: this node's certificate (PEM)")
    .option("--tls-key <file>", "mutual TLS: this node's private key (PEM)")
    .option("--wal-segment-bytes <n>", "size of each WAL segment file, preallocated (default 64 MiB)", parseInteger(65_536, 2 ** 30))
    .option("--read-mode <mode>", "how the leader confirms a linearizable read: read-index (default: a heartbeat round) or lease (none while its lease lasts; assumes bounded clock drift, see the README)", parseReadMode)
    .option("--lease-clock-drift-ticks <n>", "lease reads: ticks clocks may drift apart within an election timeout (default 2)", parseInteger(0, 1000))
    .option("--trace-latency", "record where each write's time goes on this node, served at GET /debug/latency (for benchmarks; off by default)")
    .option("--api-cert <file>", "serve the API over HTTPS with this certificate (PEM)")
    .option("--api-key <file>", "... and this private key (PEM)")
    .option("--api-client-ca <file>", "HTTPS: clients must present a certificate signed by this CA (PEM)")
    .option("--api-token-file <file>", "every API request must carry this bearer token (the file's first line)")
    .option("--api-insecure-token", "allow --api-token-file over plain HTTP on an address other than loopback (the token travels in clear text)")
    .option("--fault-injection", "torture testing only: obey /admin/faults (partitions) and serve /admin/hash")
    .option("--fault-power-loss", "torture testing only: keep unsynced writes in memory, so kill -9 loses them like a power cut")
    .option("--fault-wal-segment-bytes <n>", "torture testing only: WAL segment size", parseInteger(65_536, 2 ** 30))
    .option("--fault-wal-cache-entries <n>", "torture testing only: entries the WAL caches (small: older entries are read back from the segments)", parseInteger(0, 2 ** 30))
    .addHelpText("after", NODE_EXAMPLES)
    .action((flags: NodeFlags) => runNode(flags, context));
}

const NODE_EXAMPLES = `
Examples:
  # found a 3-node cluster (run on each machine with its own --id and --dir):
  raftwal node --id 1 --dir /var/lib/raftwal --initial-cluster-state new \\
    --peers 1=10.0.0.1:7001/10.0.0.1:7101,2=10.0.0.2:7001/10.0.0.2:7101,3=10.0.0.3:7001/10.0.0.3:7101
  # later starts: the data directory knows the cluster
  raftwal node --id 1 --dir /var/lib/raftwal
  # a new member asking a member's API to add it as a learner
  raftwal node --id 4 --dir /var/lib/raftwal --listen 10.0.0.4:7001 --api 10.0.0.4:7101 --join http://10.0.0.1:7101
  # the API over HTTPS with client certificates and a bearer token
  raftwal node --id 1 --dir d --api-cert api.crt --api-key api.key --api-client-ca clients-ca.crt --api-token-file token
`;

/** The flags and the config file merged (flags win), checked against each other. */
function nodeSettings(flags: NodeFlags): NodeFlags & { id: number; dir: string } {
  const merged = { ...(flags.config ? readConfig(flags.config) : {}), ...stripUndefined(flags) } as NodeFlags;
  if (merged.id === undefined || !merged.dir) throw new CliError("node needs --id and --dir (or a --config with them)");
  if (merged.join && merged.initialClusterState === "new") throw new CliError("--join and --initial-cluster-state new exclude each other");
  if (merged.initialClusterState === "new" && !merged.peers?.some((peer) => peer.id === merged.id)) {
    throw new CliError(`--initial-cluster-state new needs --peers listing every founding member, node ${merged.id} included`);
  }
  if (merged.join && !merged.listen) throw new CliError("--join needs --listen (the peer address this node is added with)");
  if (merged.leaseClockDriftTicks !== undefined && merged.readMode !== "lease") throw new CliError("--lease-clock-drift-ticks needs --read-mode lease");
  return merged as NodeFlags & { id: number; dir: string };
}

async function runNode(flags: NodeFlags, context: CliContext): Promise<void> {
  const settings = nodeSettings(flags);
  const logger = createLogger({ level: settings.logLevel });
  const security = apiSecurity(settings);
  const signals = shutdownSignals();
  const node = await startNode(settings, logger, security);
  context.io.onNodeServing();
  logger.info("serving", { api: `${node.apiScheme}://${node.apiAddress.host}:${node.apiAddress.port}`, peer: `${node.node.address().host}:${node.node.address().port}` });
  const fatal = new Promise<Error>((resolve) => node.node.onFatal(resolve));
  const outcome = await Promise.race([signals.first, fatal, joinFailure(node, settings, logger, security)]);
  if (typeof outcome === "string") {
    logger.info("stopping", { signal: outcome, next: "finishing the requests in flight; a SIGINT (Ctrl-C) now stops at once" });
    void signals.again.then(() => {
      context.io.stderr.write(`raftwal: node ${settings.id} stopped at once (a second SIGINT): its commit index may not be saved; the log holds every acknowledged entry\n`);
      process.exit(ExitCode.ERROR);
    });
    await node.close();
    return;
  }
  await node.close().catch(() => undefined);
  if (outcome instanceof RaftwalError && outcome.code === NodeErrorCode.REMOVED) {
    context.io.stderr.write(`node ${settings.id} was removed from the cluster and stopped; its data directory ${settings.dir} can be deleted\n`);
    return;
  }
  if (outcome instanceof JoinFailure) throw new CliError(outcome.message);
  throw new CliError(`node ${settings.id} stopped: ${outcome.message}`, ExitCode.ERROR);
}

/** Starts the node; a data directory that does not fit the start mode is a refusal (ExitCode.REFUSED: retrying cannot help). */
async function startNode(settings: NodeFlags & { id: number; dir: string }, logger: Logger, security: ApiSecurity): Promise<KvNode> {
  try {
    return await startKvNode({
      id: settings.id,
      clusterId: settings.clusterId,
      initialClusterState: settings.join ? "join" : settings.initialClusterState,
      peers: settings.peers,
      dataDir: settings.dir,
      listen: settings.listen,
      apiListen: settings.api,
      tickMs: settings.tickMs,
      electionTimeoutTicks: settings.electionTicks,
      initialElectionTickAdvance: settings.initialElectionTickAdvance !== false,
      snapshotEveryEntries: settings.snapshotEvery,
      snapshotEveryWalBytes: settings.snapshotEveryBytes,
      ...(settings.snapshotCatchUp !== undefined ? { snapshotCatchUpEntries: settings.snapshotCatchUp } : {}),
      raft: readSettings(settings),
      latencyTrace: settings.traceLatency === true,
      tls: readTls(settings),
      logger,
      ...security,
      ...(settings.walSegmentBytes !== undefined ? { storage: { wal: { segmentSizeBytes: settings.walSegmentBytes } } } : {}),
      ...faultNodeOptions(settings, logger),
    });
  } catch (error) {
    const code = (error as RaftwalError).code;
    if (code === NodeErrorCode.EMPTY_DATA_DIR || code === NodeErrorCode.BAD_BOOTSTRAP) throw new CliError(`${(error as Error).message} [${code}]`, ExitCode.REFUSED);
    throw error;
  }
}

/** Asking to join failed: the node stops (a restart with --join asks again, or finds itself added). */
class JoinFailure extends Error {}

/**
 * `--join URL` on a node that is in no configuration yet: asks that member to add it.
 * Resolves only if that fails (with a JoinFailure); never otherwise.
 */
function joinFailure(node: KvNode, settings: NodeFlags & { id: number }, logger: Logger, security: ApiSecurity): Promise<JoinFailure> {
  const url = settings.join;
  if (typeof url !== "string" || node.node.status().membership !== "joining") return new Promise(() => undefined);
  // The bound ports (port 0 picks one), on the hosts given.
  const peerAddress = formatAddress({ host: settings.listen!.host, port: node.node.address().port });
  const apiAddress = formatAddress({ host: settings.api?.host ?? node.apiAddress.host, port: node.apiAddress.port });
  // A member's API that needs TLS or a token is asked with this node's own: its token, its certificate, the CA it trusts.
  const tls = security.apiTls && { ca: security.apiTls.clientCa, cert: security.apiTls.cert, key: security.apiTls.key };
  return askToJoin({ url, id: settings.id, peerAddress, apiAddress, logger, client: { tls, token: security.apiToken } }).then(
    () => new Promise<JoinFailure>(() => undefined),
    (error: unknown) => {
      const code = error instanceof RaftwalError ? ` [${error.code}]` : "";
      return new JoinFailure(`node ${settings.id} could not join through ${url}: ${(error as Error).message}${code}`);
    },
  );
}

function parseJoinUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) throw new InvalidArgumentError(`'${value}' is not the URL of a member's API (http://HOST:PORT)`);
  return value;
}

/** --read-mode and --lease-clock-drift-ticks, as the core's options. */
function readSettings(settings: NodeFlags): { readMode?: "read-index" | "lease"; leaseClockDriftTicks?: number } {
  return {
    ...(settings.readMode ? { readMode: settings.readMode } : {}),
    ...(settings.leaseClockDriftTicks !== undefined ? { leaseClockDriftTicks: settings.leaseClockDriftTicks } : {}),
  };
}

function parseInitialClusterState(value: string): "new" | "existing" {
  if (value !== "new" && value !== "existing") throw new InvalidArgumentError(`'${value}' is not new or existing`);
  return value;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function registerNodeCommands(program: Command, context: CliContext): void {
  registerNode(program, context);
  registerClusterCommand(program, context);
  registerKvCommands(program, context);
}
