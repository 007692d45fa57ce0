/**
 * Loads the one protobuf schema (`raftwal.proto`) and exposes typed encode/decode
 * helpers for the messages the rest of the code base puts on disk or on the wire.
 *
 * uint64 fields decode as plain numbers (protobufjs would otherwise return `Long`
 * objects): every index and term in raftwal is below 2^53.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

// Decode 64-bit integers as JavaScript numbers, not Long objects.
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

const SCHEMA_PATH = fileURLToPath(new URL("./raftwal.proto", import.meta.url));
const root = protobuf.parse(readFileSync(SCHEMA_PATH, "utf8"), { keepCase: false }).root;

export const EntryType = { NORMAL: 0, CLUSTER_CONFIG: 1 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export const MessageType = {
  UNSPECIFIED: 0,
  APPEND: 1,
  APPEND_RESPONSE: 2,
  VOTE: 3,
  VOTE_RESPONSE: 4,
  PRE_VOTE: 5,
  PRE_VOTE_RESPONSE: 6,
  HEARTBEAT: 7,
  HEARTBEAT_RESPONSE: 8,
  SNAPSHOT: 9,
  SNAPSHOT_RESPONSE: 10,
  TIMEOUT_NOW: 11,
  READ_INDEX: 12,
  READ_INDEX_RESPONSE: 13,
  REPAIR: 14,
  REPAIR_RESPONSE: 15,
  TERM_PROBE: 16,
  TERM_PROBE_RESPONSE: 17,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** A Raft log entry (the `Entry` message). */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** Term, vote and commit index (the `HardState` message). `vote` 0 means none. */
export interface HardState {
  term: number;
  vote: number;
  commit: number;
}

/** One member of the cluster (the `Member` message); addresses are "host:port", "" when none. */
export interface Member {
  id: number;
  peerAddress: string;
  apiAddress: string;
}

/**
 * A cluster configuration (the `ClusterConfig` message): joint while `votersOutgoing`
 * is non-empty. Ids are kept sorted ascending; see raftwal.proto for the rules.
 */
export interface ClusterConfig {
  voters: number[];
  votersOutgoing: number[];
  learners: number[];
  members: Member[];
  removed: number[];
}

/** What a snapshot covers: all entries up to and including (index, term), and the configuration there. */
export interface SnapshotMeta {
  index: number;
  term: number;
  sizeBytes: number;
  config: ClusterConfig;
}

/** One chunk of an InstallSnapshot transfer. */
export interface SnapshotChunk {
  meta: SnapshotMeta;
  offset: number;
  data: Uint8Array;
  done: boolean;
}

/** A Raft message between two nodes (the `Message` message). Node ids are > 0. */
export interface Message {
  type: MessageType;
  to: number;
  from: number;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  rejectTerm: number;
  context: Uint8Array;
  snapshot?: SnapshotChunk;
}

export interface Handshake {
  protocolVersion: number;
  clusterId: string;
  nodeId: number;
  /** The dialler's peer address ("host:port"), "" when not given. */
  peerAddress: string;
  /** Non-empty only in a reply refusing the connection. */
  refusal: string;
  /** In a refusal: the dialler was removed from the cluster. */
  removed: boolean;
}

export type Frame = { handshake: Handshake; message?: undefined } | { message: Message; handshake?: undefined };

const EMPTY = new Uint8Array(0);

/** protobufjs leaves an absent bytes field as a shared empty array; normalize it. */
function bytes(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? value : EMPTY;
}

interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

function codec<T>(name: string, normalize: (decoded: any) => T): Codec<T> {
  const type = root.lookupType(`raftwal.${name}`);
  return {
    encode: (value) => type.encode(value as unknown as Record<string, unknown>).finish(),
    decode: (bytes) => normalize(type.decode(bytes)),
  };
}

function normalizeEntry(e: any): Entry {
  return { term: e.term ?? 0, index: e.index ?? 0, type: e.type ?? 0, data: bytes(e.data) };
}

