/**
 * The KV HTTP API's answers: success bodies, and error bodies `{"error": code, "message"}`
 * whose code is registered and whose status comes from the one table (http-errors.ts).
 * One in-process node on 127.0.0.1 (free ports) over the in-memory file system.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES, NodeErrorCode, RaftwalError, WalErrorCode } from "../../src/errors.js";
import { KvClient, KvError } from "../../src/kv/client.js";
import { VALUE_BYTES_MAX } from "../../src/kv/command.js";
import { errorAnswer, HTTP_STATUS_BY_CODE } from "../../src/kv/http-errors.js";
import { startKvNode, type KvNode } from "../../src/kv/kv-node.js";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import { silentLogger } from "../../src/node/logger.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";

let node: KvNode;
let base: string;
let client: KvClient;

beforeAll(async () => {
  const port = await findFreeBasePort(1);
  node = await startKvNode({
    id: 1,
    clusterId: "http-api",
    initialClusterState: "new",
    peers: [{ id: 1, host: "127.0.0.1", port, api: { host: "127.0.0.1", port: port + 100 } }],
    dataDir: "/data/node-1",
    storage: { fs: new MemoryFileSystem() },
    tickMs: 10,
    logger: silentLogger,
  });
  base = `http://127.0.0.1:${node.apiAddress.port}`;
  client = new KvClient({ endpoints: [base], operationTimeoutMs: 10_000 });
  // Bounded: a single voter elects itself within a few election timeouts.
  for (let i = 0; i < 500 && node.node.status().role !== "leader"; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(node.node.status().role).toBe("leader");
});

afterAll(async () => {
  client?.close();
  await node?.close();
});

async function answer(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${base}${path}`, { method, body, headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("the KV HTTP API", () => {
  it("answers a write with 200 {\"ok\":true}", async () => {
    expect(await answer("PUT", "/kv/a", "1")).toEqual({ status: 200, body: { ok: true } });
  });

  it("answers errors with the code's status and a {error, message} body", async () => {
    expect(await answer("GET", "/kv/missing")).toEqual({ status: 404, body: { error: "KV_ERR_NOT_FOUND", message: 'no key "missing"' } });
    expect(await answer("DELETE", "/kv/missing")).toMatchObject({ status: 404, body: { error: "KV_ERR_NOT_FOUND" } });
    expect(await answer("GET", "/nowhere")).toMatchObject({ status: 404, body: { error: "KV_ERR_NO_ROUTE" } });
    expect(await answer("PATCH", "/kv/a")).toMatchObject({ status: 405, body: { error: "KV_ERR_METHOD_NOT_ALLOWED" } });
    expect(await answer("POST", "/kv/a", "{}")).toMatchObject({ status: 400, body: { error: "KV_ERR_BAD_REQUEST" } });
    expect(await answer("PUT", "/kv/a", "2", { "x-raftwal-seq": "1" })).toMatchObject({ status: 400, body: { error: "KV_ERR_BAD_REQUEST" } });
  });

  it("answers a CAS mismatch with 409, KV_ERR_CAS_MISMATCH and the current value", async () => {
    await client.put("c", "now");
    expect(await answer("POST", "/kv/c?cas", JSON.stringify({ expect: "before", value: "after" }))).toEqual({
      status: 409,
      body: { error: "KV_ERR_CAS_MISMATCH", message: "the current value differs from expect", current: "now" },
    });
  });

  it("KvClient reads those answers: absent keys, mismatches, and a KvError with the status and code", async () => {
    expect(await client.get("missing")).toBeUndefined();
    expect(await client.delete("missing")).toBe(false);
    await client.put("d", "1");
    expect(await client.cas("d", "0", "2")).toEqual({ ok: false, current: "1" });
    const error = await client.put("big", new Uint8Array(VALUE_BYTES_MAX + 1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KvError);
    expect(error).toBeInstanceOf(RaftwalError);
    expect(error).toMatchObject({ status: 413, code: "KV_ERR_TOO_LARGE" });
  });
});

describe("the HTTP status table", () => {
  it("maps only registered codes, to error statuses", () => {
    const registered = new Set<string>(ERROR_CODES.map((entry) => entry.code));
    for (const [code, status] of HTTP_STATUS_BY_CODE) {
      expect(registered.has(code), code).toBe(true);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
  });

  it("passes other layers' codes through: 503 for a timeout, 500 for one it does not list, KV_ERR_INTERNAL for a plain Error", () => {
    expect(errorAnswer(new RaftwalError(NodeErrorCode.TIMEOUT, "slow"))).toEqual({ status: 503, body: { error: "NODE_ERR_TIMEOUT", message: "slow" } });
    expect(errorAnswer(new RaftwalError(WalErrorCode.FAILED, "disk"))).toEqual({ status: 500, body: { error: "WAL_ERR_FAILED", message: "disk" } });
    expect(errorAnswer(new Error("bug"))).toEqual({ status: 500, body: { error: "KV_ERR_INTERNAL", message: "bug" } });
  });
});
