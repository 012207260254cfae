package actors

import (
	"bytes"
	"strconv"
)

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

func itoa(n int) string { return strconv.Itoa(n) }
