import { describe, expect, it } from "vitest";
import { RaftwalErrorCode } from "../../src/errors.js";
import {
  CLIENT_ID_BYTES_MAX,
  KEY_BYTES_MAX,
  VALUE_BYTES_MAX,
  decodeCommand,
  encodeCommand,
  type KvCommand,
} from "../../src/kv/command.js";
import { text } from "./helpers.js";

describe("kv command codec", () => {
  it("round-trips every op with non-default fields, including a seq above 2^32 and binary values", () => {
    const commands: KvCommand[] = [
      { op: "put", clientId: "client-é", seq: 2 ** 40 + 7, key: "k/ü/1", value: new Uint8Array([0, 255, 1, 128]) },
      { op: "put", clientId: "c", seq: 1, key: "empty", value: new Uint8Array(0) },
      { op: "delete", clientId: "c2", seq: Number.MAX_SAFE_INTEGER, key: "x" },
      { op: "cas", clientId: "c3", seq: 300, key: "y", expect: text("old"), value: text("new") },
      { op: "cas", clientId: "c3", seq: 301, key: "y", expect: null, value: text("first") },
      { op: "get", key: "🔑" },
    ];
    for (const command of commands) expect(decodeCommand(encodeCommand(command))).toEqual(command);
  });

  it("is compact: a put of a 16-byte key and a 256-byte value is under 320 bytes", () => {
    const bytes = encodeCommand({ op: "put", clientId: "0123456789abcdef0123456789abcdef", seq: 123456, key: "k".repeat(16), value: new Uint8Array(256) });
    expect(bytes.length).toBeLessThan(320);
    expect(bytes[0]).toBe(1); // version byte
  });

  it("rejects arguments outside their limits with INVALID_ARGUMENT", () => {
    const bad: KvCommand[] = [
      { op: "get", key: "" },
      { op: "get", key: "k".repeat(KEY_BYTES_MAX + 1) },
      { op: "get", key: "\uD800" },
      { op: "put", clientId: "", seq: 1, key: "k", value: text("v") },
      { op: "put", clientId: "c".repeat(CLIENT_ID_BYTES_MAX + 1), seq: 1, key: "k", value: text("v") },
      { op: "put", clientId: "c", seq: 0, key: "k", value: text("v") },
      { op: "put", clientId: "c", seq: 1.5, key: "k", value: text("v") },
      { op: "put", clientId: "c", seq: 1, key: "k", value: new Uint8Array(VALUE_BYTES_MAX + 1) },
    ];
    for (const command of bad) {
      expect(() => encodeCommand(command), JSON.stringify(command).slice(0, 80)).toThrow(expect.objectContaining({ code: RaftwalErrorCode.INVALID_ARGUMENT }));
    }
  });

  it("rejects bytes no encoder produces: other version, unknown op, truncation, trailing bytes, bad UTF-8", () => {
    const good = encodeCommand({ op: "cas", clientId: "c", seq: 5, key: "k", expect: text("a"), value: text("b") });
    const cases: Array<[string, Uint8Array]> = [
      ["version", Uint8Array.from([2, ...good.subarray(1)])],
      ["op", Uint8Array.from([1, 9, ...good.subarray(2)])],
      ["op zero", Uint8Array.from([1, 0, ...good.subarray(2)])],
      ["truncated", good.subarray(0, good.length - 1)],
      ["trailing", Uint8Array.from([...good, 0])],
      ["utf8", Uint8Array.from([1, 4, 1, 0xff])],
      ["overlong varint", Uint8Array.from([1, 4, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])],
    ];
    for (const [name, bytes] of cases) {
      expect(() => decodeCommand(bytes), name).toThrow(expect.objectContaining({ code: RaftwalErrorCode.INVALID_ARGUMENT }));
    }
  });
});
