/**
 * `raftwal wal ...` run in-process through runCli on real directories (NodeFileSystem in a
 * temp dir): damage is made by truncating or flipping bytes of real files.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { appendFile, cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/program.js";
import { PROGRESS_BAR_SEGMENTS_MIN } from "../../src/cli/wal-commands.js";
import { NODE_HEAP_FLAGS } from "../../src/cli/v8-heap.js";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import { encodeHardStateFile } from "../../storage/hard-state.js";
import { openRaftStorage } from "../../storage/raft-storage.js";
import { writeRepairMarker } from "../../storage/repair-marker.js";
import { scanWal, verifyWal } from "../../storage/wal/index.js";
import { entries } from "../storage/raft-storage-helpers.js";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";
import { encodeConfigEntry } from "../../src/raft/config-log.js";
import { encodeCommand, type KvCommand } from "../../src/kv/command.js";
import { EntryType, type ClusterConfig, type Entry } from "../../src/proto/schema.js";
import { registerPayloadDecoder, unregisterPayloadDecoder, payloadDecoderNames } from "../../src/cli/payload-decoders.js";

const fs = new NodeFileSystem();
let root: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(argv: string[], options: { tty?: boolean } = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    stdout: { write: (text: string) => ((stdout += text), true) },
    stderr: { write: (text: string) => ((stderr += text), true), isTTY: options.tty ?? false },
  });
  return { code, stdout, stderr };
}

/** A node data directory: 300 entries over several 64 KiB segments, a snapshot at 100, hard state. */
async function makeNodeDirectory(name: string, lastIndex = 300): Promise<string> {
  const dir = join(root, name);
  const storage = await openRaftStorage(dir, { wal: { segmentSizeBytes: 64 * 1024 } });
  for (let from = 1; from <= lastIndex; from += 30) await storage.append(entries(from, from + 29, 1, 500));
  await storage.saveHardState({ term: 1, vote: 2, commit: 250 });
  await storage.createSnapshot({ index: 100, config: clusterConfigOf([1, 2, 3]) }, [new TextEncoder().encode("snapshot payload")]);
  await storage.close();
  return dir;
}

const JOINT: ClusterConfig = { voters: [1, 2, 3, 4], votersOutgoing: [1, 2, 3], learners: [], members: [], removed: [] };
const GROWN = clusterConfigOf([1, 2, 3, 4], [5]);

function configEntry(index: number, term: number, config: ClusterConfig): Entry {
  return { index, term, type: EntryType.CLUSTER_CONFIG, data: encodeConfigEntry(config) };
}

function kvEntry(index: number, term: number, command: KvCommand): Entry {
  return { index, term, type: EntryType.NORMAL, data: encodeCommand(command) };
}

/**
 * A node data directory as the KV service writes it: configuration entries, KV commands, a
 * leader's empty entry, bytes that are no command, and a conflicting suffix overwritten in
 * term 2 (so the joint configuration at 5 is truncated away). With `snapshotAt`, a snapshot
 * there compacts the log (up to `compactTo`, default the snapshot's index).
 */
async function makeKvDirectory(name: string, snapshotAt?: number, compactTo?: number): Promise<string> {
  const dir = join(root, name);
  const storage = await openRaftStorage(dir);
  const value = new TextEncoder().encode("alice");
  await storage.append([
    configEntry(1, 1, clusterConfigOf([1, 2, 3])),
    { index: 2, term: 1, type: EntryType.NORMAL, data: new Uint8Array(0) },
    kvEntry(3, 1, { op: "put", clientId: "c1", seq: 1, key: "user/1", value }),
    kvEntry(4, 1, { op: "cas", clientId: "c1", seq: 2, key: "user/1", expect: value, value: new TextEncoder().encode("alicia") }),
  ]);
  await storage.append([configEntry(5, 1, JOINT), kvEntry(6, 1, { op: "delete", clientId: "c1", seq: 3, key: "user/1" })]);
  await storage.append([
    kvEntry(5, 2, { op: "get", key: "user/1" }),
    configEntry(6, 2, GROWN),
    { index: 7, term: 2, type: EntryType.NORMAL, data: new Uint8Array([0xff, 0x00, 0x01]) },
    kvEntry(8, 2, { op: "cas", clientId: "c2", seq: 1, key: "new", expect: null, value: new TextEncoder().encode("x") }),
  ]);
  await storage.saveHardState({ term: 2, vote: 1, commit: 8 });
  if (snapshotAt !== undefined) await storage.createSnapshot({ index: snapshotAt, config: GROWN, compactTo }, [new TextEncoder().encode("kv")]);
  await storage.close();
  return dir;
}

