package store

// SetRetentionChunk makes ApplyRetention examine n records per transaction,
// so that tests cross chunk boundaries with few records. It returns a
// function restoring the default.
func SetRetentionChunk(n int) (restore func()) {
	old := retentionChunk
	retentionChunk = n
	return func() { retentionChunk = old }
}
