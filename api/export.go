package api

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/playground-dev/playground"
)

// exportFormats are the formats of GET /sessions/{id}/export, with their
// content types.
var exportFormats = map[string]string{
	"json": "application/json",
	"md":   "text/markdown; charset=utf-8",
	"csv":  "text/csv; charset=utf-8",
}

// csvHeader is docs/api.md's column list, in order.
var csvHeader = []string{"model", "status", "ttftMs", "durationMs", "promptTokens", "completionTokens", "costUsd", "finishReason", "text"}

// handleExport answers the whole comparison as a download, to the owner or
// a share holder: json (the Session itself), md or csv. A missing format
// is json; another one is 400 (details.field "format").
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) error {
	// Credentials (or a share token) first, then the query, then
	// visibility: docs/api.md's order.
	c, share, err := s.requestCaller(r)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	ctype, ok := exportFormats[format]
	if !ok {
		return playground.Invalid("format", "format must be json, md or csv.")
	}
	sess, _, err := s.liveSession(r.Context(), c, r.PathValue("id"), share, toSee)
	if err != nil {
		return err
	}
	// A hidden session's columns are named by label only.
	sess = sess.View()
	var body []byte
	switch format {
	case "json":
		body, err = json.MarshalIndent(sess, "", "  ")
	case "md":
		body = exportMarkdown(sess)
	case "csv":
		body, err = exportCSV(sess)
	}
	if err != nil {
		return fmt.Errorf("api: export %s: %w", format, err)
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="playground-%s.%s"`, safeFilename(sess.ID), format))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// exportCSV writes one row per response (RFC 4180 via encoding/csv; a
// null metric is an empty cell).
func exportCSV(sess *playground.Session) ([]byte, error) {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	if err := cw.Write(csvHeader); err != nil {
		return nil, err
	}
	for _, resp := range sess.Responses {
		m := resp.Metrics
		row := []string{columnName(resp), resp.Status, "", "", "", "", "", "", resp.Text}
		if m != nil {
			row[2] = optInt(m.TTFTMs)
			row[3] = strconv.FormatInt(m.DurationMs, 10)
			row[4] = optInt(m.PromptTokens)
			row[5] = optInt(m.CompletionTokens)
			row[6] = optFloat(m.CostUSD)
			row[7] = m.FinishReason
		}
		if err := cw.Write(row); err != nil {
			return nil, err
		}
	}
	cw.Flush()
	return buf.Bytes(), cw.Error()
}

// exportMarkdown writes the prompt, the system prompt, then a "## model"
// section per response with its status, metrics and text.
func exportMarkdown(sess *playground.Session) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Comparison %s\n\n", sess.ID)
	fmt.Fprintf(&b, "- Created: %s\n- Status: %s\n\n", sess.CreatedAt.UTC().Format("2006-01-02T15:04:05Z07:00"), sess.Status)
	fmt.Fprintf(&b, "## Prompt\n\n%s\n\n", sess.Prompt)
	if sess.System != nil {
		fmt.Fprintf(&b, "## System\n\n%s\n\n", *sess.System)
	}
	for _, resp := range sess.Responses {
		fmt.Fprintf(&b, "## %s\n\n- Status: %s\n", columnName(resp), resp.Status)
		if resp.Error != nil {
			fmt.Fprintf(&b, "- Error: %s (%s)\n", resp.Error.Code, resp.Error.Message)
		}
		if m := resp.Metrics; m != nil {
			fmt.Fprintf(&b, "- TTFT: %s ms\n- Duration: %d ms\n- Prompt tokens: %s\n- Completion tokens: %s\n- Tokens per second: %s\n- Cost (USD): %s\n- Finish reason: %s\n",
				orNA(optInt(m.TTFTMs)), m.DurationMs, orNA(optInt(m.PromptTokens)), orNA(optInt(m.CompletionTokens)),
				orNA(optFloat(m.TokensPerSecond)), orNA(optFloat(m.CostUSD)), m.FinishReason)
		}
		fmt.Fprintf(&b, "\n%s\n\n", resp.Text)
	}
	return []byte(b.String())
}

// columnName is a response's model, or, in a hidden session (whose view
// has no models), "Column" and its label.
func columnName(r *playground.Response) string {
	if r.Model == "" {
		return "Column " + r.Label
	}
	return r.Model
}

func optInt(v *int64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(*v, 10)
}

func optFloat(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

// safeFilename keeps an id to characters that need no quoting in a
// Content-Disposition filename.
func safeFilename(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, id)
}
