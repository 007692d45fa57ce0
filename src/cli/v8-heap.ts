/**
 * V8 heap flags for a node process. Unlike the interrupt budget (v8-tiering.ts), heap sizes
 * are read once, when V8 creates its heap, so they must be on the command line: the
 * `raftwal` binary's first line passes them (`#!/usr/bin/env -S node ...`), `raftwal cluster`
 * (LocalCluster) puts them before every node's entry point, and an application embedding
 * raftwal starts Node with them (README, "Embedding raftwal").
 *
 * `--initial-old-space-size=N`: V8 skips full (mark-compact) collections while its old
 * generation, which counts the ArrayBuffers behind Node's Buffers, stays below N MiB. A
 * node's JavaScript heap is small (about 14 MB live), and V8 sizes its next collection from
 * that, so every ~14 MB of request bodies, commands, frames and WAL batches that outlived a
 * scavenge started a full collection. Measured 2026-11-27 (3 nodes, 16 clients of puts, 2
 * cores; `raftwal cluster` as it was, against the same with this flag): 64 KiB values 149
 * full collections in the leader for 8,000 puts against 31, 745-827 puts/s against
 * 1,040-1,236, leader CPU 1.0-1.1 ms per put against 0.5-0.6, p99 66-114 ms against 51-63; 4
 * KiB values leader user CPU 141-155 µs per put against 91-95, p99 15.9-19.7 ms against
 * 11.6-12.7; 256 B values the same within the noise. Resident memory rose by 30-40 MB per
 * node (385-504 MB against 421-544 in the 64 KiB run); 256 MiB bought nothing more.
 */
const V8_OLD_SPACE_FLOOR_MIB = 128;

/** The Node.js runtime flags a node process is started with (before any flags of the caller's, which win). */
export const NODE_HEAP_FLAGS: readonly string[] = [`--initial-old-space-size=${V8_OLD_SPACE_FLOOR_MIB}`];
