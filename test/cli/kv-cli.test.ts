/**
 * `raftwal kv` run in-process through runCli against an in-process node (TCP on
 * 127.0.0.1, the in-memory file system): one exit-code rule for every command (0 done, 5
 * the key is absent, 6 a CAS mismatch, 1 an error, with one line on stderr), values from
 * stdin and from a file, `kv list`, and errors that name the endpoint at fault.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import type { KvNode } from "../../src/kv/kv-node.js";
import { raftwal, startInProcessCluster } from "./helpers.js";

let node: KvNode;
let endpoint: string;
let dir: string;

const kv = (...argv: string[]) => raftwal(["kv", "--endpoints", endpoint, ...argv]);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "raftwal-kv-cli-"));
  [node] = await startInProcessCluster(1, { clusterId: "kv-cli" });
  endpoint = `http://127.0.0.1:${node.apiAddress.port}`;
});

afterAll(async () => {
  await node?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("raftwal kv: one exit-code rule", () => {
  it("0 when done; 5 with one line naming the key when it is absent (get, del, cas expecting a value); 6 on a CAS mismatch", async () => {
    expect(await kv("put", "k", "v1")).toEqual({ code: 0, stdout: "OK\n", stderr: "" });
    expect(await kv("get", "k")).toEqual({ code: 0, stdout: "v1\n", stderr: "" });
    const absent = { code: 5, stdout: "", stderr: 'raftwal: no key "missing" [KV_ERR_NOT_FOUND]\n' };
    expect(await kv("get", "missing")).toEqual(absent);
    expect(await kv("del", "missing")).toEqual(absent);
    expect(await kv("cas", "missing", "x", "y")).toEqual(absent);
    expect(await kv("cas", "k", "other", "v2")).toEqual({ code: 6, stdout: 'MISMATCH (current: "v1")\n', stderr: "" });
    expect(await kv("cas", "k", "v1", "v2")).toEqual({ code: 0, stdout: "OK\n", stderr: "" });
    expect(await kv("cas", "fresh", "--absent", "first")).toEqual({ code: 0, stdout: "OK\n", stderr: "" });
    expect(await kv("cas", "fresh", "--absent", "second")).toEqual({ code: 6, stdout: 'MISMATCH (current: "first")\n', stderr: "" });
    expect(await kv("del", "k")).toEqual({ code: 0, stdout: "OK\n", stderr: "" });
  });

  it("put reads the value from stdin (-) or a file (--file), byte for byte", async () => {
    expect((await raftwal(["kv", "--endpoints", endpoint, "put", "from-stdin", "-"], "line one\nline two\n")).code).toBe(0);
    expect((await kv("get", "from-stdin")).stdout).toBe("line one\nline two\n\n");
    expect(node.kv.get("from-stdin")).toEqual(new TextEncoder().encode("line one\nline two\n"));
    const bytes = Buffer.from([0, 1, 2, 254, 255, 10]);
    await writeFile(join(dir, "value.bin"), bytes);
    expect((await kv("put", "from-file", "--file", join(dir, "value.bin"))).code).toBe(0);
    expect(Buffer.from(node.kv.get("from-file")!)).toEqual(bytes);
    for (const [argv, message] of [
      [["put", "k"], /put needs a value/],
      [["put", "k", "v", "--file", join(dir, "value.bin")], /give the value or --file, not both/],
      [["put", "k", "--file", join(dir, "nope")], /cannot read .*nope: ENOENT/],
    ] as const) {
      const run = await kv(...argv);
      expect(run.code, argv.join(" ")).toBe(1);
      expect(run.stderr).toMatch(/^raftwal: [^\n]+\n$/);
      expect(run.stderr).toMatch(message);
    }
  });

  it("list prints the keys with a prefix in order (values with --values, JSON lines with --json), every page", async () => {
    for (const key of ["p/b", "p/a", "p/c", "q/a"]) await kv("put", key, `value of ${key}`);
    expect(await kv("list", "p/")).toEqual({ code: 0, stdout: "p/a\np/b\np/c\n", stderr: "" });
    expect((await kv("list", "p/", "--values")).stdout).toBe("p/a\tvalue of p/a\np/b\tvalue of p/b\np/c\tvalue of p/c\n");
    expect((await kv("list", "p/", "--limit", "2")).stdout).toBe("p/a\np/b\n");
    expect((await kv("list", "q/", "--json")).stdout).toBe('{"key":"q/a","value":"value of q/a"}\n');
    expect((await kv("list", "nothing/")).stdout).toBe("");
    expect((await kv("list")).stdout.split("\n")).toContain("q/a");
  });
});

describe("raftwal kv: errors name what is wrong", () => {
  it("an endpoint that is not a URL is named", async () => {
    const run = await raftwal(["kv", "--endpoints", `${endpoint},nonsense`, "get", "k"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^raftwal: option '--endpoints <urls>' argument '[^']+' is invalid\. 'nonsense' is not the URL of a node's API \(http:\/\/HOST:PORT or https:\/\/HOST:PORT\)\n$/);
  });

  it("with every node down, the error names every endpoint and its failure", async () => {
    const [a, b] = [await findFreeBasePort(1), await findFreeBasePort(1)];
    const run = await raftwal(["kv", "--endpoints", `http://127.0.0.1:${a},http://127.0.0.1:${b}`, "--timeout", "1s", "get", "k"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/^raftwal: [^\n]+\n$/);
    expect(run.stderr).toContain(`http://127.0.0.1:${a} (ECONNREFUSED)`);
    expect(run.stderr).toContain(`http://127.0.0.1:${b} (ECONNREFUSED)`);
    expect(run.stderr).toMatch(/no endpoint answered GET \/kv\/k within 1000 ms: .*\[KV_ERR_UNAVAILABLE\]\n$/);
  });
});
