/**
 * Backup and restore, etcdctl's disaster-recovery path, with real node processes: a
 * backup saved from a live cluster (`raftwal snapshot save`), the whole cluster wiped,
 * three empty directories restored from the file (`raftwal snapshot restore`, each with
 * the new cluster's members), and the nodes started on them as existing members: every
 * key is back and the cluster takes writes. A damaged backup is refused before anything
 * is written. Every process started here is stopped in afterEach; ports are picked free.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findFreeBasePort, LocalCluster } from "../../src/cli/local-cluster.js";
import { raftwal as run } from "../cli/helpers.js";
import { KvClient } from "../../src/kv/client.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const raftwal = (...argv: string[]) => run(argv);

async function startCluster(dir: string, basePort: number): Promise<{ cluster: LocalCluster; client: KvClient }> {
  const cluster = new LocalCluster({ nodes: 3, dir, basePort, logs: "file", nodeArgs: ["--tick-ms", "20", "--snapshot-every", "40"] });
  cleanups.push(() => cluster.stop());
  await cluster.start();
  await cluster.waitForLeader();
  const client = new KvClient({ endpoints: cluster.specs.map((spec) => spec.apiUrl), operationTimeoutMs: 20_000 });
  cleanups.push(() => client.close());
  return { cluster, client };
}

describe("raftwal snapshot save and restore", () => {
  it("restores a wiped cluster from a backup: three empty directories, every key back, writes taken", async () => {
    const root = await mkdtemp(join(tmpdir(), "raftwal-backup-"));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const dir = join(root, "cluster");
    const basePort = await findFreeBasePort(3);
    const { cluster, client } = await startCluster(dir, basePort);
    const written = new Map<string, string>();
    for (let i = 0; i < 100; i++) {
      written.set(`key${i}`, `value${i}`);
      await client.put(`key${i}`, `value${i}`);
    }
    await client.delete("key7");
    written.delete("key7");
    const backup = join(root, "backup.rwb");
    const endpoints = cluster.specs.map((spec) => spec.apiUrl).join(",");
    const saved = await raftwal("snapshot", "save", backup, "--endpoints", endpoints);
    expect(saved.stderr).toBe("");
    expect(saved.stdout).toMatch(/^saved a snapshot at index \d+ \(term \d+\) from http:\/\/127\.0\.0\.1:\d+ \(node \d\) to .*backup\.rwb: \d+ bytes, checksum verified\n$/);
    const status = await raftwal("snapshot", "status", backup, "--json");
    expect(JSON.parse(status.stdout)).toMatchObject({ keys: 99, checksum: "ok", payloadFormat: "raftwal-kv/1" });

    // Disaster: every node and every directory gone.
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
    const members = [1, 2, 3].map((id) => `${id}=127.0.0.1:${basePort + id - 1}/127.0.0.1:${basePort + 99 + id}`).join(",");
    for (const id of [1, 2, 3]) {
      const restored = await raftwal("snapshot", "restore", backup, "--dir", join(dir, `node-${id}`), "--id", String(id), "--members", members);
      expect(restored.stderr).toBe("");
      expect(restored.stdout).toContain(`: node ${id} of a new cluster of voters 1,2,3\nstart it as an existing member: raftwal node --id ${id} --dir ${join(dir, `node-${id}`)}\n`);
    }

    // The directories hold state: the nodes start as existing members and elect a leader.
    const { client: after } = await startCluster(dir, basePort);
    for (const [key, value] of written) expect((await after.get(key))?.toString(), key).toBe(value);
    expect(await after.get("key7")).toBeUndefined();
    await after.put("after-restore", "yes");
    expect((await after.get("after-restore"))?.toString()).toBe("yes");
    expect((await after.members()).members.map((member) => [member.id, member.role])).toEqual([[1, "voter"], [2, "voter"], [3, "voter"]]);
  });

  it("refuses a damaged or truncated backup, and a directory in use, before writing anything", async () => {
    const root = await mkdtemp(join(tmpdir(), "raftwal-backup-"));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const { cluster, client } = await startCluster(join(root, "cluster"), await findFreeBasePort(3));
    await client.put("k", "v");
    const backup = join(root, "backup.rwb");
    expect((await raftwal("snapshot", "save", backup, "--endpoints", cluster.specs[0].apiUrl)).code).toBe(0);
    const bytes = await readFile(backup);
    const members = "1=127.0.0.1:1/127.0.0.1:2";
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(bytes.length / 2)] ^= 0x01;
    await writeFile(join(root, "flipped.rwb"), flipped);
    await writeFile(join(root, "truncated.rwb"), bytes.subarray(0, bytes.length - 10));
    for (const [file, message] of [
      ["flipped.rwb", /checksum mismatch: the backup is damaged \[KV_ERR_BACKUP_CORRUPT\]/],
      ["truncated.rwb", /does not end with the backup trailer \[KV_ERR_BACKUP_CORRUPT\]/],
    ] as const) {
      const target = join(root, `from-${file}`);
      const run = await raftwal("snapshot", "restore", join(root, file), "--dir", target, "--id", "1", "--members", members);
      expect(run.code, file).toBe(1);
      expect(run.stderr).toMatch(/^raftwal: [^\n]+\n$/);
      expect(run.stderr).toMatch(message);
      expect(existsSync(target)).toBe(false);
    }
    const busy = await raftwal("snapshot", "restore", backup, "--dir", join(root, "cluster"), "--id", "1", "--members", members);
    expect(busy).toMatchObject({ code: 1, stderr: expect.stringMatching(/is not empty: a restore builds a new data directory/) });
    const notMember = await raftwal("snapshot", "restore", backup, "--dir", join(root, "x"), "--id", "2", "--members", members);
    expect(notMember).toMatchObject({ code: 1, stderr: "raftwal: --id 2 is not among --members (1)\n" });
  });
});
