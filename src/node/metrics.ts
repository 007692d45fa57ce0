/**
 * The node's metrics in the Prometheus text format, on prom-client. Each node has its
 * own registry, so several nodes in one process (tests) do not collide.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export class NodeMetrics {
  readonly registry = new Registry();
  readonly proposals = new Counter({ name: "raftwal_proposals_total", help: "Proposals accepted by this node as leader", registers: [this.registry] });
  readonly proposalsFailed = new Counter({
    name: "raftwal_proposals_failed_total",
    help: "Proposals that failed (not leader, lost, timed out)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly committed = new Counter({ name: "raftwal_committed_entries_total", help: "Entries seen committed (handed out to apply)", registers: [this.registry] });
  readonly applied = new Counter({ name: "raftwal_applied_entries_total", help: "Entries applied to the state machine", registers: [this.registry] });
  readonly persistSeconds = new Histogram({
    name: "raftwal_persist_seconds",
    help: "Time to make one Ready durable (WAL append with fdatasync, hard state, snapshot chunks)",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly elections = new Counter({ name: "raftwal_elections_total", help: "Elections this node started as candidate", registers: [this.registry] });
  readonly leaderChanges = new Counter({ name: "raftwal_leader_changes_total", help: "Changes of the known leader", registers: [this.registry] });
  readonly snapshots = new Counter({ name: "raftwal_snapshots_total", help: "Snapshots taken by this node's state machine", registers: [this.registry] });
  readonly snapshotsInstalled = new Counter({
    name: "raftwal_snapshots_installed_total",
    help: "Snapshots installed from the leader (a catch-up the log behind the leader's snapshot could not serve)",
    registers: [this.registry],
  });
  readonly snapshotsHeldBack = new Counter({
    name: "raftwal_snapshots_held_back_total",
    help: "Times a due snapshot waited because this leader was sending its snapshot to a follower",
    registers: [this.registry],
  });
  readonly repairsStarted = new Counter({ name: "raftwal_storage_repairs_started_total", help: "Starts with damaged storage repaired from peers, by what was lost", labelNames: ["part"], registers: [this.registry] });
  readonly repairsCompleted = new Counter({ name: "raftwal_storage_repairs_completed_total", help: "Repairs of damaged storage completed", registers: [this.registry] });
  readonly repairSeconds = new Gauge({ name: "raftwal_storage_repair_seconds", help: "Duration of the last completed repair", registers: [this.registry] });
  readonly repairing = new Gauge({ name: "raftwal_storage_repairing", help: "1 while this node repairs damaged storage from its peers", registers: [this.registry] });
  readonly configChanges = new Counter({ name: "raftwal_config_changes_total", help: "Cluster configurations applied (committed membership changes)", registers: [this.registry] });
  readonly term = new Gauge({ name: "raftwal_term", help: "Current term", registers: [this.registry] });
  readonly commitIndex = new Gauge({ name: "raftwal_commit_index", help: "Commit index", registers: [this.registry] });
  readonly appliedIndex = new Gauge({ name: "raftwal_applied_index", help: "Applied index", registers: [this.registry] });
  readonly isLeader = new Gauge({ name: "raftwal_is_leader", help: "1 when this node is the leader", registers: [this.registry] });

  /** Adds transport byte counters, read at scrape time. */
  attachTransport(stats: () => { bytesSent: number; bytesReceived: number }): void {
    new Gauge({
      name: "raftwal_transport_bytes_sent",
      help: "Bytes sent to peers",
      registers: [this.registry],
      collect() {
        this.set(stats().bytesSent);
      },
    });
    new Gauge({
      name: "raftwal_transport_bytes_received",
      help: "Bytes received from peers",
      registers: [this.registry],
      collect() {
        this.set(stats().bytesReceived);
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