/** Asserts a failed run printed exactly one line on stderr, without a stack trace. */
function expectOneLineError(run: Run, pattern: RegExp): void {
  expect(run.code).toBe(1);
  expect(run.stderr).toMatch(/^raftwal: [^\n]+\n$/);
  expect(run.stderr).toMatch(pattern);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "raftwal-cli-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("raftwal wal on a healthy directory", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeNodeDirectory("healthy");
  });

  it("inspect shows segments, hard state, snapshots and a healthy verdict", async () => {
    const run = await cli(["wal", "inspect", dir]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/segment-00000000000000000001\.wal\s+1\s+120\s+\d+\/65536\s+sealed/);
    expect(run.stdout).toMatch(/\s+active\n/);
    expect(run.stdout).toContain("log: 200 entries (101..300)");
    expect(run.stdout).toContain("hard state: term 1, vote 2, commit 250");
    expect(run.stdout).toMatch(/snapshot-00000000000000000100-00000000000000000001\.snap\s+100\s+1\s+16\s+voters 1,2,3\s+ok/);
    expect(run.stdout).toContain("configuration: voters 1,2,3 (the newest snapshot's, index 100; no configuration entry in the log after it)\n");
    expect(run.stdout).toContain("health: healthy");
  });

  it("dump prints one line per record, filtered by --from, --to and --type", async () => {
    const run = await cli(["wal", "dump", dir, "--from", "118", "--to", "122", "--type", "entry"]);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^index 118\s+term 1\s+entry\s+\d+ B\s+1:\d+\s+ok\s+0x656e74727920313138/);
    expect(lines[3]).toMatch(/^index 121\s+term 1\s+entry\s+\d+ B\s+2:40\s+ok/);
    const all = await cli(["wal", "dump", dir]);
    expect(all.stdout.trimEnd().split("\n").filter((line) => / entry /.test(line))).toHaveLength(300);
    expect(all.stdout).toMatch(/index 100\s+term 1\s+compact/);
  });

  it("dump --json gives JSON lines, and DIR may be the WAL directory itself", async () => {
    const run = await cli(["wal", "dump", join(dir, "wal"), "--json", "--type", "commit"]);
    expect(run.code).toBe(0);
    const records = run.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    expect(records.length).toBeGreaterThanOrEqual(10);
    expect(records[0]).toMatchObject({ type: "commit", index: 30, segmentId: 1, status: "ok", segment: "segment-00000000000000000001.wal" });
    expect(typeof records[0].offset).toBe("number");
    const entry = JSON.parse((await cli(["wal", "dump", dir, "--json", "--from", "7", "--to", "7", "--type", "entry"])).stdout);
    expect(entry).toMatchObject({ index: 7, term: 1, type: "entry", dataBytes: 500 });
  });

  it("verify exits 0, and draws a progress bar on a terminal only", async () => {
    const plain = await cli(["wal", "verify", dir]);
    expect(plain).toMatchObject({ code: 0, stderr: "" });
    expect(plain.stdout).toMatch(/3 segments, 200 entries \(101\.\.300\)/);
    expect(plain.stdout).toMatch(/healthy\n$/);
    const large = await makeNodeDirectory("large", 300 + 120 * PROGRESS_BAR_SEGMENTS_MIN);
    const tty = await cli(["wal", "verify", large], { tty: true });
    expect(tty.code).toBe(0);
    expect(tty.stderr).toMatch(/verifying segments \[#+\] \d+\/\d+/);
    expect(tty.stderr.endsWith("\r\x1b[K")).toBe(true); // erased before the result is printed
    expect((await cli(["wal", "verify", large])).stderr).toBe("");
  });

  it("repair of a healthy WAL changes nothing", async () => {
    const run = await cli(["wal", "repair", dir]);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toMatch(/nothing to repair/);
  });
});

