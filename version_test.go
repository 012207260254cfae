package playground

import (
	"encoding/json"
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	for _, c := range []struct {
		name     string
		bi       debug.BuildInfo
		wantJSON string
		wantLine string
	}{
		{
			name:     "no version recorded",
			bi:       debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			wantJSON: `{"version":"devel"}`,
			wantLine: "devel",
		},
		{
			name: "a tagged build from a clean checkout",
			bi: debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
				{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "1f2e3d4c"}, {Key: "vcs.modified", Value: "false"},
			}},
			wantJSON: `{"version":"v1.2.0","revision":"1f2e3d4c","modified":false}`,
			wantLine: "v1.2.0 revision 1f2e3d4c",
		},
		{
			name: "a checkout with changes",
			bi: debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261206215000-1f2e3d4c5b6a+dirty"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "1f2e3d4c5b6a"}, {Key: "vcs.modified", Value: "true"},
			}},
			wantJSON: `{"version":"v0.0.0-20261206215000-1f2e3d4c5b6a+dirty","revision":"1f2e3d4c5b6a","modified":true}`,
			wantLine: "v0.0.0-20261206215000-1f2e3d4c5b6a+dirty revision 1f2e3d4c5b6a modified",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := versionOf(&c.bi)
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.wantJSON {
				t.Errorf("JSON = %s, want %s", b, c.wantJSON)
			}
			if got.String() != c.wantLine {
				t.Errorf("String() = %q, want %q", got.String(), c.wantLine)
			}
		})
	}
}
