/**
 * The logger the transport writes to: one structured line per event. `fields` carries
 * the detail (peer id, remote address, error code) so lines can be filtered by field.
 * The transport adds no field naming this node: pass a logger that already carries it
 * (RaftNode passes its own logger, whose lines have `node`), so no line has it twice.
 */
export interface TransportLogger {
  info(message: string, fields: Record<string, unknown>): void;
  warn(message: string, fields: Record<string, unknown>): void;
  error(message: string, fields: Record<string, unknown>): void;
}

/** Discards everything: the default when the host passes no logger. */
export const silentLogger: TransportLogger = {
  info: () => {},
  warn: () => {},
  error: () => {},
};