describe("raftwal wal names every record and decodes what it holds", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeKvDirectory("kv");
  });

  it("dump names each record type, decodes KV commands and configurations, and shows only the fields that mean something", async () => {
    const run = await cli(["wal", "dump", dir]);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    const lines = run.stdout.trimEnd().split("\n");
    const line = (pattern: RegExp): string => {
      const found = lines.filter((l) => pattern.test(l));
      expect(found, `one line matches ${pattern}`).toHaveLength(1);
      return found[0];
    };
    expect(line(/^index 1 .*config/)).toMatch(/^index 1\s+term 1\s+config\s+\d+ B\s+1:40\s+ok\s+configuration: voters 1,2,3$/);
    expect(line(/^index 2 .* entry /)).toMatch(/term 1\s+entry .* ok\s+\(empty\)$/);
    expect(line(/^index 3 .* entry /)).toMatch(/ok\s+kv put "user\/1" = "alice" \(client "c1", seq 1\)$/);
    expect(line(/^index 4 .* entry /)).toMatch(/ok\s+kv cas "user\/1" "alice" -> "alicia" \(client "c1", seq 2\)$/);
    expect(line(/^index 5 .*term 1 .*config/)).toMatch(/configuration: joint 1,2,3,4 \/ 1,2,3$/); // written, then truncated
    expect(line(/^index 6 .*term 1 .* entry /)).toMatch(/kv delete "user\/1" \(client "c1", seq 3\)$/);
    expect(line(/truncate-suffix/)).toMatch(/^index 5\s+truncate-suffix\s+\d+ B\s+1:\d+\s+ok\s+drops the entries from index 5 on$/);
    expect(line(/^index 5 .*term 2 .* entry /)).toMatch(/kv get "user\/1"$/);
    expect(line(/^index 6 .*term 2 .*config/)).toMatch(/configuration: voters 1,2,3,4 learners 5$/);
    expect(line(/^index 7 .* entry /)).toMatch(/ok\s+0xff0001$/); // no decoder knows it
    expect(line(/^index 8 .* entry /)).toMatch(/kv cas "new" \(absent\) -> "x" \(client "c2", seq 1\)$/);
    const commits = lines.filter((l) => / commit /.test(l));
    expect(commits).toHaveLength(3);
    expect(commits[0]).toMatch(/^index 4\s+commit\s+40 B\s+1:\d+\s+ok\s+closes the batch of 4 records from byte offset 40; the log ends at index 4$/);
    for (const commit of commits) expect(commit).not.toMatch(/term/);
  });

  it("dump --json gives each record type its own fields: no term for a commit or a truncation, decoded commands, configurations", async () => {
    const records = (await cli(["wal", "dump", dir, "--json"])).stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    const commit = records.find((r) => r.type === "commit");
    expect(commit).toMatchObject({ index: 4, batchStartOffset: 40, recordCount: 4, status: "ok" });
    expect(commit).not.toHaveProperty("term");
    const truncate = records.find((r) => r.type === "truncate-suffix");
    expect(truncate).toMatchObject({ index: 5 });
    expect(truncate).not.toHaveProperty("term");
    expect(records.find((r) => r.index === 3 && r.type === "entry")).toMatchObject({
      term: 1,
      entryType: "normal",
      decoded: { decoder: "kv", op: "put", key: "user/1", clientId: "c1", seq: 1, value: '"alice"', valueBytes: 5 },
    });
    expect(records.find((r) => r.index === 6 && r.term === 2)).toMatchObject({
      entryType: "cluster-config",
      config: { voters: [1, 2, 3, 4], learners: [5], description: "voters 1,2,3,4 learners 5" },
    });
    const raw = records.find((r) => r.index === 7 && r.type === "entry");
    expect(raw).toMatchObject({ entryType: "normal", preview: "0xff0001", dataBytes: 3 });
    expect(raw).not.toHaveProperty("decoded");
  });

  it("dump --type config shows the configuration entries only", async () => {
    const lines = (await cli(["wal", "dump", dir, "--type", "config"])).stdout.trimEnd().split("\n");
    expect(lines.map((l) => l.split(/\s+/).slice(0, 5).join(" "))).toEqual(["index 1 term 1 config", "index 5 term 1 config", "index 6 term 2 config"]);
  });

  it("inspect shows the log's latest configuration entry (not one truncated away), and the snapshot's once the log is compacted", async () => {
    const run = await cli(["wal", "inspect", dir]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("configuration: voters 1,2,3,4 learners 5 (the log's latest configuration entry: index 6, term 2)\n");
    const compacted = await makeKvDirectory("kv-compacted", 8);
    expect((await cli(["wal", "inspect", compacted])).stdout).toContain(
      "configuration: voters 1,2,3,4 learners 5 (the newest snapshot's, index 8; no configuration entry in the log after it)\n",
    );
    expect((await cli(["wal", "dump", compacted, "--type", "compact"])).stdout).toMatch(/^index 8\s+term 2\s+compact\s+.*ok\s+entries up to index 8 \(term 2\) are in a snapshot\n$/);
    expect((await cli(["wal", "inspect", join(compacted, "wal")])).stdout).toContain(
      "configuration: none (no configuration entry in the log; a WAL directory shows no snapshots)\n",
    );
  });

  it("inspect shows the entries kept behind the newest snapshot (its catch-up tail), and none when the log is compacted to it", async () => {
    const withTail = await makeKvDirectory("kv-tail", 7, 4);
    const text = (await cli(["wal", "inspect", withTail])).stdout;
    expect(text).toContain("log: 4 entries (5..8), first index 5, last index 8\n");
    expect(text).toContain("catch-up tail: 3 entries (5..7) kept behind the newest snapshot, for followers a little behind\n");
    expect(JSON.parse((await cli(["wal", "inspect", withTail, "--json"])).stdout).catchUpTail).toEqual({ firstIndex: 5, lastIndex: 7, entries: 3 });
    const compacted = await makeKvDirectory("kv-no-tail", 7);
    expect((await cli(["wal", "inspect", compacted])).stdout).not.toContain("catch-up tail");
    expect(JSON.parse((await cli(["wal", "inspect", compacted, "--json"])).stdout).catchUpTail).toBeNull();
  });

  it("inspect --json and verify --json give one JSON object each, with the exit code of the text form", async () => {
    const inspected = await cli(["wal", "inspect", dir, "--json"]);
    expect(inspected.code).toBe(0);
    const report = JSON.parse(inspected.stdout);
    expect(report).toMatchObject({
      walDirectory: join(dir, "wal"),
      dataDirectory: dir,
      log: { entries: 8, firstIndex: 1, lastIndex: 8 },
      hardState: { status: "ok", term: 2, vote: 1, commit: 8 },
      snapshots: [],
      configuration: { source: "log", index: 6, term: 2, config: { voters: [1, 2, 3, 4], learners: [5], description: "voters 1,2,3,4 learners 5" } },
      health: { status: "healthy", exitCode: 0, verdict: ["healthy"] },
    });
    expect(report.segments).toEqual([expect.objectContaining({ segmentId: 1, firstIndex: 1, lastIndex: 8, state: "active" })]);
    const verified = await cli(["wal", "verify", dir, "--json"]);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({
      status: "healthy",
      exitCode: 0,
      wal: { status: "healthy", segments: 1, entries: 8, firstIndex: 1, lastIndex: 8 },
      hardState: { status: "ok" },
      snapshots: { total: 0, ok: 0, corrupt: [] },
      verdict: ["healthy"],
    });
  });

  it("an application's payload decoder is tried before the built-in ones; one that throws is passed over", async () => {
    expect(payloadDecoderNames()).toContain("kv");
    registerPayloadDecoder("broken", () => {
      throw new Error("not mine");
    });
    registerPayloadDecoder("orders", (data) => (data[0] === 0xff ? { text: `order #${data[2]}`, fields: { order: data[2] } } : undefined));
    try {
      expect(payloadDecoderNames().slice(0, 2)).toEqual(["orders", "broken"]);
      const text = (await cli(["wal", "dump", dir, "--from", "3", "--to", "7", "--type", "entry"])).stdout;
      expect(text).toMatch(/^index 7 .* ok\s+orders order #1$/m);
      expect(text).toMatch(/^index 3 .* ok\s+kv put "user\/1"/m); // the others still decode
      const json = JSON.parse((await cli(["wal", "dump", dir, "--json", "--from", "7", "--to", "7", "--type", "entry"])).stdout);
      expect(json.decoded).toEqual({ decoder: "orders", order: 1 });
    } finally {
      expect(unregisterPayloadDecoder("orders")).toBe(true);
      expect(unregisterPayloadDecoder("broken")).toBe(true);
    }
    expect((await cli(["wal", "dump", dir, "--from", "7", "--to", "7", "--type", "entry"])).stdout).toMatch(/ok\s+0xff0001\n$/);
  });

  it("an embedding application does the same through the package's entry point: registerPayloadDecoder, then runCli", async () => {
    const raftwal = await import("../../src/index.js");
    raftwal.registerPayloadDecoder("orders", (data) => (data[0] === 0xff ? { text: `order #${data[2]}`, fields: {} } : undefined));
    let stdout = "";
    try {
      const code = await raftwal.runCli(["wal", "dump", dir, "--from", "7", "--to", "7", "--type", "entry"], {
        stdout: { write: (text: string) => ((stdout += text), true) },
        stderr: { write: () => true },
      });
      expect(code).toBe(0);
      expect(stdout).toMatch(/ok\s+orders order #1\n$/);
    } finally {
      raftwal.unregisterPayloadDecoder("orders");
    }
  });
});

describe("raftwal wal on a damaged directory", () => {
  async function activeSegment(dir: string): Promise<{ path: string; committedBytes: number }> {
    const verified = await verifyWal(join(dir, "wal"), fs);
    const last = verified.segments[verified.segments.length - 1];
    return { path: join(dir, "wal", last.name), committedBytes: last.committedBytes };
  }

  it("a torn tail: verify exits 2 naming segment and offset; repair cuts it (saving the bytes); verify is then healthy", async () => {
    const dir = await makeNodeDirectory("torn");
    const { path, committedBytes } = await activeSegment(dir);
    // Half a record after the last complete batch: an interrupted write.
    const bytes = await readFile(path);
    bytes.set([1, 0, 0, 0, 64, 0, 0, 0, 9, 9, 9], committedBytes);
    await writeFile(path, bytes);
    const verify = await cli(["wal", "verify", dir]);
    expect(verify.code).toBe(2);
    expect(verify.stdout).toMatch(new RegExp(`torn tail \\(repairable\\): WAL segment-0+3\\.wal at byte offset ${committedBytes}: 11 bytes`));
    expect((await cli(["wal", "inspect", dir])).code).toBe(2);
    const json = await cli(["wal", "verify", dir, "--json"]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: "torn-tail", exitCode: 2, wal: { status: "torn-tail", tornTail: { segment: "segment-00000000000000000003.wal", offset: committedBytes, bytes: 11 } } });
    expect(JSON.parse((await cli(["wal", "inspect", dir, "--json"])).stdout).health).toMatchObject({ status: "torn-tail", exitCode: 2 });
    const repair = await cli(["wal", "repair", dir]);
    expect(repair.code).toBe(0);
    expect(repair.stdout).toMatch(new RegExp(`cut the torn tail of segment-0+3\\.wal at byte offset ${committedBytes}: 11 bytes`));
    const saved = join(dir, "wal", `segment-00000000000000000003.wal.torn-${committedBytes}`);
    expect(Array.from(await readFile(saved))).toEqual([1, 0, 0, 0, 64, 0, 0, 0, 9, 9, 9]);
    expect(await cli(["wal", "verify", dir])).toMatchObject({ code: 0 });
    const storage = await openRaftStorage(dir, { wal: { segmentSizeBytes: 64 * 1024 } });
    expect(storage.lastIndex()).toBe(300);
    await storage.close();
  });

  it("corruption: verify exits 3 naming segment, offset and entry; repair refuses and changes nothing", async () => {
    const dir = await makeNodeDirectory("corrupt");
    let target: { segment: string; offset: number } | undefined;
    for await (const record of scanWal(join(dir, "wal"), fs)) {
      if (record.type === "entry" && record.index === 130) target = { segment: record.segment, offset: record.offset };
    }
    const path = join(dir, "wal", target!.segment);
    const bytes = await readFile(path);
    bytes[target!.offset + 40] ^= 0x04; // a payload byte of entry 130
    await writeFile(path, bytes);
    const verify = await cli(["wal", "verify", dir]);
    expect(verify.code).toBe(3);
    expect(verify.stdout).toContain(`corrupt: WAL ${target!.segment} at byte offset ${target!.offset}`);
    expect(verify.stdout).toMatch(/entry 130/);
    const before = await readdir(join(dir, "wal"));
    const repair = await cli(["wal", "repair", dir]);
    expect(repair.code).toBe(3);
    expect(repair.stderr).toMatch(/^raftwal: refusing to repair [^\n]*corrupt, not torn[^\n]*\n$/);
    expect(await readdir(join(dir, "wal"))).toEqual(before);
    expect(Buffer.compare(await readFile(path), bytes)).toBe(0);
    expect((await cli(["wal", "inspect", dir])).code).toBe(3);
    const json = await cli(["wal", "verify", dir, "--json"]);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: "corrupt", exitCode: 3, wal: { status: "corrupt", corruption: { segment: target!.segment, offset: target!.offset, indexes: [130] } } });
    const inspected = JSON.parse((await cli(["wal", "inspect", dir, "--json"])).stdout);
    expect(inspected).toMatchObject({ log: null, configuration: { source: "unknown" }, health: { status: "corrupt", exitCode: 3 } });
    expect((await cli(["wal", "dump", dir, "--from", "130", "--to", "130", "--type", "entry"])).stdout).toMatch(/CORRUPT \(/);
  });

  it("a damaged hard-state file or snapshot makes verify exit 3 and says which", async () => {
    const dir = await makeNodeDirectory("hardstate");
    const hardState = join(dir, "hardstate", "hardstate");
    const bytes = await readFile(hardState);
    bytes[13] ^= 1;
    await writeFile(hardState, bytes);
    const verify = await cli(["wal", "verify", dir]);
    expect(verify.code).toBe(3);
    expect(verify.stdout).toMatch(/corrupt: hard-state file .*hardstate: checksum mismatch/);
    const other = await makeNodeDirectory("snapshot");
    const snapshot = join(other, "snap", "snapshot-00000000000000000100-00000000000000000001.snap");
    await appendFile(snapshot, "x");
    const run = await cli(["wal", "verify", other]);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/corrupt: snapshot snapshot-0+100-0+1\.snap: /);
  });
});

