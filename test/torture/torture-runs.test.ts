/**
 * A short torture run of each nemesis group against real `raftwal node` processes (the
 * compiled CLI in dist/, which `npm test` builds first): 3 nodes, 20 ms ticks, a small
 * snapshot interval, a few seconds of faults each, about a minute and a half in all.
 * Every run must end with no violation.
 *
 * Longer runs: RAFTWAL_TORTURE_SECONDS=60 (safety phase per group), RAFTWAL_TORTURE_SEED
 * to change the seeds, RAFTWAL_TORTURE_KEEP=1 to keep the run directories; or
 * `npm run torture -- --duration 30m`.
 */
import { rm } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { runTorture, type TortureResult } from "../../src/torture/torture.js";
import type { NemesisGroup } from "../../src/torture/nemesis.js";

const SECONDS = Number(process.env.RAFTWAL_TORTURE_SECONDS ?? 6);
const SEED_BASE = Number(process.env.RAFTWAL_TORTURE_SEED ?? 20_240_601);
const KEEP = process.env.RAFTWAL_TORTURE_KEEP === "1";

const results: TortureResult[] = [];
afterEach(async () => {
  for (const result of results.splice(0)) if (!KEEP) await rm(result.dir, { recursive: true, force: true });
});

async function run(group: NemesisGroup, seedOffset: number): Promise<TortureResult> {
  let report = "";
  const result = await runTorture({
    nodes: 3,
    durationMs: SECONDS * 1000,
    seed: SEED_BASE + seedOffset,
    groups: [group],
    clients: 4,
    tickMs: 20,
    snapshotEvery: 50,
    keys: 4,
    livenessMs: 1500,
    stepsMax: 2_000_000,
    out: (text) => (report += text),
  });
  results.push(result);
  const failed = result.verdicts.filter((verdict) => verdict.status === "fail");
  expect(failed, report).toEqual([]);
  return result;
}

const TIMEOUT_MS = 60_000 + SECONDS * 3000;

describe("torture: one short run per nemesis (3 node processes)", () => {
  it("kill -9 of the leader, a follower, a majority, every node", async () => {
    const result = await run("kill", 1);
    expect(result.report).toMatch(/kill-/);
  }, TIMEOUT_MS);

  it("SIGSTOP / SIGCONT of the leader", async () => {
    await run("pause", 2);
  }, TIMEOUT_MS);

  it("partitions through the fault hook: isolate, split, bridge", async () => {
    const result = await run("partition", 3);
    expect(result.report).toMatch(/partition-/);
  }, TIMEOUT_MS);

  it("power loss (unsynced writes lost) and torn writes", async () => {
    await run("powerloss", 4);
  }, TIMEOUT_MS);

  it("a bit flipped in a WAL record, the hard state or a snapshot is caught", async () => {
    const result = await run("disk", 5);
    expect(result.report).toMatch(/disk damage detected\s+[1-9]/);
  }, TIMEOUT_MS);

  it("a node kept down past the others' compaction catches up", async () => {
    await run("snapshot", 6);
  }, TIMEOUT_MS);
});
