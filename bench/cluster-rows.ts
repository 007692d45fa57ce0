/**
 * The rows of the cluster benchmark: what each measures on raftwal, and the etcd request it
 * is compared with (etcd has no client sessions and no lease-read switch in its gateway:
 * a put with raftwal's session headers is compared with etcd's plain put, a lease read with
 * etcd's linearizable read, etcd's default).
 */
import type { RequestKind } from "./cluster-systems.js";

/**
 * Which cluster a row runs on: the default one (3 members), one with lease reads and the
 * latency trace on (raftwal; etcd answers those rows from its default cluster), or 5 members.
 */
export type ClusterKind = "default" | "lease" | "five";

/** Members of each kind of cluster. */
export const CLUSTER_MEMBERS: Record<ClusterKind, number> = { default: 3, lease: 3, five: 5 };

export interface RowSpec {
  label: string;
  kind: RequestKind;
  clients: number;
  valueBytes: number;
  /** Ask the leader, or a follower (stale reads). */
  at: "leader" | "follower";
  cluster: ClusterKind;
  /** Measured from the moment the cluster has a leader: no warm-up, COLD_SECONDS long. */
  cold?: boolean;
  /** The etcd request it is compared with. */
  etcdKind: RequestKind;
}

/** How long the cold row (the first seconds after start) runs. */
export const COLD_SECONDS = 3;
export const VALUE_BYTES_DEFAULT = 256;

function row(label: string, kind: RequestKind, clients: number, extra: Partial<RowSpec> = {}): RowSpec {
  const etcdKind: RequestKind = kind === "put-session" ? "put" : kind;
  return { label, kind, clients, valueBytes: VALUE_BYTES_DEFAULT, at: "leader", cluster: "default", etcdKind, ...extra };
}

export function rowSpecs(quick: boolean): RowSpec[] {
  const cold = row("put, first seconds after start", "put", 1, { cold: true });
  const stale = row("stale get at a follower", "get-stale", 16, { at: "follower" });
  const lease = row("lease get (etcd: linearizable)", "get", 16, { cluster: "lease" });
  if (quick) return [cold, row("put", "put", 1), row("put", "put", 64), row("linearizable get", "get", 16), stale, lease];
  return [
    cold,
    row("put", "put", 1),
    row("put, sessions (KvClient-like)", "put-session", 1),
    row("put", "put", 16),
    row("put, sessions (KvClient-like)", "put-session", 16),
    row("put", "put", 64),
    row("put", "put", 256),
    row("put 4 KiB", "put", 16, { valueBytes: 4096 }),
    row("put 64 KiB", "put", 16, { valueBytes: 65536 }),
    row("linearizable get", "get", 16),
    stale,
    lease,
    row("put, 5 members", "put", 16, { cluster: "five" }),
  ];
}

/** etcd's cluster for a row: it has no lease-read switch, so the lease rows go to its default cluster. */
export function etcdCluster(spec: RowSpec): ClusterKind {
  return spec.cluster === "lease" ? "default" : spec.cluster;
}

/** The etcd measurement a row is compared with: rows that ask etcd the same thing share it. */
export function etcdSignature(spec: RowSpec): string {
  return `${spec.etcdKind} c${spec.clients} ${spec.valueBytes}B ${spec.at}${spec.cold ? " cold" : ""} ${etcdCluster(spec)}`;
}

export function raftwalSignature(spec: RowSpec): string {
  return `${spec.kind} c${spec.clients} ${spec.valueBytes}B ${spec.at}${spec.cold ? " cold" : ""} ${spec.cluster}`;
}