describe("raftwal wal verify on a damaged directory tells what a repair from peers would keep and fetch", () => {
  /** Every file of `dir` with its bytes: verify must leave them all as they were. */
  async function contents(dir: string): Promise<Map<string, string>> {
    const files = new Map<string, string>();
    for (const name of await readdir(dir, { recursive: true, withFileTypes: true })) {
      if (name.isFile()) files.set(join(name.parentPath, name.name), (await readFile(join(name.parentPath, name.name))).toString("base64"));
    }
    return files;
  }

  /**
   * Runs verify (text and --json, checking it modifies nothing), then opens a copy of the
   * directory in repair mode, as a node would: the plan must be what that open does.
   */
  async function verifyThenRepair(dir: string): Promise<{ text: Run; plan: Record<string, any>; opened: { lastIndex: number; snapshotIndex: number; damage: unknown } }> {
    const before = await contents(dir);
    const text = await cli(["wal", "verify", dir]);
    const json = await cli(["wal", "verify", dir, "--json"]);
    expect(await contents(dir)).toEqual(before);
    expect(json.code).toBe(text.code);
    const plan = JSON.parse(json.stdout).repair;
    const copy = `${dir}-opened`;
    await cp(dir, copy, { recursive: true });
    const storage = await openRaftStorage(copy, { onCorruption: "repair", wal: { segmentSizeBytes: 64 * 1024 } });
    const opened = { lastIndex: storage.lastIndex(), snapshotIndex: storage.snapshotMeta().index, damage: storage.damage() };
    await storage.close();
    return { text, plan, opened };
  }

  /** Flips `mask` in byte `byteInRecord` of entry `index`'s record (by default a payload byte). */
  async function flipEntryByte(dir: string, index: number, byteInRecord = 40, mask = 0x10): Promise<{ segment: string; offset: number }> {
    let found: { segment: string; offset: number } | undefined;
    for await (const record of scanWal(join(dir, "wal"), fs)) {
      if (record.type === "entry" && record.index === index) found = { segment: record.segment, offset: record.offset };
    }
    const path = join(dir, "wal", found!.segment);
    const bytes = await readFile(path);
    bytes[found!.offset + byteInRecord] ^= mask;
    await writeFile(path, bytes);
    return found!;
  }

  async function flipHardStateByte(dir: string): Promise<void> {
    const path = join(dir, "hardstate", "hardstate");
    const bytes = await readFile(path);
    bytes[13] ^= 1;
    await writeFile(path, bytes);
  }

  it("a flipped byte mid-batch in a sealed segment: the log is kept up to the batch before it, the rest fetched up to the highest index an intact record names", async () => {
    const dir = await makeNodeDirectory("plan-wal");
    const damaged = await flipEntryByte(dir, 130); // the batch 121..150, in the second segment
    const { text, plan, opened } = await verifyThenRepair(dir);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain('repair: a node started with onStorageCorruption "repair" (the default) would\n');
    expect(text.stdout).toContain("  keep its log up to index 120 (the WAL's intact prefix, up to the last whole batch before the damage)\n");
    expect(text.stdout).toContain("  fetch entries 121..300 again from the leader (300: the highest index an intact WAL record or a segment header names)");
    expect(text.stdout).toContain("  keep its term and vote\n");
    expect(text.stdout).toContain(`  set aside (renamed or copied to *.damaged*, never deleted): wal/${damaged.segment} from byte offset ${damaged.offset}, wal/segment-00000000000000000003.wal, wal/segment-00000000000000000004.wal\n`); // 4: the blank spare
    expect(plan).toMatchObject({
      keptToIndex: 120,
      fetch: { fromIndex: 121, toIndex: 300 },
      termAndVote: "kept",
      snapshot: null,
      log: { segment: damaged.segment, offset: damaged.offset, firstLostIndex: 130, lastKnownIndex: 300, damagedEntries: [{ index: 130, term: 1 }] },
    });
    expect(opened).toEqual({ lastIndex: 120, snapshotIndex: 100, damage: { lostFromIndex: 121, lostToIndex: 300, hardStateLost: false } });
  });

  it("a flipped byte in the active segment: the records past the damage still name how far the log went", async () => {
    const dir = await makeNodeDirectory("plan-active");
    await flipEntryByte(dir, 280); // the batch 271..300, the last one; the hard state's commit is 250
    const { text, plan, opened } = await verifyThenRepair(dir);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain("  fetch entries 271..300 again from the leader (300: the highest index an intact WAL record or a segment header names)");
    expect(plan).toMatchObject({ keptToIndex: 270, fetch: { fromIndex: 271, toIndex: 300 }, log: { firstLostIndex: 280, lastKnownIndex: 300 } });
    expect(opened).toEqual({ lastIndex: 270, snapshotIndex: 100, damage: { lostFromIndex: 271, lostToIndex: 300, hardStateLost: false } });
  });

  it("a flipped bit in an entry's header index: the damaged header names nothing, the fetch ends where intact records say", async () => {
    const dir = await makeNodeDirectory("plan-header");
    await flipEntryByte(dir, 130, 14, 1 << 3); // byte 14, bit 3: the index becomes 2^51 + 130
    const { text, plan, opened } = await verifyThenRepair(dir);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain(`(index ${2 ** 51 + 130}, term 1, where the log expected index 130: the header is damaged too)`);
    expect(text.stdout).toContain("  fetch entries 121..300 again from the leader (300: the highest index an intact WAL record or a segment header names)");
    expect(plan).toMatchObject({ keptToIndex: 120, fetch: { fromIndex: 121, toIndex: 300 }, log: { firstLostIndex: 130, lastKnownIndex: 300, damagedEntries: [] } });
    expect(opened).toEqual({ lastIndex: 120, snapshotIndex: 100, damage: { lostFromIndex: 121, lostToIndex: 300, hardStateLost: false } });
  });

  it("a damaged hard state: the log is kept whole, term and vote are relearned", async () => {
    const dir = await makeNodeDirectory("plan-hardstate");
    await flipHardStateByte(dir);
    const { text, plan, opened } = await verifyThenRepair(dir);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain("  keep its log up to index 300 (nothing in it is damaged)\n");
    expect(text.stdout).toContain("  relearn its term and vote from the voters before it votes again (the hard state is damaged)\n");
    expect(text.stdout).not.toMatch(/fetch entries/);
    expect(plan).toMatchObject({ keptToIndex: 300, fetch: null, termAndVote: "relearned", setAside: ["hardstate/hardstate"] });
    expect(opened).toEqual({ lastIndex: 300, snapshotIndex: 100, damage: { lostFromIndex: 0, lostToIndex: 300, hardStateLost: true } });
  });

  it("the newest snapshot damaged with the log compacted to it: no valid snapshot at N, restart from the older one with an empty log", async () => {
    const dir = await makeNodeDirectory("plan-snapshot");
    const storage = await openRaftStorage(dir, { wal: { segmentSizeBytes: 64 * 1024 } });
    await storage.createSnapshot({ index: 200, config: clusterConfigOf([1, 2, 3]) }, [new TextEncoder().encode("newer snapshot payload")]);
    await storage.close();
    await appendFile(join(dir, "snap", "snapshot-00000000000000000200-00000000000000000001.snap"), "x");
    const { text, plan, opened } = await verifyThenRepair(dir);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain("  restart from the snapshot at index 100 (term 1) with an empty log: no valid snapshot at 200 (the log was compacted to 200)\n");
    expect(text.stdout).toContain("  fetch entries 101..300 again from the leader (300: the WAL's last index, set aside whole)");
    expect(plan).toMatchObject({ keptToIndex: 100, fetch: { fromIndex: 101, toIndex: 300 }, snapshot: { index: 100, term: 1, logRestartsEmpty: true, compactedIndex: 200 } });
    expect(opened).toEqual({ lastIndex: 100, snapshotIndex: 100, damage: { lostFromIndex: 101, lostToIndex: 300, hardStateLost: false } });
  });

  it("the only snapshot damaged with the log compacted to it: restart with no snapshot", async () => {
    const dir = await makeNodeDirectory("plan-only-snapshot");
    await appendFile(join(dir, "snap", "snapshot-00000000000000000100-00000000000000000001.snap"), "x");
    const { text, plan, opened } = await verifyThenRepair(dir);
    expect(text.stdout).toContain("  restart from no snapshot with an empty log: no valid snapshot at 100 (the log was compacted to 100)\n");
    expect(plan).toMatchObject({ keptToIndex: 0, fetch: { fromIndex: 1, toIndex: 300 } });
    expect(opened).toEqual({ lastIndex: 0, snapshotIndex: 0, damage: { lostFromIndex: 1, lostToIndex: 300, hardStateLost: false } });
  });

  it("the newest snapshot damaged but the log not compacted past the older one: nothing lost", async () => {
    const dir = await makeNodeDirectory("plan-snapshot-newer");
    // A file named as a snapshot at 250 holding the one at 100: its metadata does not match its name.
    const newer = join(dir, "snap", "snapshot-00000000000000000250-00000000000000000001.snap");
    await writeFile(newer, await readFile(join(dir, "snap", "snapshot-00000000000000000100-00000000000000000001.snap")));
    const { text, plan, opened } = await verifyThenRepair(dir);
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/corrupt: snapshot snapshot-0+250-0+1\.snap: /);
    expect(text.stdout).toContain("  restart from the snapshot at index 100 (term 1), the newest valid one, and keep its log up to index 300: the newest snapshot is damaged; the log still holds what it covered\n");
    expect(plan).toMatchObject({ keptToIndex: 300, fetch: null, termAndVote: "kept", snapshot: { index: 100, logRestartsEmpty: false } });
    expect(opened).toMatchObject({ lastIndex: 300, snapshotIndex: 100 });
    expect(opened.damage).toBeUndefined();
  });

  it("a commit index ahead of the log: verify calls it corrupt, and the entries up to it are fetched", async () => {
    const dir = await makeNodeDirectory("plan-commit");
    await writeFile(join(dir, "hardstate", "hardstate"), encodeHardStateFile({ term: 1, vote: 2, commit: 340 }));
    const { text, plan, opened } = await verifyThenRepair(dir);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain("corrupt: the hard state's commit index 340 is ahead of the log's last index 300: acknowledged entries are missing\n");
    expect(text.stdout).toContain("  fetch entries 301..340 again from the leader (340: the hard state's commit index)");
    expect(plan).toMatchObject({ keptToIndex: 300, fetch: { fromIndex: 301, toIndex: 340 }, commitAhead: 340 });
    expect(opened).toEqual({ lastIndex: 300, snapshotIndex: 100, damage: { lostFromIndex: 301, lostToIndex: 340, hardStateLost: false } });
  });

  it("WAL and hard state damaged at once", async () => {
    const dir = await makeNodeDirectory("plan-both");
    await flipEntryByte(dir, 61);
    await flipHardStateByte(dir);
    const { plan, opened } = await verifyThenRepair(dir);
    // 61 is in the batch 61..90, before the snapshot at 100: the log keeps the snapshot.
    expect(plan).toMatchObject({ keptToIndex: 100, fetch: { fromIndex: 101, toIndex: 300 }, termAndVote: "relearned" });
    expect(opened).toEqual({ lastIndex: 100, snapshotIndex: 100, damage: { lostFromIndex: 101, lostToIndex: 300, hardStateLost: true } });
  });

  it("damage before the compact record that names where the log starts: the whole WAL goes, the log restarts at the snapshot", async () => {
    const dir = join(root, "plan-base");
    const storage = await openRaftStorage(dir, { wal: { segmentSizeBytes: 64 * 1024 } });
    for (let from = 1; from <= 600; from += 30) await storage.append(entries(from, from + 29, 1, 500));
    await storage.saveHardState({ term: 1, vote: 2, commit: 600 });
    // The compact record goes to the active segment; the segments up to 240 are compacted away (kept as recycled-*.wal spares).
    await storage.createSnapshot({ index: 250, config: clusterConfigOf([1, 2, 3]) }, [new TextEncoder().encode("s")]);
    await storage.close();
    expect((await readdir(join(dir, "wal"))).filter((name) => name.startsWith("segment-") && name.endsWith(".wal"))[0]).toBe("segment-00000000000000000003.wal");
    await flipEntryByte(dir, 300);
    const { text, plan, opened } = await verifyThenRepair(dir);
    expect(text.code).toBe(3);
    expect(plan).toMatchObject({ keptToIndex: 250, fetch: { fromIndex: 251, toIndex: 600 } });
    expect(plan.setAside[0]).toBe("wal/segment-00000000000000000003.wal from byte offset 0");
    expect(opened).toEqual({ lastIndex: 250, snapshotIndex: 250, damage: { lostFromIndex: 251, lostToIndex: 600, hardStateLost: false } });
  });

  it("a directory whose repair an earlier start left unfinished: verify exits 0 and says what the node still lacks", async () => {
    const dir = await makeNodeDirectory("plan-marker");
    await writeRepairMarker(fs, dir, { logLost: true, lostToIndex: 320, hardStateLost: true });
    const { text, plan, opened } = await verifyThenRepair(dir);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("healthy\n");
    expect(text.stdout).toContain("  finish the repair an earlier start began (its REPAIRING mark: log entries lost up to index 320, term and vote lost)\n");
    expect(plan).toMatchObject({ keptToIndex: 300, fetch: { fromIndex: 301, toIndex: 320 }, termAndVote: "relearned", earlierRepair: { lostToIndex: 320 } });
    expect(opened.damage).toEqual({ lostFromIndex: 301, lostToIndex: 320, hardStateLost: true });
  });

  it("a healthy or torn directory has no plan, and a WAL directory alone points to the data directory", async () => {
    const dir = await makeNodeDirectory("plan-none");
    expect(JSON.parse((await cli(["wal", "verify", dir, "--json"])).stdout).repair).toBeNull();
    await flipEntryByte(dir, 130);
    const walOnly = await cli(["wal", "verify", join(dir, "wal")]);
    expect(walOnly.code).toBe(3);
    expect(walOnly.stdout).toContain("repair: verify the node's data directory (not its WAL directory alone) to see what a repair from peers would keep and fetch\n");
    expect(JSON.parse((await cli(["wal", "verify", join(dir, "wal"), "--json"])).stdout).repair).toBeNull();
  });
});

