package api

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// webFS holds the page: index.html, the files under assets/ (hand-written
// HTML, CSS and JavaScript modules; there is no build step) and under
// vendor/ (third-party libraries as published, listed in vendor/VERSIONS,
// each script and stylesheet beside its gzipped copy, X.gz, which `make
// web-vendor` writes with them).
//
//go:embed web
var webFS embed.FS

// pageAsset is one embedded file, read once, with a strong ETag so browsers
// revalidate cheaply (embed.FS has no modification times).
//
// A text file also goes gzipped to the browsers that accept it (all of
// them): the page's scripts and stylesheets are 1.1 MB as written (KaTeX
// alone 0.6 MB) and 0.3 MB gzipped, which is what a first visit over a
// slow link waits for. The libraries' copies are gzipped once, by `make
// web-vendor`, so that no server spends a moment on them (a race-built
// test server a second); the page's own files, 0.17 MB, the first time
// one is asked for. The fonts are compressed already.
type pageAsset struct {
	body        []byte
	contentType string
	etag        string
	gzipped     func() []byte // the body gzipped, nil when that does not pay; nil for a font or image
	gzipETag    string        // a representation of its own, so an ETag of its own
}

// pageFiles is built once from webFS: URL path ("/index.html",
// "/assets/app.js", ...) to file.
type pageFiles map[string]*pageAsset

// thePageFiles are read once per process, by the first server that serves
// the page.
var thePageFiles = sync.OnceValue(loadPageFiles)

func loadPageFiles() pageFiles {
	files := pageFiles{}
	root, err := fs.Sub(webFS, "web")
	if err != nil {
		panic("api: embedded page: " + err.Error()) // a build mistake, not a runtime condition
	}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) == ".gz" { // a gzipped copy goes with its file
			return err
		}
		body, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // do not depend on the host's mime.types
		case ".js", ".mjs":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		case ".woff2":
			ct = "font/woff2"
		case "":
			ct = "text/plain; charset=utf-8" // vendor/VERSIONS and the libraries' LICENSE files
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		tag := hex.EncodeToString(sum[:12])
		f := &pageAsset{body: body, contentType: ct, etag: `"` + tag + `"`, gzipETag: `"` + tag + `-gzip"`}
		if gz, err := fs.ReadFile(root, p+".gz"); err == nil {
			f.gzipped = func() []byte { return gz }
		} else if strings.HasPrefix(ct, "text/") || ct == "image/svg+xml" {
			f.gzipped = sync.OnceValue(func() []byte {
				if gz := gzipped(body); len(gz) < len(body)*9/10 {
					return gz
				}
				return nil
			})
		}
		files["/"+p] = f
		return nil
	})
	if err != nil {
		panic("api: embedded page: " + err.Error())
	}
	return files
}

// gzipped is body gzipped.
func gzipped(body []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write(body) // a bytes.Buffer does not fail
	_ = zw.Close()
	return b.Bytes()
}

// acceptsGzip reports whether the request's Accept-Encoding takes gzip:
// named (or as x-gzip) with a quality above 0, or covered by "*" when not
// named.
func acceptsGzip(r *http.Request) bool {
	star := false
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "x-gzip" && coding != "*" {
				continue
			}
			q := 1.0
			for param := range strings.SplitSeq(params, ";") {
				name, value, ok := strings.Cut(strings.TrimSpace(param), "=")
				if ok && strings.EqualFold(strings.TrimSpace(name), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
						q = f
					} else {
						q = 0
					}
				}
			}
			if coding == "*" {
				star = q > 0
				continue
			}
			return q > 0
		}
	}
	return star
}

// safeHost matches a Host header we are willing to echo into the CSP
// (host name or IP literal, optional port); anything else is left out so a
// forged Host cannot add directives.
var safeHost = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// pageCSP is the Content-Security-Policy of the page. 'self' covers
// same-origin WebSockets in current browsers; the explicit ws:/wss: of the
// request's host is for older ones. Rendered answers need nothing more:
// KaTeX positions its math through element.style (CSSOM), which style-src
// 'self' allows, and no inline style attribute or script is ever parsed
// (see assets/markdown.js).
func pageCSP(r *http.Request) string {
	connect := "'self'"
	if safeHost.MatchString(r.Host) {
		connect += " ws://" + r.Host + " wss://" + r.Host
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; connect-src " + connect +
		"; img-src 'self' data:; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}

// pageHandler serves the web page: "/" and "/s/{token}" get index.html (the
// page reads location.pathname to open a shared comparison as a viewer), and
// "/assets/..." and "/vendor/..." the static files. Because "GET /" is the mux's catch-all,
// every other path is answered here with the JSON 404 of docs/api.md.
func (s *Server) pageHandler() http.Handler {
	files := thePageFiles()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		var f *pageAsset
		cache := "no-cache" // revalidate with the ETag every time: assets are not fingerprinted
		switch {
		case p == "/" || p == "/index.html":
			f = files["/index.html"]
		case strings.HasPrefix(p, "/s/") && len(p) > len("/s/") && !strings.Contains(p[len("/s/"):], "/"):
			f = files["/index.html"]
			cache = "no-store" // the URL carries a share token
		case (strings.HasPrefix(p, "/assets/") || strings.HasPrefix(p, "/vendor/")) && path.Clean(p) == p:
			f = files[p]
		}
		if f == nil {
			writePageNotFound(w)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", cache)
		body, etag := f.body, f.etag
		if f.gzipped != nil {
			h.Add("Vary", "Accept-Encoding")
			if acceptsGzip(r) {
				if gz := f.gzipped(); gz != nil {
					body, etag = gz, f.gzipETag
					h.Set("Content-Encoding", "gzip")
				}
			}
		}
		h.Set("ETag", etag)
		if f.contentType == "text/html; charset=utf-8" {
			h.Set("Content-Security-Policy", pageCSP(r))
			h.Set("X-Frame-Options", "DENY")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// writePageNotFound writes the contract's error shape for a path that names
// neither an API route nor a page file. It is self-contained so the page does
// not depend on the handlers' helpers.
func writePageNotFound(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"code": "not_found", "message": "no such page or endpoint"},
	})
}
