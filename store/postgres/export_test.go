package postgres

// SetChunks makes Deadlines, AuditRecords, ExportRequests and
// ApplyRetention read n entries per query or transaction, so that tests
// cross chunk boundaries with few records. It returns a function
// restoring the defaults.
func SetChunks(n int) (restore func()) {
	d, a, e, r := deadlineChunk, auditChunk, exportChunk, retentionChunk
	deadlineChunk, auditChunk, exportChunk, retentionChunk = n, n, n, n
	return func() { deadlineChunk, auditChunk, exportChunk, retentionChunk = d, a, e, r }
}

// SetCommitHook sets the writer's commit hook (nil: none).
func SetCommitHook(fn func(ops int)) { commitHook = fn }
