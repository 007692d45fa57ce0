/**
 * `raftwal node --read-mode lease` (and `raftwal cluster --read-mode`), with real node
 * processes: the mode reaches the core (each node's /status says it), linearizable reads
 * are served, and a read that follows a write sees it. Bad values are refused before a node
 * starts. Every process started here is stopped in afterEach; ports are picked free.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findFreeBasePort, LocalCluster } from "../../src/cli/local-cluster.js";
import { KvClient } from "../../src/kv/client.js";
import { raftwal as run } from "../cli/helpers.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("raftwal node --read-mode", () => {
  it("lease: every node reports the mode, and a linearizable read after a write sees it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "raftwal-read-mode-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const cluster = new LocalCluster({ nodes: 3, dir, basePort: await findFreeBasePort(3), logs: "file", nodeArgs: ["--tick-ms", "20", "--read-mode", "lease", "--lease-clock-drift-ticks", "3"] });
    cleanups.push(() => cluster.stop());
    await cluster.start();
    await cluster.waitForLeader();
    for (const spec of cluster.specs) expect((await cluster.status(spec.id))?.readMode, `node ${spec.id}`).toBe("lease");
    const client = new KvClient({ endpoints: cluster.specs.map((spec) => spec.apiUrl), operationTimeoutMs: 20_000 });
    cleanups.push(() => client.close());
    for (let i = 0; i < 20; i++) {
      await client.put(`k${i}`, `v${i}`);
      expect(new TextDecoder().decode(await client.get(`k${i}`))).toBe(`v${i}`);
    }
  });

  it("refuses a mode it does not know, and a drift bound without lease reads", async () => {
    const bogus = await run(["node", "--id", "1", "--dir", "/nonexistent", "--read-mode", "bogus"]);
    expect(bogus.code).not.toBe(0);
    expect(bogus.stderr).toMatch(/'bogus' is not read-index or lease/);
    const drift = await run(["node", "--id", "1", "--dir", "/nonexistent", "--lease-clock-drift-ticks", "3"]);
    expect(drift.code).not.toBe(0);
    expect(drift.stderr).toMatch(/--lease-clock-drift-ticks needs --read-mode lease/);
  });
});
