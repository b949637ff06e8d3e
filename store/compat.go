package store

import "github.com/accessbot/accessbot/audit"

// The audit record and its chain moved to package audit, shared with the
// PostgreSQL store. These aliases keep code written against the old names
// compiling while branches merge.
//
// Deprecated: use the audit package's names.
type AuditRecord = audit.Record

// Deprecated: use audit.VerifyChain.
var VerifyChain = audit.VerifyChain

// Deprecated: use audit.ReadJSONLines.
var ReadJSONLines = audit.ReadJSONLines

// Deprecated: use audit.ZeroHash.
const ZeroHash = audit.ZeroHash