describe("raftwal wal on a directory a live process holds", () => {
  it("repair refuses with one line (WAL_ERR_LOCKED, exit 1) and changes nothing; inspect, dump and verify read it after a one-line warning", async () => {
    const dir = await makeNodeDirectory("locked");
    const storage = await openRaftStorage(dir, { wal: { segmentSizeBytes: 64 * 1024 } });
    try {
      const before = await readdir(join(dir, "wal"));
      for (const argument of [dir, join(dir, "wal")]) {
        const repair = await cli(["wal", "repair", argument]);
        expectOneLineError(repair, /^raftwal: data directory \S+ is in use by this process \(pid \d+\), which has it open already: one process at a time may open it; stop that process first \[WAL_ERR_LOCKED\]\n$/);
        expect(repair.stdout).toBe("");
      }
      expect(await readdir(join(dir, "wal"))).toEqual(before);
      const warning = `raftwal: warning: ${dir} is in use by process ${process.pid} (a running node?); reading it anyway, and what it writes meanwhile may read as a torn tail\n`;
      for (const argv of [["inspect", dir], ["verify", dir], ["dump", dir, "--from", "300"], ["verify", join(dir, "wal")]]) {
        const run = await cli(["wal", ...argv]);
        expect(run, argv.join(" ")).toMatchObject({ code: 0, stderr: warning });
        expect(run.stdout).not.toBe("");
      }
    } finally {
      await storage.close();
    }
    expect(await cli(["wal", "verify", dir])).toMatchObject({ code: 0, stderr: "" });
    expect((await cli(["wal", "repair", dir])).stdout).toMatch(/nothing to repair/);
  });
});

