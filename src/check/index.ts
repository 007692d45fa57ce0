/** The linearizability checker for key-value histories (see linearizability.ts). */
export {
  CHECK_STEPS_MAX_DEFAULT,
  EXPLAIN_STEPS_MAX_DEFAULT,
  checkLinearizable,
  type CasOperation,
  type CheckOptions,
  type CheckResult,
  type DeleteOperation,
  type HistoryOperation,
  type ReadOperation,
  type WriteOperation,
} from "./linearizability.js";
