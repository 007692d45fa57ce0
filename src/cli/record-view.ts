/**
 * How `raftwal wal dump` shows one WAL record: a text line or a JSON object, with the
 * fields that mean something for its type.
 *
 * | record          | index means                          | term    | detail                                  |
 * |-----------------|--------------------------------------|---------|-----------------------------------------|
 * | entry           | the entry's index                    | its term| a registered decoder's view, or a preview|
 * | config (entry)  | the entry's index                    | its term| the cluster configuration it holds      |
 * | truncate-suffix | the first index dropped              | -       | entries from there on are dropped       |
 * | compact         | the last index in the snapshot       | its term| entries up to there are in a snapshot   |
 * | commit          | the log's last index after the batch | -       | the batch it closes (offset, records)   |
 */
import { EntryType, type Entry } from "../proto/schema.js";
import { describeClusterConfig } from "../raft/cluster-config.js";
import { decodeConfigEntry } from "../raft/config-log.js";
import type { ScannedRecord } from "../../storage/wal/index.js";
import { decodePayload } from "./payload-decoders.js";
import { preview } from "./text.js";

/** `--type` of `dump`: this kind selects configuration entries only (their record type is "entry"). */
export const CONFIG_ENTRY_KIND = "config";

/** The type shown in the text dump: the record type, or "config" for a configuration entry. */
export function recordKind(record: ScannedRecord): string {
  return record.entry?.type === EntryType.CLUSTER_CONFIG ? CONFIG_ENTRY_KIND : record.type;
}

/** Which records carry a meaningful term in their header. */
function hasTerm(record: ScannedRecord): boolean {
  return record.type === "entry" || record.type === "compact" || record.type === "unknown";
}

/** An entry's data as text and as JSON fields. */
function entryView(entry: Entry): { text: string; fields: Record<string, unknown> } {
  const raw = { entryType: entry.type === EntryType.CLUSTER_CONFIG ? "cluster-config" : entry.type === EntryType.NORMAL ? "normal" : `type-${entry.type}`, dataBytes: entry.data.length };
  if (entry.type === EntryType.CLUSTER_CONFIG) {
    try {
      const config = decodeConfigEntry(entry);
      const description = describeClusterConfig(config);
      return { text: `configuration: ${description}`, fields: { ...raw, config: { ...config, description } } };
    } catch (error) {
      const problem = (error as Error).message;
      return { text: `configuration entry that does not decode (${problem})`, fields: { ...raw, configError: problem, preview: preview(entry.data) } };
    }
  }
  const decoded = entry.type === EntryType.NORMAL && entry.data.length > 0 ? decodePayload(entry.data) : undefined;
  if (!decoded) return { text: preview(entry.data), fields: { ...raw, preview: preview(entry.data) } };
  return { text: `${decoded.decoder} ${decoded.text}`, fields: { ...raw, preview: preview(entry.data), decoded: { decoder: decoded.decoder, ...decoded.fields } } };
}

/** What a record of each type says, in words and in fields. */
function recordDetail(record: ScannedRecord): { text: string; fields: Record<string, unknown> } {
  if (record.entry) return entryView(record.entry);
  switch (record.type) {
    case "truncate-suffix":
      return { text: `drops the entries from index ${record.index} on`, fields: {} };
    case "compact":
      return { text: `entries up to index ${record.index} (term ${record.term}) are in a snapshot`, fields: {} };
    case "commit": {
      const commit = record.commit;
      if (!commit) return { text: `closes a batch; the log ends at index ${record.index}`, fields: {} };
      return {
        text: `closes the batch of ${commit.recordCount} record${commit.recordCount === 1 ? "" : "s"} from byte offset ${commit.batchStartOffset}; the log ends at index ${record.index}`,
        fields: { batchStartOffset: commit.batchStartOffset, recordCount: commit.recordCount },
      };
    }
    default: // an entry whose payload does not decode, a damaged header or segment header
      return record.payload.length > 0 ? { text: preview(record.payload), fields: { preview: preview(record.payload) } } : { text: "", fields: {} };
  }
}

/** One JSON object per record (`dump --json`). */
export function recordJson(record: ScannedRecord): Record<string, unknown> {
  return {
    segment: record.segment,
    segmentId: record.segmentId,
    offset: record.offset,
    type: record.type,
    index: record.index,
    ...(hasTerm(record) ? { term: record.term } : {}),
    sizeBytes: record.sizeBytes,
    status: record.status,
    ...(record.reason ? { reason: record.reason } : {}),
    ...recordDetail(record).fields,
  };
}

/** One aligned text line per record (`dump`). */
export function recordLine(record: ScannedRecord): string {
  const status = record.status === "ok" ? "ok" : `${record.status.toUpperCase()} (${record.reason ?? "?"})`;
  return [
    (record.type === "segment-header" ? "-" : `index ${record.index}`).padEnd(16),
    (hasTerm(record) ? `term ${record.term}` : "").padEnd(10),
    recordKind(record).padEnd(15),
    `${record.sizeBytes} B`.padEnd(10),
    `${record.segmentId}:${record.offset}`.padEnd(14),
    status.padEnd(4),
    recordDetail(record).text,
  ]
    .join(" ")
    .trimEnd();
}
