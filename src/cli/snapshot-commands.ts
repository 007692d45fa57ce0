/**
 * Backup and restore (etcdctl's disaster-recovery path):
 *
 *   - `raftwal snapshot save FILE` streams a consistent backup from a live node
 *     (`GET /snapshot`: every write acknowledged before the request is in it), checks its
 *     SHA-256 while writing, and only then renames it into place (FILE.part before).
 *   - `raftwal snapshot status FILE` checks a backup and says what it holds.
 *   - `raftwal snapshot restore FILE --dir DIR --id N --members LIST` builds node N's data
 *     directory of a NEW cluster founded from the backup: the state at the backup's index,
 *     the configuration given by --members (every member of the new cluster, the same
 *     list for each), and nothing else. Run it once per member, each on its own empty
 *     directory; then start every member as an existing one (`raftwal node --id N --dir
 *     DIR`): they elect a leader and go on from the backup's index.
 *
 * A restore checks the whole file (trailer, checksum, and the state machine's own
 * snapshot format) before it writes anything, builds the directory under a temporary name
 * and renames it into place last: a failure leaves no half-built DIR.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Command } from "commander";
import { openRaftStorage } from "../../storage/raft-storage.js";
import { BackupVerifier, backupCorrupt, type BackupHeader } from "../kv/backup-format.js";
import type { KvClient } from "../kv/client.js";
import { KV_BACKUP_PAYLOAD_FORMAT } from "../kv/operations-api.js";
import { SnapshotParser } from "../kv/snapshot.js";
import { bootstrapConfig, formatAddress } from "../node/membership.js";
import { parseInteger, parsePeers, type PeerSpec } from "./arguments.js";
import { addClientOptions, withClient, type ClientFlags } from "./client-options.js";
import { CliError } from "./io.js";
import type { CliContext } from "./program.js";

const EXAMPLES = `
Examples:
  raftwal snapshot save backup.rwb
  raftwal snapshot status backup.rwb
  # a new 3-node cluster from the backup, one directory per member:
  M=1=10.0.0.1:7001/10.0.0.1:7101,2=10.0.0.2:7001/10.0.0.2:7101,3=10.0.0.3:7001/10.0.0.3:7101
  raftwal snapshot restore backup.rwb --dir /var/lib/raftwal --id 1 --members $M   # on 10.0.0.1
  raftwal node --id 1 --dir /var/lib/raftwal                                       # then start it
`;

export function registerSnapshotCommands(program: Command, context: CliContext): void {
  const snapshot = program.command("snapshot").description("back up a live cluster to a file, and restore a new cluster from one").addHelpText("after", EXAMPLES);
  const save = addClientOptions(
    snapshot.command("save").description("stream a consistent, checksummed backup from a live node into FILE").argument("<file>", "where to write the backup"),
  );
  save.action(async (file: string) => {
    const { header, bytes, endpoint } = await withClient(save.opts() as ClientFlags, (client) => saveBackup(client, file));
    context.io.stdout.write(`saved a snapshot at index ${header.index} (term ${header.term}) from ${endpoint} (node ${header.nodeId}) to ${file}: ${bytes} bytes, checksum verified\n`);
  });
  snapshot
    .command("status")
    .description("check a backup file and say what it holds")
    .argument("<file>")
    .option("--json", "as JSON")
    .action(async (file: string, flags: { json?: boolean }) => {
      const checked = await checkBackupFile(file);
      const summary = { file, ...checked.header, keys: checked.keys, sizeBytes: checked.sizeBytes, checksum: "ok" };
      context.io.stdout.write(flags.json ? `${JSON.stringify(summary, null, 2)}\n` : describeBackup(file, checked));
    });
  snapshot
    .command("restore")
    .description("build one member's data directory of a new cluster founded from a backup")
    .argument("<file>")
    .requiredOption("--dir <dir>", "the member's data directory to create (must not exist, or be empty)")
    .requiredOption("--id <n>", "the member's id (one of --members)", parseInteger(1, 2 ** 31))
    .requiredOption("--members <list>", "every member of the new cluster: ID=PEER_HOST:PORT/API_HOST:PORT, comma-separated, the same for each", parsePeers)
    .action(async (file: string, flags: { dir: string; id: number; members: PeerSpec[] }) => {
      if (!flags.members.some((member) => member.id === flags.id)) throw new CliError(`--id ${flags.id} is not among --members (${flags.members.map((m) => m.id).join(", ")})`);
      const checked = await checkBackupFile(file);
      await restoreBackup(file, checked, flags);
      context.io.stdout.write(
        `restored the snapshot at index ${checked.header.index} (term ${checked.header.term}, ${checked.keys} keys) into ${flags.dir}: node ${flags.id} of a new cluster of voters ${flags.members.map((m) => m.id).join(",")}\n` +
          `start it as an existing member: raftwal node --id ${flags.id} --dir ${flags.dir}\n`,
      );
    });
}

/** Streams the backup into FILE.part, checking it on the way; renames it to FILE once whole and verified. */
async function saveBackup(client: KvClient, file: string): Promise<{ header: BackupHeader; bytes: number; endpoint: string }> {
  const { endpoint, stream } = await client.openSnapshot();
  const partial = `${file}.part`;
  const out = createWriteStream(partial);
  const verifier = new BackupVerifier();
  let bytes = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      verifier.push(chunk);
      bytes += chunk.length;
      if (!out.write(chunk)) await once(out, "drain");
    }
    out.end();
    await once(out, "close");
    const { header } = verifier.finish();
    await fsyncFile(partial);
    await rename(partial, file);
    await fsyncFile(dirname(file));
    return { header, bytes, endpoint };
  } catch (error) {
    out.destroy();
    await rm(partial, { force: true });
    throw error;
  }
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface CheckedBackup {
  header: BackupHeader;
  payloadOffset: number;
  payloadBytes: number;
  sizeBytes: number;
  keys: number;
}

