/**
 * The application state machine each simulated node applies committed entries to:
 * the list of applied commands (a command is a unique ASCII string) with a rolling
 * hash over (index, command). Its snapshot is its serialization, optionally padded to
 * make multi-megabyte snapshots; the padding follows a position-dependent pattern so
 * that chunks reassembled out of order or short are detected on restore.
 */

const TEXT_ENCODER = new TextEncoder();
const TEXT_DECODER = new TextDecoder();
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export function encodeCommand(command: string): Uint8Array {
  return TEXT_ENCODER.encode(command);
}

export function decodeCommand(data: Uint8Array): string {
  return TEXT_DECODER.decode(data);
}

/** FNV-1a over bytes, continuing from `hash`. */
export function hashBytes(data: Uint8Array, hash = FNV_OFFSET): number {
  for (let i = 0; i < data.length; i++) {
    hash ^= data[i]!;
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}

function hashNumber(value: number, hash: number): number {
  for (let shift = 0; shift < 48; shift += 8) {
    hash ^= Math.floor(value / 2 ** shift) & 0xff;
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}

function paddingByte(position: number): number {
  return (position * 31 + 7) & 0xff;
}

interface SnapshotBody {
  appliedIndex: number;
  hash: number;
  commands: [number, string][];
  paddingBytes: number;
}

export class StateMachine {
  /** Index of the last entry applied (a no-op included). */
  appliedIndex = 0;
  /** Rolling hash over every applied (index, command). */
  hash = FNV_OFFSET;
  /** (index, command) in apply order. */
  readonly commands: [number, string][] = [];
  private readonly commandSet = new Set<string>();

  /** Applies entry `index`; `data` empty means a leader no-op (only the index moves). */
  apply(index: number, data: Uint8Array): void {
    if (index !== this.appliedIndex + 1) throw new Error(`state machine: apply ${index} after ${this.appliedIndex}`);
    this.appliedIndex = index;
    if (data.length === 0) return;
    const command = decodeCommand(data);
    this.commands.push([index, command]);
    this.commandSet.add(command);
    this.hash = hashBytes(data, hashNumber(index, this.hash));
  }

  has(command: string): boolean {
    return this.commandSet.has(command);
  }

  /** Serializes the state, padded with `paddingBytes` patterned bytes. */
  serialize(paddingBytes: number): Uint8Array {
    const body: SnapshotBody = { appliedIndex: this.appliedIndex, hash: this.hash, commands: this.commands, paddingBytes };
    const json = TEXT_ENCODER.encode(JSON.stringify(body));
    const out = new Uint8Array(4 + json.length + paddingBytes);
    new DataView(out.buffer).setUint32(0, json.length);
    out.set(json, 4);
    const base = 4 + json.length;
    for (let i = 0; i < paddingBytes; i++) out[base + i] = paddingByte(i);
    return out;
  }

  /** Rebuilds a state machine from `serialize`'s output; throws if the bytes are damaged. */
  static deserialize(data: Uint8Array): StateMachine {
    if (data.length < 4) throw new Error(`snapshot data too short (${data.length} bytes)`);
    const jsonLength = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
    if (4 + jsonLength > data.length) throw new Error("snapshot data truncated inside its body");
    const body = JSON.parse(decodeCommand(data.subarray(4, 4 + jsonLength))) as SnapshotBody;
    const base = 4 + jsonLength;
    if (data.length !== base + body.paddingBytes) {
      throw new Error(`snapshot data has ${data.length} bytes, expected ${base + body.paddingBytes}`);
    }
    for (let i = 0; i < body.paddingBytes; i++) {
      if (data[base + i] !== paddingByte(i)) throw new Error(`snapshot padding damaged at byte ${base + i}`);
    }
    const sm = new StateMachine();
    for (const [index, command] of body.commands) {
      sm.appliedIndex = index - 1;
      sm.apply(index, encodeCommand(command));
    }
    sm.appliedIndex = body.appliedIndex;
    if (sm.hash !== body.hash) throw new Error("snapshot state hash does not match its commands");
    return sm;
  }
}
