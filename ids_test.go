package playground

import "testing"

func TestCouldBeID(t *testing.T) {
	cases := []struct {
		kind IDKind
		s    string
		want bool
	}{
		{IDSession, "s_0b3c1f7e-2a4d-4c1e-9f0a-1234567890ab", true},
		{IDSession, "s_orphan", true},
		{IDSession, "s_", false},
		{IDSession, "r_0b3c1f7e", false},
		{IDSession, "s_\x00", false},
		{IDSession, "a\x00b", false},
		{IDSession, "s_a b", false},
		{IDSession, "s_a/b", false},
		{IDSession, "s_é", false},
		{IDSession, "s_" + string(make([]byte, 65)), false},
		{IDResponse, "r_given", true},
		{IDUser, "u_1", true},
		{IDShareToken, "jR1OLLJuYrBN25nQMKtmMg70PVrUCWUa", true},
		{IDShareToken, "jR1OLLJuYrBN25nQMKtmMg70PVrUCWUa\x00", false},
		{IDShareToken, "", false},
	}
	for _, c := range cases {
		if got := CouldBeID(c.kind, c.s); got != c.want {
			t.Errorf("CouldBeID(%q, %q) = %v, want %v", c.kind, c.s, got, c.want)
		}
	}
}
