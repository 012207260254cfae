package playground

import (
	"runtime/debug"
	"strconv"
	"strings"
)

// Version says which build of Playground is running, as /healthz and
// `playground version` report it. It is read from the build information
// the Go toolchain writes into every binary, so no release step has to
// stamp it.
type Version struct {
	// Version is the main module's version: a tag, a pseudo-version for a
	// build from a git checkout, or "devel" when the build recorded none.
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, when recorded.
	Revision string `json:"revision,omitempty"`
	// Modified says whether that work tree had uncommitted changes; nil
	// when the build did not record it.
	Modified *bool `json:"modified,omitempty"`
}

// BuildVersion reads the running binary's version.
func BuildVersion() Version {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Version{Version: "devel"}
	}
	return versionOf(bi)
}

// versionOf picks the fields of Version out of bi.
func versionOf(bi *debug.BuildInfo) Version {
	v := Version{Version: bi.Main.Version}
	if v.Version == "" || v.Version == "(devel)" {
		v.Version = "devel"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			if m, err := strconv.ParseBool(s.Value); err == nil {
				v.Modified = &m
			}
		}
	}
	return v
}

// String is the one-line form `playground version` prints, e.g.
// "devel revision 1f2e3d4c modified".
func (v Version) String() string {
	var b strings.Builder
	b.WriteString(v.Version)
	if v.Revision != "" {
		b.WriteString(" revision " + v.Revision)
	}
	if v.Modified != nil && *v.Modified {
		b.WriteString(" modified")
	}
	return b.String()
}
