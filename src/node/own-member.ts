/**
 * This node's own member record (its addresses), kept in step with the configurations that
 * name it and saved in the data directory's MEMBER file (member-file.ts), so that a node
 * whose storage damage took every configuration naming it still knows where to listen.
 */
import type { ClusterConfig } from "../proto/schema.js";
import { memberOf } from "../raft/cluster-config.js";
import { RaftwalError } from "../raft/errors.js";
import type { FileSystem } from "../../storage/fs/file-system.js";
import { NodeErrorCode } from "./errors.js";
import type { Logger } from "./logger.js";
import { MEMBER_FILE_NAME, readMemberFile, sameMember, writeMemberFile, type SavedMember } from "./member-file.js";

export class OwnMember {
  private constructor(
    private readonly fs: FileSystem,
    private readonly dataDir: string,
    private readonly identity: { id: number; clusterId: string },
    /** What the MEMBER file holds now (undefined: no valid file). */
    private record: SavedMember | undefined,
  ) {}

  /**
   * Reads the MEMBER file of a data directory this process has locked. A file naming another
   * node is refused (NODE_ERR_WRONG_DATA_DIR: this directory holds that node's log and votes);
   * a damaged one is ignored, with a warning, and rewritten from the next configuration naming
   * this node.
   */
  static async open(fs: FileSystem, dataDir: string, identity: { id: number; clusterId: string }, logger: Logger): Promise<OwnMember> {
    const read = await readMemberFile(fs, dataDir);
    if (read.kind === "damaged") logger.warn(`storage damage: the ${MEMBER_FILE_NAME} file is unreadable (${read.reason}); it is rewritten from the configuration`, { dataDir });
    const saved = read.kind === "saved" ? read.member : undefined;
    if (saved && saved.id !== identity.id) {
      throw new RaftwalError(
        NodeErrorCode.WRONG_DATA_DIR,
        `data directory ${dataDir} belongs to node ${saved.id} (its ${MEMBER_FILE_NAME} file), not to node ${identity.id}: a node must never run on another node's log and votes`,
      );
    }
    return new OwnMember(fs, dataDir, identity, saved);
  }

  /** The record last saved (undefined: none yet). */
  saved(): SavedMember | undefined {
    return this.record;
  }

  /** A configuration this node sees: when it names this node and the file says otherwise, the file is rewritten (durably). */
  async observe(config: ClusterConfig): Promise<void> {
    const member = memberOf(config, this.identity.id);
    if (!member) return;
    const record = { id: this.identity.id, clusterId: this.identity.clusterId, peerAddress: member.peerAddress, apiAddress: member.apiAddress };
    if (sameMember(this.record, record)) return;
    await writeMemberFile(this.fs, this.dataDir, record);
    this.record = record;
  }
}
