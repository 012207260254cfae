package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The README's "A session from the command line" and the examples under
// "API" are run by TestREADMEWalkthrough exactly as written, one shell
// block after the other in one bash, against `make run`'s configuration:
// SQLite in the working directory, no Redis, no keys, the default
// catalogue (so only the demo models are available). Editing those blocks
// edits this test.

// walkthroughStep is one command of a README shell block.
type walkthroughStep struct {
	command string
	// want is the answer the README shows for it: a comment line holding
	// JSON right below the command ("# {…}"), compared value for value.
	want string
}

// readmeShellBlock returns the steps of the first ```sh block under the
// README heading.
func readmeShellBlock(t *testing.T, readme, heading string) []walkthroughStep {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no heading %q", heading)
	}
	_, block, ok := strings.Cut(section, "\n```sh\n")
	if !ok {
		t.Fatalf("README.md: no ```sh block under %q", heading)
	}
	block, _, _ = strings.Cut(block, "\n```\n")
	var steps []walkthroughStep
	cur, justEnded := "", false
	for line := range strings.SplitSeq(block, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == "" && strings.HasPrefix(trimmed, "# {") && justEnded:
			steps[len(steps)-1].want = strings.TrimPrefix(trimmed, "# ")
			justEnded = false
		case cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")):
			justEnded = false
		default:
			cur += line + "\n"
			if !strings.HasSuffix(trimmed, `\`) && !strings.HasSuffix(trimmed, "|") {
				steps = append(steps, walkthroughStep{command: cur})
				cur, justEnded = "", true
			}
		}
	}
	if cur != "" {
		t.Fatalf("README.md: the block under %q ends inside a command: %q", heading, cur)
	}
	return steps
}

var assignedVar = regexp.MustCompile(`^([A-Z][A-Z_]*)=`)

// TestREADMEWalkthrough runs the README's command-line walkthrough and its
// API examples, as written, and checks that each did what the README says:
// no step fails or answers a coded error, every variable a step sets has a
// value, each watch ends with done, and each answer the README shows is
// the answer the server gives.
func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README walkthrough needs %s (make test installs it): %v", tool, err)
		}
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	steps := append(readmeShellBlock(t, readme, "## A session from the command line"), readmeShellBlock(t, readme, "## API")...)
	if len(steps) < 10 {
		t.Fatalf("found only %d commands in the README's blocks", len(steps))
	}

	// `make run`: ./bin/playground serve in the checkout, on :8080.
	dir := t.TempDir()
	ts := startServer(t, "", map[string]string{"DATABASE_URL": filepath.Join(dir, "playground.db"), "MODELS": ""}, nil)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nPLAYGROUND_TEST_AS_MAIN=1 exec %q \"$@\"\n", self)
	if err := os.WriteFile(filepath.Join(dir, "bin", "playground"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}

	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	var vars []string
	for i, s := range steps {
		script.WriteString(strings.ReplaceAll(s.command, "localhost:8080", strings.TrimPrefix(ts.URL, "http://")))
		fmt.Fprintf(&script, "printf '\\n@@@ %d\\n'\n", i)
		if m := assignedVar.FindStringSubmatch(s.command); m != nil {
			vars = append(vars, m[1])
		}
	}
	for _, v := range vars {
		fmt.Fprintf(&script, "printf '@@@var %s=%%s\\n' \"$%s\"\n", v, v)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "PLAYGROUND_URL=" + ts.URL, "LANG=C.UTF-8"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	out, err := cmd.Output()
	timer.Stop()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), out)
	}

	rest := string(out)
	for i, s := range steps {
		var got string
		got, rest, _ = strings.Cut(rest, fmt.Sprintf("\n@@@ %d\n", i))
		got = strings.TrimSpace(got)
		for line := range strings.SplitSeq(got, "\n") {
			var answer map[string]any
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &answer) == nil && answer["error"] != nil {
				t.Errorf("%s\nanswered an error: %s", s.command, line)
			}
		}
		if strings.Contains(s.command, "playground watch") {
			lines := strings.Split(got, "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, `"type":"done"`) && !strings.HasPrefix(last, "[done: ") {
				t.Errorf("%s\ndid not end with done:\n%s", s.command, got)
			}
		}
		if s.want != "" {
			var want, have any
			if err := json.Unmarshal([]byte(s.want), &want); err != nil {
				t.Errorf("README.md shows an answer that is not JSON under %s: %v", s.command, err)
			} else if err := json.Unmarshal([]byte(got), &have); err != nil || !reflect.DeepEqual(want, have) {
				t.Errorf("%s\nanswered %s\nthe README shows %s", s.command, got, s.want)
			}
		}
		if testing.Verbose() {
			t.Logf("$ %s%s", s.command, got)
		}
	}
	for line := range strings.SplitSeq(strings.TrimSpace(rest), "\n") {
		name, value, _ := strings.Cut(strings.TrimPrefix(line, "@@@var "), "=")
		if value == "" || value == "null" {
			t.Errorf("the walkthrough leaves %s empty (%q)", name, value)
		}
	}
}
