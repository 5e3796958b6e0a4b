package history

import "time"

// SetReadPause sets how long reads pause after a failure to connect.
func SetReadPause(db *DB, d time.Duration) { db.readPause = d }

// EndReadPause ends a pause of reads now.
func EndReadPause(db *DB) {
	db.readMu.Lock()
	db.readsAfter = time.Time{}
	db.readMu.Unlock()
}