describe("raftwal wal errors are one line, never a stack trace", () => {
  it("a path that does not exist", async () => {
    expectOneLineError(await cli(["wal", "inspect", join(root, "missing")]), /no such file or directory/);
  });

  it("an empty directory", async () => {
    const empty = join(root, "empty");
    await mkdir(empty, { recursive: true });
    expectOneLineError(await cli(["wal", "verify", empty]), /is empty: no raftwal WAL segments/);
  });

  it("a directory without segments", async () => {
    const other = join(root, "other");
    await mkdir(other, { recursive: true });
    await writeFile(join(other, "notes.txt"), "hello");
    expectOneLineError(await cli(["wal", "dump", other]), /holds no raftwal WAL segments/);
  });

  it("a file instead of a directory", async () => {
    const file = join(root, "file.txt");
    await writeFile(file, "hello");
    expectOneLineError(await cli(["wal", "inspect", file]), /is a file, not a node data directory or a WAL directory/);
  });

  it("a file named like a segment that is not one", async () => {
    const fake = join(root, "fake");
    await mkdir(fake, { recursive: true });
    await writeFile(join(fake, "segment-00000000000000000001.wal"), "this is not a raftwal segment, just some text that is long enough\n".repeat(4));
    for (const command of ["inspect", "verify", "dump", "repair"]) {
      expectOneLineError(await cli(["wal", command, fake]), /is not a raftwal segment/);
    }
  });

  it("bad arguments", async () => {
    const dir = join(root, "empty");
    expectOneLineError(await cli(["wal", "dump", dir, "--from", "abc"]), /--from <N>.*'abc' is invalid/);
    expectOneLineError(await cli(["wal", "dump", dir, "--to", "-3"]), /--to <M>/);
    expectOneLineError(await cli(["wal", "dump", dir, "--type", "bogus"]), /--type <T>.*'bogus' is invalid/);
    expectOneLineError(await cli(["wal", "dump", dir, "--from", "5", "--to", "2"]), /--from 5 is above --to 2/);
    expectOneLineError(await cli(["wal", "verify"]), /missing required argument 'DIR'/);
    expectOneLineError(await cli(["wal", "frobnicate", dir]), /unknown command 'frobnicate'/);
  });

  it("help is not an error", async () => {
    const run = await cli(["wal", "--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/inspect[^]*dump[^]*verify[^]*repair/);
  });
});

describe("the real binary", () => {
  // npm test builds dist/ first (and npm ci runs the prepare build), so the compiled CLI exists here.
  const bin = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

  it("runs as `raftwal` through its shebang, with the node heap flags, and reports exit codes", async () => {
    expect(existsSync(bin), `${bin} is missing: run npm run build`).toBe(true);
    const shebang = readFileSync(bin, "utf8").split("\n")[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${NODE_HEAP_FLAGS.join(" ")}`);
    const dir = await makeNodeDirectory("binary");
    // As the kernel runs it: the interpreter, the rest of the line as one argument, the script.
    const [interpreter, rest] = [shebang.slice(2, shebang.indexOf(" ")), shebang.slice(shebang.indexOf(" ") + 1)];
    const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
    const healthy = spawnSync(interpreter, [rest, bin, "wal", "verify", dir], { encoding: "utf8", env });
    expect(healthy.status, healthy.stderr).toBe(0);
    expect(healthy.stdout).toMatch(/healthy/);
    const missing = spawnSync(process.execPath, [bin, "wal", "verify", join(root, "nope")], { encoding: "utf8" });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^raftwal: [^\n]+\n$/);
  });
});