/** Reads the whole file: the backup's checksum, then its payload as the KV service's snapshot format. */
async function checkBackupFile(file: string): Promise<CheckedBackup> {
  let sizeBytes: number;
  try {
    sizeBytes = (await stat(file)).size;
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const verifier = new BackupVerifier();
  for await (const chunk of createReadStream(file)) verifier.push(chunk as Buffer);
  const { header, payloadOffset, payloadBytes } = verifier.finish();
  if (header.payloadFormat !== KV_BACKUP_PAYLOAD_FORMAT) throw backupCorrupt(`${file} holds ${header.payloadFormat}, not the KV service's state (${KV_BACKUP_PAYLOAD_FORMAT})`);
  const parser = new SnapshotParser();
  for await (const chunk of payloadOf(file, payloadOffset, payloadBytes)) parser.push(chunk);
  const keys = parser.finish().data.size;
  return { header, payloadOffset, payloadBytes, sizeBytes, keys };
}

async function* payloadOf(file: string, offset: number, length: number): AsyncGenerator<Buffer> {
  if (length === 0) return;
  for await (const chunk of createReadStream(file, { start: offset, end: offset + length - 1 })) yield chunk as Buffer;
}

function describeBackup(file: string, checked: CheckedBackup): string {
  const { header } = checked;
  const members = header.members.map((m) => `${m.id} (${m.role}, peer ${m.peerAddress}${m.apiAddress ? `, api ${m.apiAddress}` : ""})`).join(", ");
  return (
    `${file}: checksum ok, ${checked.sizeBytes} bytes\n` +
    `index ${header.index}, term ${header.term}, ${checked.keys} keys (${header.payloadFormat})\n` +
    `taken ${header.createdAt} from node ${header.nodeId} of cluster ${header.clusterId}; members then: ${members}\n`
  );
}

/** DIR must not exist, or be an empty directory. */
async function checkTarget(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new CliError(`cannot use ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (entries.length > 0) throw new CliError(`${dir} is not empty: a restore builds a new data directory (give an empty or new one)`);
}

/**
 * Builds the data directory under a temporary name beside DIR: the snapshot installed with
 * the new cluster's configuration, a hard state at the backup's term with the snapshot's
 * index committed; then renames it to DIR.
 */
async function restoreBackup(file: string, checked: CheckedBackup, flags: { dir: string; id: number; members: PeerSpec[] }): Promise<void> {
  await checkTarget(flags.dir);
  const building = join(dirname(flags.dir), `.${basename(flags.dir)}.restoring-${process.pid}`);
  await rm(building, { recursive: true, force: true });
  await mkdir(building, { recursive: true });
  try {
    const storage = await openRaftStorage(building);
    try {
      const config = bootstrapConfig(flags.members.map((m) => ({ id: m.id, host: m.host, port: m.port, apiAddress: formatAddress(m.api) })));
      const meta = { index: checked.header.index, term: checked.header.term, sizeBytes: checked.payloadBytes, config };
      let offset = 0;
      for await (const chunk of payloadOf(file, checked.payloadOffset, checked.payloadBytes)) {
        await storage.writeSnapshotChunk({ meta, offset, data: chunk, done: false });
        offset += chunk.length;
      }
      await storage.installSnapshot(meta);
      await storage.saveHardState({ term: meta.term, vote: 0, commit: meta.index });
    } finally {
      await storage.close();
    }
    await rm(flags.dir, { recursive: true, force: true }); // an empty directory (checked above)
    await rename(building, flags.dir);
    await fsyncFile(dirname(flags.dir));
  } catch (error) {
    await rm(building, { recursive: true, force: true });
    throw error;
  }
}