function normalizeMember(m: any): Member {
  return { id: m?.id ?? 0, peerAddress: m?.peerAddress ?? "", apiAddress: m?.apiAddress ?? "" };
}

function normalizeClusterConfig(c: any): ClusterConfig {
  return {
    voters: c?.voters ?? [],
    votersOutgoing: c?.votersOutgoing ?? [],
    learners: c?.learners ?? [],
    members: (c?.members ?? []).map(normalizeMember),
    removed: c?.removed ?? [],
  };
}

function normalizeMeta(m: any): SnapshotMeta {
  return { index: m?.index ?? 0, term: m?.term ?? 0, sizeBytes: m?.sizeBytes ?? 0, config: normalizeClusterConfig(m?.config) };
}

function normalizeMessage(m: any): Message {
  const message: Message = {
    type: m.type ?? 0,
    to: m.to ?? 0,
    from: m.from ?? 0,
    term: m.term ?? 0,
    logTerm: m.logTerm ?? 0,
    index: m.index ?? 0,
    entries: (m.entries ?? []).map(normalizeEntry),
    commit: m.commit ?? 0,
    reject: m.reject ?? false,
    rejectHint: m.rejectHint ?? 0,
    rejectTerm: m.rejectTerm ?? 0,
    context: bytes(m.context),
  };
  if (m.snapshot) {
    const s = m.snapshot;
    message.snapshot = { meta: normalizeMeta(s.meta), offset: s.offset ?? 0, data: bytes(s.data), done: s.done ?? false };
  }
  return message;
}

/** The protobufjs Type of `raftwal.Frame`, for encoders that reuse a Writer (transport framing). */
export const frameType: protobuf.Type = root.lookupType("raftwal.Frame");

export const entryCodec = codec<Entry>("Entry", normalizeEntry);
export const hardStateCodec = codec<HardState>("HardState", (h) => ({ term: h.term ?? 0, vote: h.vote ?? 0, commit: h.commit ?? 0 }));
export const snapshotMetaCodec = codec<SnapshotMeta>("SnapshotMeta", normalizeMeta);
export const clusterConfigCodec = codec<ClusterConfig>("ClusterConfig", normalizeClusterConfig);
export const messageCodec = codec<Message>("Message", normalizeMessage);
function normalizeHandshake(h: any): Handshake {
  return {
    protocolVersion: h.protocolVersion ?? 0,
    clusterId: h.clusterId ?? "",
    nodeId: h.nodeId ?? 0,
    peerAddress: h.peerAddress ?? "",
    refusal: h.refusal ?? "",
    removed: h.removed ?? false,
  };
}

export const handshakeCodec = codec<Handshake>("Handshake", normalizeHandshake);
export const frameCodec = codec<Frame>("Frame", (f) =>
  f.handshake
    ? { handshake: normalizeHandshake(f.handshake) }
    : { message: normalizeMessage(f.message ?? {}) },
);

/** The configuration with no member at all (a node that waits to be added to a cluster). */
export function emptyClusterConfig(): ClusterConfig {
  return { voters: [], votersOutgoing: [], learners: [], members: [], removed: [] };
}

/** A deep copy (configurations are values; nobody shares the arrays). */
export function copyClusterConfig(config: ClusterConfig): ClusterConfig {
  return {
    voters: [...config.voters],
    votersOutgoing: [...config.votersOutgoing],
    learners: [...config.learners],
    members: config.members.map((member) => ({ ...member })),
    removed: [...config.removed],
  };
}

/**
 * A message with every field set: one object shape for every message (the core builds
 * them on its hot path, and a stable shape keeps property access monomorphic).
 */
export function newMessage(type: MessageType, from: number, to: number, term: number): Message {
  return {
    type,
    to,
    from,
    term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    rejectTerm: 0,
    context: EMPTY,
    snapshot: undefined,
  };
}

/** A message with every field at its default; spread over it to build one. */
export function emptyMessage(): Message {
  return newMessage(MessageType.UNSPECIFIED, 0, 0, 0);
}
