/**
 * `raftwal cluster`: a local cluster of `raftwal node` processes on 127.0.0.1 (LocalCluster)
 * and its supervisor, which prints leader changes and restarts nodes that die.
 *
 * Before any node starts, every peer and API port must be free (else one line naming the
 * port, exit 1): a node that cannot listen would exit, while whatever holds its port
 * answered in its place. Every `/status` the supervisor reads must carry the cluster's id
 * ("local", what `raftwal node` takes by default, so that a node started by hand joins it)
 * and the node's id (LocalCluster.status): a node of another cluster never passes for one
 * of this cluster's.
 *
 * What the supervisor restarts, and what not:
 *   - a node ended by a signal (kill -9 in the tour) or a crash is restarted after
 *     RESTART_DELAY_MS, long enough to watch the others elect a leader without it;
 *   - a node that fails again soon after its restart (within QUICK_FAILURE_MS: it cannot
 *     start, say its port is taken) is restarted after twice the delay each time, and
 *     given up after RESTARTS_AFTER_QUICK_FAILURE_MAX such failures in a row;
 *   - a node that refused to start (ExitCode.REFUSED: its data directory is empty but it
 *     is an existing member, which must never rejoin under its old id) is not: restarting
 *     it the same way cannot succeed. Its refusal is printed; replace it (`raftwal member`);
 *   - a node that stopped by itself with exit code 0 (removed from the cluster) is not.
 * Every exit is printed with the node's last error line.
 *
 * Ctrl-C (SIGINT, SIGTERM or SIGHUP) stops the cluster in order: the nodes run in process
 * groups of their own, so the signal reaches only the supervisor, which sends each node
 * SIGTERM and waits for it to finish its requests, save its commit index and close its WAL
 * (up to STOP_GRACE_MS, then SIGKILL). A second Ctrl-C kills the nodes at once.
 */
import { join } from "node:path";
import { Option, type Command } from "commander";
import { parseInteger, parseReadMode } from "./arguments.js";
import { CliError, ExitCode, type TextOutput } from "./io.js";
import { CLUSTER_BASE_PORT_DEFAULT, LocalCluster, type NodeExit } from "./local-cluster.js";
import type { CliContext } from "./program.js";
import { shutdownSignals } from "./signals.js";

/** How long `raftwal cluster` waits before restarting a node that died. */
export const RESTART_DELAY_MS = 5000;
/** A node that exits this soon after a restart failed "at once": the next restart waits twice as long. */
export const QUICK_FAILURE_MS = 10_000;
/** Failures at once in a row after which a node is not restarted any more. */
export const RESTARTS_AFTER_QUICK_FAILURE_MAX = 3;
/** How long a node gets to stop in order before it is killed. */
export const STOP_GRACE_MS = 15_000;
/**
 * WAL segment size of `raftwal cluster`'s nodes: a node preallocates its active segment and
 * a spare, so the demo holds 3 x 2 x 4 MiB on disk instead of 3 x 2 x 64 MiB (`raftwal
 * node`'s default). Still far above the largest KV entry (1 MiB).
 */
export const CLUSTER_WAL_SEGMENT_BYTES_DEFAULT = 4 * 1024 * 1024;
/** How often the supervisor looks for a new leader. */
const LEADER_POLL_MS = 500;

export interface SupervisorOptions {
  restartDelayMs?: number;
  quickFailureMs?: number;
  restartsAfterQuickFailureMax?: number;
}

export class ClusterSupervisor {
  private stopping = false;
  private leader = 0;
  private leaderPoll: NodeJS.Timeout | undefined;
  private readonly restarts = new Map<number, NodeJS.Timeout>();
  /** When the supervisor last (re)started each node, and how many times in a row it failed soon after. */
  private readonly started = new Map<number, number>();
  private readonly quickFailures = new Map<number, number>();
  private readonly restartDelayMs: number;
  private readonly quickFailureMs: number;
  private readonly restartsMax: number;

  constructor(
    private readonly cluster: LocalCluster,
    private readonly out: TextOutput,
    options: SupervisorOptions = {},
  ) {
    this.restartDelayMs = options.restartDelayMs ?? RESTART_DELAY_MS;
    this.quickFailureMs = options.quickFailureMs ?? QUICK_FAILURE_MS;
    this.restartsMax = options.restartsAfterQuickFailureMax ?? RESTARTS_AFTER_QUICK_FAILURE_MAX;
    cluster.onExit((id, exit) => this.exited(id, exit));
  }

  start(): void {
    for (const spec of this.cluster.specs) this.started.set(spec.id, Date.now());
    this.leaderPoll = setInterval(() => void this.pollLeader(), LEADER_POLL_MS);
  }

  /** Stops supervising: no restart happens after this (call before stopping the cluster). */
  stop(): void {
    this.stopping = true;
    clearInterval(this.leaderPoll);
    for (const timer of this.restarts.values()) clearTimeout(timer);
    this.restarts.clear();
  }

  /** The nodes waiting for their restart. */
  pendingRestarts(): number[] {
    return [...this.restarts.keys()];
  }

