/**
 * `raftwal cluster`: a local cluster of `raftwal node` processes on 127.0.0.1 (LocalCluster)
 * and its supervisor, which prints leader changes and restarts nodes that die.
 *
 * What the supervisor restarts, and what not:
 *   - a node ended by a signal (kill -9 in the tour) or a crash is restarted after
 *     RESTART_DELAY_MS, long enough to watch the others elect a leader without it;
 *   - a node that refused to start (ExitCode.REFUSED: its data directory is empty but it
 *     is an existing member, which must never rejoin under its old id) is not: restarting
 *     it the same way cannot succeed. Its refusal is printed; replace it (`raftwal member`);
 *   - a node that stopped by itself with exit code 0 (removed from the cluster) is not.
 * Every exit is printed with the node's last error line.
 */
import type { Command } from "commander";
import { parseInteger } from "./arguments.js";
import { CliError, ExitCode, type TextOutput } from "./io.js";
import { CLUSTER_BASE_PORT_DEFAULT, LocalCluster, type NodeExit } from "./local-cluster.js";
import type { CliContext } from "./program.js";
import { untilSignal } from "./signals.js";

/** How long `raftwal cluster` waits before restarting a node that died. */
export const RESTART_DELAY_MS = 5000;
/** How often the supervisor looks for a new leader. */
const LEADER_POLL_MS = 500;

export class ClusterSupervisor {
  private stopping = false;
  private leader = 0;
  private leaderPoll: NodeJS.Timeout | undefined;
  private readonly restarts = new Map<number, NodeJS.Timeout>();

  constructor(
    private readonly cluster: LocalCluster,
    private readonly out: TextOutput,
    private readonly restartDelayMs = RESTART_DELAY_MS,
  ) {
    cluster.onExit((id, exit) => this.exited(id, exit));
  }

  start(): void {
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
    this.out.write(`node ${id} exited (${exit.signal ?? `code ${exit.code}${line}`}); restarting it in ${this.restartDelayMs / 1000} s\n`);
    this.restarts.set(
      id,
      setTimeout(() => {
        this.restarts.delete(id);
        // Removed from the cluster meanwhile (it left `specs`), or started by someone else.
        if (this.stopping || !this.cluster.specs.some((spec) => spec.id === id) || this.cluster.isRunning(id)) return;
        this.cluster.startNode(id);
        this.out.write(`node ${id} restarted (pid ${this.cluster.pid(id)})\n`);
      }, this.restartDelayMs),
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

export function registerClusterCommand(program: Command, context: CliContext): void {
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
      const supervisor = new ClusterSupervisor(cluster, out);
      supervisor.start();
      out.write("Ctrl-C stops the cluster.\n");
      await stopped;
      supervisor.stop();
      out.write("stopping...\n");
      await cluster.stop();
      out.write("stopped.\n");
    });
}
