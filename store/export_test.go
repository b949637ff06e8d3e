package store

// SetChunks makes Deadlines and AuditRecords read n entries per read
// transaction, so that tests cross chunk boundaries with few records. It
// returns a function restoring the defaults.
func SetChunks(n int) (restore func()) {
	d, a := deadlineChunk, auditChunk
	deadlineChunk, auditChunk = n, n
	return func() { deadlineChunk, auditChunk = d, a }
}
