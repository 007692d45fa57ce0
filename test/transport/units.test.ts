import { describe, expect, it } from "vitest";
import { backoffDelayMs, BACKOFF_DEFAULTS } from "../../src/transport/backoff.js";
import { TransportErrorCode } from "../../src/transport/errors.js";
import { PROTOCOL_VERSION, verifyHandshake } from "../../src/transport/handshake.js";
import { BoundedQueue } from "../../src/transport/queue.js";

describe("backoff", () => {
  const options = { initialDelayMs: 10, delayMsMax: 1_000, jitterRatio: 0.5 };

  it("doubles from the initial delay up to the maximum", () => {
    const noJitter = () => 0;
    expect([1, 2, 3, 4, 7, 8, 50, 10_000].map((attempt) => backoffDelayMs(attempt, options, noJitter))).toEqual([
      10, 20, 40, 80, 640, 1_000, 1_000, 1_000,
    ]);
  });

  it("jitter takes at most jitterRatio off the ceiling and never reaches zero", () => {
    expect(backoffDelayMs(3, options, () => 0.999999)).toBeCloseTo(20, 3);
    expect(backoffDelayMs(3, options, () => 0.5)).toBe(30);
    for (let attempt = 1; attempt < 40; attempt++) {
      const delay = backoffDelayMs(attempt, BACKOFF_DEFAULTS, Math.random);
      expect(delay).toBeGreaterThan(0);
      expect(delay).toBeLessThanOrEqual(BACKOFF_DEFAULTS.delayMsMax);
    }
  });
});

describe("bounded queue", () => {
  const item = (bytes: number) => ({ bytes: Buffer.alloc(bytes) });

  it("refuses an item over the count bound", () => {
    const queue = new BoundedQueue({ itemsMax: 2, bytesMax: 1_000 });
    expect(queue.push(item(1))).toBe(true);
    expect(queue.push(item(1))).toBe(true);
    expect(queue.push(item(1))).toBe(false);
    expect(queue.length).toBe(2);
    queue.shift();
    expect(queue.push(item(1))).toBe(true);
  });

  it("refuses an item over the byte bound, accepts one that fits exactly", () => {
    const queue = new BoundedQueue({ itemsMax: 100, bytesMax: 100 });
    expect(queue.push(item(60))).toBe(true);
    expect(queue.push(item(41))).toBe(false);
    expect(queue.push(item(40))).toBe(true);
    expect(queue.bytes).toBe(100);
    expect(queue.shift()!.bytes.length).toBe(60);
    expect(queue.bytes).toBe(40);
  });

  it("keeps FIFO order across compactions", () => {
    const queue = new BoundedQueue<{ bytes: Buffer; n: number }>({ itemsMax: 10_000, bytesMax: 1e9 });
    const out: number[] = [];
    for (let n = 0; n < 5_000; n++) {
      queue.push({ bytes: Buffer.alloc(1), n });
      if (n % 3 === 0) out.push(queue.shift()!.n);
    }
    let next: { n: number } | undefined;
    while ((next = queue.shift())) out.push(next.n);
    expect(out).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
    expect(queue.bytes).toBe(0);
  });
});

describe("handshake verification", () => {
  const expected = { clusterId: "prod", nodeIds: new Set([2, 3]) };
  const good = { protocolVersion: PROTOCOL_VERSION, clusterId: "prod", nodeId: 3, peerAddress: "", refusal: "", removed: false };

  it("returns the peer's node id when everything matches", () => {
    expect(verifyHandshake(good, expected)).toBe(3);
  });

  it.each([
    ["a message instead", undefined, "not a handshake"],
    ["a version mismatch", { ...good, protocolVersion: PROTOCOL_VERSION + 1 }, "protocol version mismatch"],
    ["a wrong cluster id", { ...good, clusterId: "staging" }, "cluster id mismatch"],
    ["an unknown node id", { ...good, nodeId: 9 }, "unknown node id 9"],
    ["node id 0", { ...good, nodeId: 0 }, "unknown node id 0"],
  ])("refuses %s", (_name, handshake, reason) => {
    expect(() => verifyHandshake(handshake, expected)).toThrowError(expect.objectContaining({ code: TransportErrorCode.HANDSHAKE, message: expect.stringContaining(reason) }));
  });
});