  private exited(id: number, exit: NodeExit): void {
    if (this.stopping) return;
    const line = exit.lastLine ? `: ${exit.lastLine}` : "";
    if (exit.code === ExitCode.REFUSED) {
      this.out.write(`node ${id} refused to start; not restarting it${line}\n`);
      return;
    }
    if (exit.code === 0) {
      this.out.write(`node ${id} stopped; not restarting it${line}\n`);
      return;
    }
    const how = exit.signal ?? `code ${exit.code}`;
    // Failing at once: exiting by itself (not killed) soon after a start.
    const quick = exit.code !== null && Date.now() - (this.started.get(id) ?? 0) < this.quickFailureMs;
    const failures = quick ? (this.quickFailures.get(id) ?? 0) + 1 : 0;
    if (failures >= this.restartsMax) {
      this.out.write(`node ${id} exited (${how}) ${failures} times in a row soon after starting; not restarting it${line}\n`);
      return;
    }
    this.quickFailures.set(id, failures);
    const delayMs = this.restartDelayMs * 2 ** failures;
    this.out.write(`node ${id} exited (${how}); restarting it in ${delayMs / 1000} s${line}\n`);
    this.restarts.set(
      id,
      setTimeout(() => {
        this.restarts.delete(id);
        // Removed from the cluster meanwhile (it left `specs`), or started by someone else.
        if (this.stopping || !this.cluster.specs.some((spec) => spec.id === id) || this.cluster.isRunning(id)) return;
        this.started.set(id, Date.now());
        this.cluster.startNode(id);
        this.out.write(`node ${id} restarted (pid ${this.cluster.pid(id)})\n`);
      }, delayMs),
    );
  }

  /** Prints the leader when it changes (the leader may be a node this cluster did not start: one that joined). */
  private async pollLeader(): Promise<void> {
    const statuses = await Promise.all(this.cluster.specs.map((spec) => this.cluster.status(spec.id)));
    const leading = statuses.find((status) => status?.role === "leader");
    const known = leading ?? statuses.find((status) => status !== undefined && status.leader !== 0);
    if (!known || this.stopping) return;
    const leader = leading ? leading.id : known.leader;
    if (leader === this.leader) return;
    this.leader = leader;
    const url = this.cluster.specs.find((spec) => spec.id === leader)?.apiUrl;
    this.out.write(`leader: node ${leader} (term ${known.term})${url ? ` at ${url}` : ""}\n`);
  }
}

const EXAMPLES = `
Examples:
  raftwal cluster                              # 3 nodes: peers on 7001-7003, APIs on 7101-7103, data in ./data
  raftwal cluster --nodes 5 --dir /tmp/five --base-port 8001
  raftwal cluster --snapshot-every 50          # snapshot often (to watch catch-up by snapshot)
`;

interface ClusterFlags {
  nodes: number;
  dir: string;
  basePort: number;
  snapshotEvery?: number;
  walSegmentBytes: number;
  readMode?: "read-index" | "lease";
  traceLatency?: boolean;
}

export function registerClusterCommand(program: Command, context: CliContext): void {
  program
    .command("cluster")
    .description("run a local cluster of node processes on 127.0.0.1 with the KV service (Ctrl-C stops it)")
    .option("--nodes <n>", "number of nodes", parseInteger(1, 9), 3)
    .option("--dir <dir>", "data directory (restarting on the same dir recovers the data)", "./data")
    .option("--base-port <port>", "first peer port; APIs listen 100 above", parseInteger(1024, 65_000), CLUSTER_BASE_PORT_DEFAULT)
    .option("--snapshot-every <n>", "snapshot and compact every N applied entries", parseInteger(1, 2 ** 31))
    .addOption(
      new Option("--wal-segment-bytes <n>", "each node's WAL segment size (preallocated)")
        .argParser(parseInteger(65_536, 2 ** 30))
        .default(CLUSTER_WAL_SEGMENT_BYTES_DEFAULT, `${CLUSTER_WAL_SEGMENT_BYTES_DEFAULT} (4 MiB)`),
    )
    .option("--read-mode <mode>", "every node's read mode: read-index (default) or lease (see raftwal node --help and the README for its risk)", parseReadMode)
    .option("--trace-latency", "every node records where a write's time goes (GET /debug/latency)")
    .addHelpText("after", EXAMPLES)
    .action((flags: ClusterFlags) => runCluster(flags, context.io.stdout));
}

async function runCluster(flags: ClusterFlags, out: TextOutput): Promise<void> {
  const signals = shutdownSignals();
  const cluster = new LocalCluster({
    nodes: flags.nodes,
    dir: flags.dir,
    basePort: flags.basePort,
    logs: "file",
    ownProcessGroups: true,
    nodeArgs: [
      ...(flags.snapshotEvery ? ["--snapshot-every", String(flags.snapshotEvery)] : []),
      "--wal-segment-bytes",
      String(flags.walSegmentBytes),
      ...(flags.readMode ? ["--read-mode", flags.readMode] : []),
      ...(flags.traceLatency ? ["--trace-latency"] : []),
    ],
  });
  try {
    await cluster.start();
  } catch (error) {
    await cluster.stop();
    throw new CliError(`cluster did not start: ${(error as Error).message} (logs in ${flags.dir})`);
  }
  for (const spec of cluster.specs) {
    out.write(`node ${spec.id}: api ${spec.apiUrl}  peer 127.0.0.1:${spec.peerPort}  pid ${cluster.pid(spec.id)}  data ${spec.dataDir}  log ${join(flags.dir, `node-${spec.id}.log`)}\n`);
  }
  const supervisor = new ClusterSupervisor(cluster, out);
  supervisor.start();
  out.write("Ctrl-C stops the cluster.\n");
  await signals.first;
  supervisor.stop();
  out.write("stopping: each node finishes its requests, saves its commit index and closes its WAL (Ctrl-C again kills them now)\n");
  cluster.onExit((id, exit) => out.write(exit.signal === "SIGKILL" ? `node ${id} killed\n` : `node ${id} stopped\n`));
  void signals.again.then(() => {
    out.write("killing the nodes now\n");
    for (const spec of cluster.specs) cluster.signal(spec.id, "SIGKILL");
  });
  await cluster.stop(STOP_GRACE_MS);
  out.write("stopped.\n");
}
