/**
 * `raftwal status` (and `endpoint status`) and `raftwal leader transfer`, run in-process
 * through runCli against three in-process nodes (TCP on 127.0.0.1, the in-memory file
 * system): the table, `--json`, a member that does not answer, and moving leadership.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClusterStatus } from "../../src/cli/status-command.js";
import type { KvNode } from "../../src/kv/kv-node.js";
import { raftwal as run, startInProcessCluster } from "./helpers.js";

let nodes: KvNode[] = [];
let endpoints: string;

const raftwal = (...argv: string[]) => run(argv);
const leaderId = () => nodes.find((node) => node.node.status().role === "leader")?.node.status().id ?? 0;

beforeAll(async () => {
  nodes = await startInProcessCluster(3, { clusterId: "status-cli", snapshotEveryEntries: 10, storage: { wal: { segmentSizeBytes: 1024 * 1024 } } });
  endpoints = nodes.map((node) => `http://127.0.0.1:${node.apiAddress.port}`).join(",");
  for (let i = 0; i < 15; i++) expect((await raftwal("kv", "--endpoints", endpoints, "put", `k${i}`, "v")).code).toBe(0);
});

afterAll(async () => {
  for (const node of nodes) await node.close();
});

describe("raftwal status", () => {
  it("prints one row per member: role, term, commit and applied index, WAL size, snapshot, health", async () => {
    const run = await raftwal("status", "--endpoints", endpoints);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`cluster status-cli, leader ${leaderId()}`);
    expect(lines[1]).toMatch(/^ID +API +PEER +ROLE +TERM +COMMIT +APPLIED +WAL +SNAPSHOT +HEALTH$/);
    expect(lines).toHaveLength(5);
    for (const [k, line] of lines.slice(2).entries()) {
      const id = k + 1;
      const role = id === leaderId() ? "leader" : "follower";
      expect(line).toMatch(new RegExp(`^${id} +127\\.0\\.0\\.1:\\d+ +127\\.0\\.0\\.1:\\d+ +${role} +\\d+ +\\d+ +\\d+ +\\d+\\.\\d (KiB|MiB) +\\d+ \\(\\d+(\\.\\d)? (B|KiB)\\) +healthy$`));
    }
    // The etcdctl spelling answers the same.
    const endpointStatus = await raftwal("endpoint", "status", "--endpoints", endpoints);
    expect(endpointStatus.stdout.split("\n").slice(0, 2)).toEqual(lines.slice(0, 2));
  });

  it("--json carries each member's status and storage; a member that does not answer is unreachable and the exit code is 1", async () => {
    const json = JSON.parse((await raftwal("status", "--endpoints", endpoints, "--json")).stdout) as ClusterStatus;
    expect(json.clusterId).toBe("status-cli");
    expect(json.members.map((member) => [member.id, member.health])).toEqual([[1, "healthy"], [2, "healthy"], [3, "healthy"]]);
    for (const member of json.members) {
      expect(member.status?.storage?.walBytes).toBeGreaterThan(0);
      expect(member.status?.storage?.snapshotIndex).toBeGreaterThanOrEqual(10);
      expect(member.status?.commitIndex).toBeGreaterThanOrEqual(16);
    }
    const stopped = nodes.find((node) => node.node.status().role !== "leader")!;
    const stoppedId = stopped.node.status().id;
    await stopped.close();
    nodes = nodes.filter((node) => node !== stopped);
    const run = await raftwal("status", "--endpoints", endpoints, "--json");
    expect(run.code).toBe(1);
    const after = JSON.parse(run.stdout) as ClusterStatus;
    expect(after.members.find((member) => member.id === stoppedId)).toMatchObject({ health: "unreachable", error: expect.stringMatching(/ECONNREFUSED/) });
    expect(after.members.filter((member) => member.health === "healthy")).toHaveLength(2);
  });
});

describe("raftwal leader transfer", () => {
  it("moves leadership to the voter asked for and says so; refuses a node that is not a voter", async () => {
    const from = leaderId();
    const to = nodes.map((node) => node.node.status().id).find((id) => id !== from)!;
    const run = await raftwal("leader", "transfer", "--to", String(to), "--endpoints", endpoints);
    expect(run.stderr).toBe("");
    expect(run).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^leadership moved from node ${from} to node ${to} \\(term \\d+\\)\\n$`)) });
    expect(leaderId()).toBe(to);
    expect((await raftwal("leader", "transfer", "--to", String(to), "--endpoints", endpoints, "--json")).stdout).toMatch(new RegExp(`^\\{"leader":${to},"previousLeader":${to},"term":\\d+\\}\\n$`));
    const refused = await raftwal("leader", "transfer", "--to", "9", "--endpoints", endpoints);
    expect(refused).toMatchObject({ code: 1, stdout: "", stderr: "raftwal: 9 is not a voter [RAFTWAL_ERR_INVALID_ARGUMENT]\n" });
    expect((await raftwal("leader", "transfer", "--endpoints", endpoints)).stderr).toMatch(/required option '--to <id>' not specified/);
  });
});
