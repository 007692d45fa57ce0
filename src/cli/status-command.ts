/**
 * `raftwal status` (also `raftwal endpoint status`, as etcdctl users look for it): one row
 * per member of the cluster, from the member's own `/status`: id, API and peer address,
 * role, term, commit and applied index, WAL size, the newest snapshot, and health.
 *
 * The members come from the leader's membership (`/members`, following redirects); with
 * no leader, from the first node that answers; with none, the endpoints given are the rows.
 * Health: `healthy` (answers, knows a leader, has applied within BEHIND_ENTRIES_MAX of the
 * leader's commit), else what is wrong: `unreachable`, `no leader`, `repairing`, `removed`,
 * `behind N`, `other cluster`. The exit code is 0 when every member is healthy, 1 otherwise
 * (the table is printed either way); `--json` prints the same as one object.
 */
import type { Command } from "commander";
import type { KvClient, MembersAnswer } from "../kv/client.js";
import type { NodeStatus } from "../node/options.js";
import type { StorageUsage } from "../node/storage-usage.js";
import { addClientOptions, withClient, type ClientFlags } from "./client-options.js";
import { ExitCode } from "./io.js";
import type { CliContext } from "./program.js";
import { table } from "./text.js";

/** How long asking for the membership may take before each node's own view is used. */
const STATUS_TIMEOUT_MS = 3000;
/** A member this many entries or more behind the leader's commit index is reported as behind. */
export const BEHIND_ENTRIES_MAX = 1000;

export interface MemberStatusRow {
  id: number;
  apiAddress: string;
  peerAddress: string;
  /** Its place in the configuration: voter, learner (as the membership lists it). */
  membership: string;
  health: string;
  /** The member's own /status, when it answered. */
  status?: NodeStatus & { storage?: StorageUsage };
  error?: string;
}

export interface ClusterStatus {
  clusterId: string | undefined;
  leader: number;
  members: MemberStatusRow[];
}

const EXAMPLES = `
Examples:
  raftwal status
  raftwal endpoint status --endpoints http://10.0.0.1:7101,http://10.0.0.2:7101
  raftwal status --json | jq '.members[] | {id, health}'
`;

export function registerStatusCommand(program: Command, context: CliContext): void {
  const describe = "one row per member: role, term, commit and applied index, WAL size, newest snapshot, health";
  const action = (command: Command) => async (flags: { json?: boolean }) => {
    const clientFlags = command.optsWithGlobals() as ClientFlags;
    // A status is a diagnosis: without a leader, fall back to each node's own view soon.
    const status = await withClient(clientFlags, (client) => clusterStatus(client, clientFlags.endpoints), { operationTimeoutMs: Math.min(clientFlags.timeout, STATUS_TIMEOUT_MS) });
    context.io.stdout.write(flags.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
    if (status.members.some((member) => member.health !== "healthy")) context.exitCode = ExitCode.ERROR;
  };
  const status = addClientOptions(program.command("status").description(describe)).option("--json", "the same as one JSON object").addHelpText("after", EXAMPLES);
  status.action(action(status));
  const endpoint = program.command("endpoint").description("etcdctl's name for it: endpoint status");
  const endpointStatus = addClientOptions(endpoint.command("status").description(describe)).option("--json", "the same as one JSON object").addHelpText("after", EXAMPLES);
  endpointStatus.action(action(endpointStatus));
}

/** The membership to report on: the leader's; else any node's own view; else none (undefined). */
async function membersOf(client: KvClient): Promise<MembersAnswer | undefined> {
  try {
    return await client.members();
  } catch {
    return client.members({ stale: true }).catch(() => undefined);
  }
}

export async function clusterStatus(client: KvClient, endpoints: string[]): Promise<ClusterStatus> {
  const scheme = new URL(endpoints[0]).protocol;
  const members = await membersOf(client);
  const targets = members
    ? members.members.map((member) => ({ id: member.id, apiAddress: member.apiAddress, peerAddress: member.peerAddress, membership: member.role }))
    : endpoints.map((endpoint) => ({ id: 0, apiAddress: new URL(endpoint).host, peerAddress: "", membership: "unknown" }));
  const answers = await Promise.all(
    targets.map(async (target) => {
      if (!target.apiAddress) return { error: "no API address in the configuration" };
      try {
        return { status: (await client.status(`${scheme}//${target.apiAddress}`)) as unknown as MemberStatusRow["status"] };
      } catch (error) {
        return { error: (error as Error).message };
      }
    }),
  );
  const leaderStatus = answers.find((answer) => answer.status?.role === "leader")?.status;
  const clusterId = leaderStatus?.clusterId ?? answers.find((answer) => answer.status)?.status?.clusterId;
  const rows = targets.map((target, k): MemberStatusRow => {
    const answer = answers[k];
    const id = target.id || (answer.status?.id ?? 0);
    return { ...target, id, health: healthOf(answer, clusterId, leaderStatus?.commitIndex), ...answer };
  });
  return { clusterId, leader: leaderStatus?.id ?? members?.leader ?? 0, members: rows };
}

function healthOf(answer: { status?: MemberStatusRow["status"]; error?: string }, clusterId: string | undefined, leaderCommit: number | undefined): string {
  const status = answer.status;
  if (!status) return "unreachable";
  if (status.clusterId !== clusterId) return "other cluster";
  if (status.removed) return "removed";
  if (status.repairing) return "repairing";
  if (status.leader === 0) return "no leader";
  const behind = (leaderCommit ?? status.commitIndex) - status.appliedIndex;
  return behind >= BEHIND_ENTRIES_MAX ? `behind ${behind}` : "healthy";
}

/** "1.5 MiB". */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function formatStatus(cluster: ClusterStatus): string {
  const rows = [["ID", "API", "PEER", "ROLE", "TERM", "COMMIT", "APPLIED", "WAL", "SNAPSHOT", "HEALTH"]];
  for (const member of cluster.members) {
    const s = member.status;
    const role = s ? (s.membership === "learner" ? "learner" : s.role) : member.membership;
    const snapshot = s?.storage && s.storage.snapshotIndex > 0 ? `${s.storage.snapshotIndex} (${formatSize(s.storage.snapshotBytes)})` : "-";
    const cells = s ? [String(s.term), String(s.commitIndex), String(s.appliedIndex), s.storage ? formatSize(s.storage.walBytes) : "-", snapshot] : ["-", "-", "-", "-", "-"];
    rows.push([String(member.id || "?"), member.apiAddress || "-", member.peerAddress || "-", role, ...cells, member.health]);
  }
  const leader = cluster.leader ? `leader ${cluster.leader}` : "no leader";
  const errors = cluster.members.filter((member) => member.error).map((member) => `node ${member.id || member.apiAddress}: ${member.error}\n`);
  return `cluster ${cluster.clusterId ?? "unknown"}, ${leader}\n${table(rows)}${errors.join("")}`;
}
