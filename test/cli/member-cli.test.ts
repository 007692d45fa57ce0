/**
 * `raftwal member list|add|promote|remove` run in-process through runCli against an
 * in-process KV cluster (TCP on 127.0.0.1, the in-memory file system): what it prints,
 * `--json`, and one line with the code and exit 1 for every refused change or bad argument.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import { runCli } from "../../src/cli/program.js";
import type { MembersAnswer } from "../../src/kv/client.js";
import { startKvNode, type KvNode, type KvPeerConfig } from "../../src/kv/kv-node.js";
import { silentLogger } from "../../src/node/logger.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let nodes: KvNode[] = [];
let base: number;
let endpoints: string;

async function member(...argv: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(["member", "--endpoints", endpoints, ...argv], {
    stdout: { write: (text: string) => ((stdout += text), true) },
    stderr: { write: (text: string) => ((stderr += text), true) },
  });
  return { code, stdout, stderr };
}

function expectOneLineError(run: Run, pattern: RegExp): void {
  expect(run.code).toBe(1);
  expect(run.stdout).toBe("");
  expect(run.stderr).toMatch(/^raftwal: [^\n]+\n$/);
  expect(run.stderr).toMatch(pattern);
}

beforeAll(async () => {
  base = await findFreeBasePort(4);
  const peers: KvPeerConfig[] = [1, 2].map((id) => ({ id, host: "127.0.0.1", port: base + id - 1, api: { host: "127.0.0.1", port: base + 100 + id - 1 } }));
  nodes = await Promise.all(
    peers.map((peer) =>
      startKvNode({
        id: peer.id,
        clusterId: "member-cli",
        initialClusterState: "new",
        peers,
        dataDir: `/data/node-${peer.id}`,
        storage: { fs: new MemoryFileSystem() },
        tickMs: 10,
        logger: silentLogger,
        // A learner is promoted only once it has every entry of the leader's log.
        raft: { learnerLagEntriesMax: 0 },
      }),
    ),
  );
  // Bounded: two voters elect a leader within a few election timeouts.
  for (let i = 0; i < 500 && !nodes.some((node) => node.node.status().role === "leader"); i++) await sleep(10);
  endpoints = nodes.map((node) => `http://127.0.0.1:${node.apiAddress.port}`).join(",");
});

afterAll(async () => {
  for (const node of nodes) await node.close();
});

describe("raftwal member", () => {
  it("list prints the leader, the configuration and one row per member with its replication", async () => {
    const run = await member("list");
    expect(run.code).toBe(0);
    const leader = nodes.find((node) => node.node.status().role === "leader")!.node.status();
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`leader ${leader.id}, last index ${leader.lastIndex}; configuration index 1 (committed)`);
    expect(lines[1]).toMatch(/^ID +ROLE +PEER +API +MATCH +LAG$/);
    expect(lines[2]).toMatch(new RegExp(`^1 +voter +127\\.0\\.0\\.1:${base} +127\\.0\\.0\\.1:${base + 100} +${leader.lastIndex} +0$`));
    expect(lines).toHaveLength(4);
  });

  it("list --json prints the API's answer", async () => {
    const run = await member("list", "--json");
    const answer = JSON.parse(run.stdout) as MembersAnswer;
    expect(answer.members.map((m) => [m.id, m.role])).toEqual([[1, "voter"], [2, "voter"]]);
    expect(answer.committed).toBe(true);
  });

  it("add, promote and remove print one line each with the new membership; refusals print one line with the code", async () => {
    const add = await member("add", "3", `127.0.0.1:${base + 2}`, "--api", `127.0.0.1:${base + 102}`);
    expect(add).toMatchObject({ code: 0, stderr: "" });
    expect(add.stdout).toMatch(new RegExp(`^added node 3 as a learner \\(peer 127\\.0\\.0\\.1:${base + 2}, api 127\\.0\\.0\\.1:${base + 102}\\); voters 1,2 learners 3 \\(configuration index \\d+\\)\\n$`));
    // Node 3 never runs: it has none of the log.
    expectOneLineError(await member("promote", "3"), /^raftwal: learner 3 is \d+ entries behind the leader .*\[RAFT_ERR_LEARNER_BEHIND\]\n$/);
    expectOneLineError(await member("add", "3", `127.0.0.1:${base + 2}`), /already a member \[RAFT_ERR_INVALID_CONFIG_CHANGE\]/);
    expectOneLineError(await member("remove", "9"), /node 9 is not a member of this cluster \[RAFT_ERR_UNKNOWN_MEMBER\]/);
    const remove = await member("remove", "3", "--json");
    expect(remove.code).toBe(0);
    expect((JSON.parse(remove.stdout) as MembersAnswer).members.map((m) => m.id)).toEqual([1, 2]);
    expectOneLineError(await member("add", "3", `127.0.0.1:${base + 2}`), /ids are never reused.*\[RAFT_ERR_INVALID_CONFIG_CHANGE\]/);
    const addWithoutApi = await member("add", "4", `127.0.0.1:${base + 3}`);
    expect(addWithoutApi.stdout).toMatch(/^added node 4 as a learner \(peer [^,]+\); voters 1,2 learners 4/);
    expect((await member("remove", "4")).stdout).toMatch(/^removed node 4; voters 1,2 \(configuration index \d+\)\n$/);
  });

  it("refuses bad arguments with one line", async () => {
    expectOneLineError(await member("add", "0", "127.0.0.1:1"), /'0' is not between 1 and/);
    expectOneLineError(await member("add", "5", "nowhere"), /'nowhere' is not HOST:PORT/);
    expectOneLineError(await member("promote", "x"), /'x' is not a whole number/);
  });
});
