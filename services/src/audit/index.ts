export {
  type AuditChainVerification,
  type AuditEntry,
  type AuditEntryFilter,
  type AuditEntryInput,
  type AuditOutcome,
  appendAuditEntry,
  auditOutcomes,
  canonicalJson,
  genesisHash,
  listAuditEntries,
  recordAudit,
  verifyAuditChain,
} from './audit-log.js';
