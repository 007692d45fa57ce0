/**
 * Who this node is, kept apart from the log: `<dir>/MEMBER`, this node's own member record
 * (id, cluster id, peer address, API address) as the latest configuration naming it has it.
 *
 * Why: a node learns its addresses from the configuration, which lives in the log and in
 * snapshots' metadata. Storage damage can set aside every record that holds a configuration
 * naming this node (its only snapshot, with the log compacted to it; a learner's first log
 * batch); repaired with `onStorageCorruption: "repair"`, the node must still listen where
 * its peers dial it, and serve its API where clients look for it, until the leader sends
 * the configuration again. etcd keeps its member metadata in the WAL's own header records
 * for the same reason. Losing the log never loses who the node is.
 *
 * The node writes it whenever it sees a configuration naming itself that the file does not
 * match (at start: the configuration in force; running: each one applied), so a bootstrap,
 * a join, and every restart of an older directory write it. It also guards the directory:
 * a node started with another id than the file's is refused (NODE_ERR_WRONG_DATA_DIR: the
 * directory holds that node's log and votes); another cluster id only rewrites the file.
 *
 * Format: one line of JSON, `{"member":{"id","clusterId","peerAddress","apiAddress"},"crc32":N}`,
 * where N is the CRC-32 (storage/wal/crc.ts) of the member object's JSON text as written. A
 * file whose checksum fails is damage like any other: ignored (with a warning) and rewritten
 * from the configuration; it never gives a wrong address. Durable: temporary file written
 * and fsynced, renamed over `MEMBER`, directory fsynced.
 */
import { join } from "node:path";
import type { FileSystem } from "../../storage/fs/file-system.js";
import { crc32 } from "../../storage/wal/crc.js";
import { replaceFileDurably } from "../../storage/fs/replace-file.js";

export const MEMBER_FILE_NAME = "MEMBER";

/** This node's own member record, as saved in its data directory. */
export interface SavedMember {
  id: number;
  clusterId: string;
  /** "host:port" its peers dial. */
  peerAddress: string;
  /** "host:port" of its API ("" when the application gave none). */
  apiAddress: string;
}

export type MemberFileRead = { kind: "absent" } | { kind: "saved"; member: SavedMember } | { kind: "damaged"; reason: string };

const encoder = new TextEncoder();

/** The member object's JSON text, its fields in a fixed order (the checksum covers exactly these bytes). */
function memberText(member: SavedMember): string {
  return JSON.stringify({ id: member.id, clusterId: member.clusterId, peerAddress: member.peerAddress, apiAddress: member.apiAddress });
}

export function encodeMemberFile(member: SavedMember): Uint8Array {
  const text = memberText(member);
  return encoder.encode(`{"member":${text},"crc32":${crc32(encoder.encode(text))}}\n`);
}

export function decodeMemberFile(bytes: Uint8Array): MemberFileRead {
  let parsed: { member?: Partial<SavedMember>; crc32?: unknown };
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as typeof parsed;
  } catch (error) {
    return { kind: "damaged", reason: `not JSON (${(error as Error).message})` };
  }
  const member = parsed?.member;
  const valid =
    member !== undefined &&
    Number.isInteger(member.id) &&
    typeof member.clusterId === "string" &&
    typeof member.peerAddress === "string" &&
    typeof member.apiAddress === "string";
  if (!valid) return { kind: "damaged", reason: "no member record (id, clusterId, peerAddress, apiAddress)" };
  const saved = member as SavedMember;
  if (parsed.crc32 !== crc32(encoder.encode(memberText(saved)))) return { kind: "damaged", reason: "checksum mismatch" };
  return { kind: "saved", member: saved };
}

export async function readMemberFile(fs: FileSystem, dataDir: string): Promise<MemberFileRead> {
  const path = join(dataDir, MEMBER_FILE_NAME);
  if (!(await fs.exists(path))) return { kind: "absent" };
  return decodeMemberFile(await fs.readFile(path));
}

/** Replaces the file durably (storage/fs/replace-file.ts: temporary file fsynced, renamed, directory fsynced). */
export function writeMemberFile(fs: FileSystem, dataDir: string, member: SavedMember): Promise<void> {
  return replaceFileDurably(fs, join(dataDir, MEMBER_FILE_NAME), encodeMemberFile(member));
}

export function sameMember(a: SavedMember | undefined, b: SavedMember): boolean {
  return a !== undefined && memberText(a) === memberText(b);
}
