/**
 * The KV HTTP API's answers: success bodies, and error bodies `{"error": code, "message"}`
 * whose code is registered and whose status comes from the one table (http-errors.ts).
 * One in-process node on 127.0.0.1 (free ports) over the in-memory file system.
 */
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
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
  for (let i = 0; i < 500 && node.node.status().role !== "leader"; i++) await sleep(10);
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

/** A PUT whose body goes out in `chunks` with chunked transfer encoding (no content-length); resolves to the status. */
function streamed(path: string, chunks: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port: node.apiAddress.port, method: "PUT", path }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
    });
    request.on("error", reject);
    const writeNext = (k: number): void => {
      if (k === chunks.length) return void request.end();
      if (request.destroyed) return;
      request.write(chunks[k], () => writeNext(k + 1));
    };
    writeNext(0);
  });
}

/** A request whose path goes out exactly as written (fetch and URL would normalise dot segments). */
function raw(method: string, path: string, body?: string | Buffer): Promise<{ status: number; body: Record<string, unknown> & { text: string } }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port: node.apiAddress.port, method, path }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          parsed = {};
        }
        resolve({ status: response.statusCode ?? 0, body: { ...parsed, text } });
      });
    });
    request.on("error", reject);
    request.end(body);
  });
}

describe("keys, limits and query parameters", () => {
  it("takes the key from the raw path: encoded '.' and '..' are keys like any other; an unencoded dot segment is refused, never rewritten", async () => {
    await client.put(".", "dot");
    await client.put("..", "dotdot");
    await client.put("a/../b", "not b");
    expect((await client.get("."))?.toString()).toBe("dot");
    expect((await client.get(".."))?.toString()).toBe("dotdot");
    expect((await client.get("a/../b"))?.toString()).toBe("not b");
    expect(node.kv.get("b")).toBeUndefined();
    expect((await raw("GET", "/kv/%2E%2E")).body.text).toBe("dotdot");
    for (const path of ["/kv/a/../b", "/kv/./b", "/kv/a/.", "/kv/.."]) {
      const refused = await raw("PUT", path, "y");
      expect(refused.status, path).toBe(400);
      expect(refused.body).toMatchObject({ error: "KV_ERR_BAD_REQUEST", message: expect.stringContaining("percent-encode its dots (%2E)") });
    }
    expect(node.kv.get("b")).toBeUndefined();
  });

  it("answers a value over the limit with 413 naming the value limit, in a PUT as in a CAS", async () => {
    const put = await raw("PUT", "/kv/huge", Buffer.alloc(2 * 1024 * 1024, 1));
    expect(put).toMatchObject({ status: 413, body: { error: "KV_ERR_TOO_LARGE", message: "the value is larger than its limit of 1,040,384 bytes" } });
    const casValue = await raw("POST", "/kv/huge?cas", JSON.stringify({ expect: null, value: "x".repeat(VALUE_BYTES_MAX + 1) }));
    expect(casValue).toMatchObject({ status: 413, body: { error: "KV_ERR_TOO_LARGE", message: "the CAS value is larger than its limit of 1,040,384 bytes" } });
    const casBody = await raw("POST", "/kv/huge?cas", JSON.stringify({ expect: "x".repeat(VALUE_BYTES_MAX + 1024), value: "x".repeat(VALUE_BYTES_MAX) }));
    expect(casBody).toMatchObject({ status: 413, body: { error: "KV_ERR_TOO_LARGE", message: expect.stringMatching(/^the CAS body \(JSON with expect and value\) is larger than its limit of 2,081,792 bytes$/) } });
    expect(node.kv.get("huge")).toBeUndefined();
  });

  it("takes a plain key (no escapes, no dots) and one with dots inside a segment exactly as sent", async () => {
    expect(await raw("PUT", "/kv/plain/key-1", "p")).toMatchObject({ status: 200 });
    expect(await raw("PUT", "/kv/v1.2/a..b", "d")).toMatchObject({ status: 200 });
    expect(new TextDecoder().decode(node.kv.get("plain/key-1"))).toBe("p");
    expect(new TextDecoder().decode(node.kv.get("v1.2/a..b"))).toBe("d");
    expect(await raw("PUT", `/kv/${"k".repeat(4 * 1024 + 1)}`, "x")).toMatchObject({ status: 400, body: { message: "the key is longer than 4096 bytes" } });
  });

  it("reads a streamed body (no content-length) in several chunks, and ends the connection of one that passes the limit", async () => {
    expect(await streamed("/kv/chunked", [Buffer.from("abc"), Buffer.from("def"), Buffer.alloc(64 * 1024, 0x61)])).toBe(200);
    expect(node.kv.get("chunked")?.length).toBe(6 + 64 * 1024);
    expect(Buffer.from(node.kv.get("chunked")!.subarray(0, 6)).toString()).toBe("abcdef");
    const chunk = Buffer.alloc(256 * 1024, 0x62);
    const over = await streamed("/kv/chunked-huge", Array.from({ length: 5 }, () => chunk)).catch((error: unknown) => error);
    expect(over).toBeInstanceOf(Error);
    expect(node.kv.get("chunked-huge")).toBeUndefined();
    // The node goes on serving.
    expect(await raw("PUT", "/kv/after-huge", "ok")).toMatchObject({ status: 200 });
  });

  it("applies nothing when the client goes away in the middle of a body", async () => {
    await new Promise<void>((resolve) => {
      const request = http.request({ host: "127.0.0.1", port: node.apiAddress.port, method: "PUT", path: "/kv/half", headers: { "content-length": "1000" } });
      request.on("error", () => resolve());
      request.write(Buffer.alloc(400, 1), () => setTimeout(() => request.destroy(), 50));
      request.on("close", () => resolve());
    });
    expect(await raw("PUT", "/kv/after-half", "ok")).toMatchObject({ status: 200 });
    expect(node.kv.get("half")).toBeUndefined();
  });

  it("refuses a lone surrogate in a CAS value as in a key, and a CAS body that is not UTF-8", async () => {
    const lone = await raw("POST", "/kv/s?cas", '{"expect": null, "value": "\\ud800"}');
    expect(lone).toMatchObject({ status: 400, body: { error: "KV_ERR_BAD_REQUEST", message: "the CAS value holds a lone surrogate: it is not valid Unicode" } });
    expect(await raw("PUT", "/kv/%ED%A0%80", "v")).toMatchObject({ status: 400, body: { error: "KV_ERR_BAD_REQUEST" } });
    const latin1 = Buffer.concat([Buffer.from('{"expect": null, "value": "'), Buffer.from([0xe9]), Buffer.from('"}')]);
    expect(await raw("POST", "/kv/s?cas", latin1)).toMatchObject({ status: 400, body: { error: "KV_ERR_BAD_REQUEST" } });
    expect(node.kv.get("s")).toBeUndefined();
    // A well-formed pair is fine.
    expect(await raw("POST", "/kv/s?cas", JSON.stringify({ expect: null, value: "\u{1F600}" }))).toMatchObject({ status: 200 });
    expect(new TextDecoder().decode(node.kv.get("s"))).toBe("\u{1F600}");
  });

  it("takes stale=true or stale=false only, and refuses parameters a route does not take", async () => {
    await client.put("q", "1");
    expect(await raw("GET", "/kv/q?stale=maybe")).toMatchObject({ status: 400, body: { message: "?stale=maybe: stale must be true or false" } });
    expect((await raw("GET", "/kv/q?stale=false")).body.text).toBe("1");
    expect((await raw("GET", "/kv/q?stale=true")).body.text).toBe("1");
    expect(await raw("GET", "/kv/q?stal=true")).toMatchObject({ status: 400, body: { message: "unknown query parameter 'stal' for GET /kv/{key}; it takes ?stale" } });
    expect(await raw("PUT", "/kv/q?cas", "2")).toMatchObject({ status: 400, body: { error: "KV_ERR_BAD_REQUEST" } });
    expect(await raw("GET", "/status?verbose=1")).toMatchObject({ status: 400 });
    expect(await raw("GET", "/members?stale=yes")).toMatchObject({ status: 400 });
  });

  it("GET /kv?prefix= lists keys in the order of their bytes, a page at a time, with values (base64 when not UTF-8)", async () => {
    for (const key of ["l/3", "l/1", "l/é", "l/z", "l/10", "l/2"]) await client.put(key, `v${key}`);
    await client.put("l/bin", new Uint8Array([0xff, 0x00]));
    await client.put("m/1", "other prefix");
    const keys: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 10; page++) {
      const listed = await client.list("l/", { limit: 3, continue: token });
      expect(listed.keys.length).toBeLessThanOrEqual(3);
      keys.push(...listed.keys.map((item) => item.key));
      if (!listed.more) break;
      token = listed.continue;
    }
    expect(keys).toEqual(["l/1", "l/10", "l/2", "l/3", "l/bin", "l/z", "l/é"]);
    const all = await client.list("l/");
    expect(all.more).toBe(false);
    expect(all.continue).toBeUndefined();
    expect(all.keys.find((item) => item.key === "l/bin")).toEqual({ key: "l/bin", valueBase64: "/wA=" });
    expect(all.keys.find((item) => item.key === "l/z")).toEqual({ key: "l/z", value: "vl/z" });
    expect((await client.list("l/", { keysOnly: true, limit: 1 })).keys).toEqual([{ key: "l/1" }]);
    expect(await raw("GET", "/kv?prefix=l/&continue=%%%")).toMatchObject({ status: 400 });
    expect(await raw("GET", "/kv?prefix=l/&limit=0")).toMatchObject({ status: 400, body: { message: "?limit=0: limit must be a whole number from 1 to 10000" } });
    expect(await raw("POST", "/kv?prefix=l/")).toMatchObject({ status: 405 });
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
