/**
 * readBody and drain over a stand-in request (a PassThrough with headers): chunks joined,
 * the limit enforced while streaming, and a request that ends early rejected, not left hanging.
 */
import type http from "node:http";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { drain, readBody } from "../../src/kv/http-io.js";

function request(headers: Record<string, string> = {}): PassThrough & http.IncomingMessage {
  return Object.assign(new PassThrough(), { headers }) as unknown as PassThrough & http.IncomingMessage;
}

const LIMIT = { bytesMax: 10, what: "the test body" };

describe("readBody", () => {
  it("joins the chunks of a body within its limit", async () => {
    const body = request();
    const read = readBody(body, LIMIT);
    body.write("hello ");
    body.end("body");
    expect(Buffer.from(await read).toString()).toBe("hello body");
  });

  it("refuses an announced length over the limit before reading", async () => {
    await expect(readBody(request({ "content-length": "11" }), LIMIT)).rejects.toMatchObject({ code: "KV_ERR_TOO_LARGE", message: "the test body is larger than its limit of 10 bytes" });
  });

  it("refuses a streamed body as soon as it passes the limit, and stops reading it", async () => {
    const body = request();
    const read = readBody(body, LIMIT);
    body.write("0123456789");
    body.write("x");
    await expect(read).rejects.toMatchObject({ code: "KV_ERR_TOO_LARGE" });
    expect(body.destroyed).toBe(true);
  });

  it("rejects when the request ends before its body does", async () => {
    const body = request();
    const read = readBody(body, LIMIT);
    body.write("01");
    body.destroy();
    await expect(read).rejects.toMatchObject({ code: "KV_ERR_BAD_REQUEST", message: "the request ended before its body did" });
  });

  it("rejects at once for a request already gone before it is read", async () => {
    const gone = request();
    gone.destroy();
    await new Promise((resolve) => setImmediate(resolve)); // its 'close' has been emitted
    await expect(readBody(gone, LIMIT)).rejects.toMatchObject({ code: "KV_ERR_BAD_REQUEST" });
    const failed = request();
    failed.on("error", () => undefined);
    failed.destroy(new Error("reset by peer"));
    await new Promise((resolve) => setImmediate(resolve));
    await expect(drain(failed)).rejects.toThrow("reset by peer");
  });

  it("passes on the request's own error", async () => {
    const body = request();
    const read = readBody(body, LIMIT);
    body.destroy(new Error("aborted"));
    await expect(read).rejects.toThrow("aborted");
  });
});

describe("drain", () => {
  it("resolves once the body is consumed, and at once for one already read", async () => {
    const body = request();
    const drained = drain(body);
    body.end(Buffer.alloc(1000));
    await expect(drained).resolves.toBeUndefined();
    expect(body.readableEnded).toBe(true);
    await expect(drain(body)).resolves.toBeUndefined();
  });
});
