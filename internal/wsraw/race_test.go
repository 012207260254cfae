//go:build race

package wsraw

// raceEnabled: under the race detector, sync.Pool drops some of what is
// put back (by design), so a pooled buffer is sometimes made anew.
const raceEnabled = true
