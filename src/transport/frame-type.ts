/**
 * The protobufjs Type of `raftwal.Frame`, for encoding into a reused Writer
 * (framing.ts). schema.ts exposes codecs, not types, so this module parses the same
 * raftwal.proto once more (a few milliseconds at load): one schema file stays the only
 * wire contract. schema.ts is imported first so its protobufjs configuration (uint64
 * as plain numbers) is in force.
 *
 * If schema.ts ever exports its Frame type, use that instead and delete this file.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import "../proto/schema.js";

const SCHEMA_PATH = fileURLToPath(new URL("../proto/raftwal.proto", import.meta.url));

export const frameType: protobuf.Type = protobuf
  .parse(readFileSync(SCHEMA_PATH, "utf8"), { keepCase: false })
  .root.lookupType("raftwal.Frame");
