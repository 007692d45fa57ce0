/**
 * The KV service's payload decoder for `raftwal wal dump` (payload-decoders.ts): a log
 * entry holding a KV command (src/kv/command.ts) shows as the command, with its key and a
 * preview of its values. The command decoder is strict (version byte, op code, lengths, no
 * trailing bytes), so other applications' payloads are not mistaken for commands.
 */
import { decodeCommand } from "../kv/command.js";
import type { PayloadDescription } from "./payload-decoders.js";
import { preview } from "./text.js";

const encoder = new TextEncoder();

/** A key as shown: quoted and cut to the preview length (the JSON fields carry it whole). */
function shownKey(key: string): string {
  return preview(encoder.encode(key));
}

export function describeKvPayload(data: Uint8Array): PayloadDescription {
  const command = decodeCommand(data); // throws on anything that is not a KV command
  if (command.op === "get") return { text: `get ${shownKey(command.key)}`, fields: { op: "get", key: command.key } };
  const session = `(client ${JSON.stringify(command.clientId)}, seq ${command.seq})`;
  const base = { op: command.op, key: command.key, clientId: command.clientId, seq: command.seq };
  switch (command.op) {
    case "put":
      return {
        text: `put ${shownKey(command.key)} = ${preview(command.value)} ${session}`,
        fields: { ...base, value: preview(command.value), valueBytes: command.value.length },
      };
    case "delete":
      return { text: `delete ${shownKey(command.key)} ${session}`, fields: base };
    case "cas": {
      const expected = command.expect === null ? "(absent)" : preview(command.expect);
      return {
        text: `cas ${shownKey(command.key)} ${expected} -> ${preview(command.value)} ${session}`,
        fields: {
          ...base,
          expect: command.expect === null ? null : preview(command.expect),
          ...(command.expect === null ? {} : { expectBytes: command.expect.length }),
          value: preview(command.value),
          valueBytes: command.value.length,
        },
      };
    }
  }
}
