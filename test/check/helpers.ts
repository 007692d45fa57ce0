import type { HistoryOperation } from "../../src/check/linearizability.js";

type Outcome = "ok" | "failed" | "unknown";
type Times = [number, number] | [number];

function base(client: string, key: string, [invokedAt, completedAt]: Times, outcome: Outcome) {
  return completedAt === undefined ? { clientId: client, key, invokedAt, outcome } : { clientId: client, key, invokedAt, completedAt, outcome };
}

/** Builders: `[invokedAt, completedAt]`, or `[invokedAt]` for an unknown outcome. */
export const op = {
  read: (client: string, key: string, result: string | null, times: Times, outcome: Outcome = "ok"): HistoryOperation => ({
    ...base(client, key, times, times.length === 1 ? "unknown" : outcome),
    op: "read",
    result,
  }),
  write: (client: string, key: string, value: string, times: Times, outcome: Outcome = "ok"): HistoryOperation => ({
    ...base(client, key, times, times.length === 1 ? "unknown" : outcome),
    op: "write",
    value,
  }),
  del: (client: string, key: string, times: Times, existed?: boolean, outcome: Outcome = "ok"): HistoryOperation => ({
    ...base(client, key, times, times.length === 1 ? "unknown" : outcome),
    op: "delete",
    ...(existed === undefined ? {} : { existed }),
  }),
  cas: (
    client: string,
    key: string,
    expect: string | null,
    value: string,
    result: "ok" | "mismatch" | undefined,
    times: Times,
    extra: { current?: string | null; outcome?: Outcome } = {},
  ): HistoryOperation => ({
    ...base(client, key, times, times.length === 1 ? "unknown" : (extra.outcome ?? "ok")),
    op: "cas",
    expect,
    value,
    ...(result === undefined ? {} : { result }),
    ...("current" in extra ? { current: extra.current } : {}),
  }),
};
