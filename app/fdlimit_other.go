//go:build !unix

package app

// raiseFileLimit has nothing to raise where there is no RLIMIT_NOFILE;
// 0 says the limit is unknown.
func raiseFileLimit() uint64 { return 0 }
