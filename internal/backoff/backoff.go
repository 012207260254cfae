// Package backoff is the one pace at which loops that lost a dependency
// (the database, Redis) try again: 100 ms, doubling to 2 s.
package backoff

import "time"

// Delay is the wait before attempt failures+1 of a loop that counts its
// failures from 0: 100 ms, 200 ms, 400 ms, … and never more than 2 s.
func Delay(failures int) time.Duration {
	return min(100*time.Millisecond<<min(failures, 5), 2*time.Second)
}

// Sleep waits d, or until stop is closed; it reports false when stop
// ended the wait.
func Sleep(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// Wait waits Delay(failures), or until stop is closed; it reports false
// when stop ended the wait.
func Wait(stop <-chan struct{}, failures int) bool { return Sleep(stop, Delay(failures)) }
