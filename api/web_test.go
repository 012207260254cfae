package api

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
)

// getPage asks the page handler for p with the given Accept-Encoding and
// If-None-Match (each left out when empty).
func getPage(t *testing.T, h http.Handler, p, acceptEncoding, ifNoneMatch string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", p, nil)
	if acceptEncoding != "" {
		r.Header.Set("Accept-Encoding", acceptEncoding)
	}
	if ifNoneMatch != "" {
		r.Header.Set("If-None-Match", ifNoneMatch)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func gunzip(t *testing.T, what string, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return out
}

// A browser that accepts gzip gets the page's scripts, stylesheets and
// HTML gzipped, as a representation of their own (its own ETag, Vary:
// Accept-Encoding) that unzips to exactly the file; one that does not gets
// the file as it is. The fonts, compressed already, go as they are.
func TestPageFilesGzipped(t *testing.T) {
	h := (&Server{}).pageHandler()
	var plainBytes, gzipBytes int
	for _, p := range []string{"/", "/assets/app.js", "/assets/style.css", "/vendor/katex/katex.mjs", "/vendor/katex/katex.min.css", "/vendor/highlight/highlight.min.js"} {
		plain := getPage(t, h, p, "", "")
		gz := getPage(t, h, p, "gzip, deflate, br, zstd", "")
		if plain.Code != 200 || gz.Code != 200 {
			t.Fatalf("GET %s: %d plain, %d gzip", p, plain.Code, gz.Code)
		}
		if ce := plain.Header().Get("Content-Encoding"); ce != "" {
			t.Errorf("GET %s without Accept-Encoding: Content-Encoding %q", p, ce)
		}
		if gz.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("GET %s accepting gzip: Content-Encoding %q", p, gz.Header().Get("Content-Encoding"))
		}
		for _, res := range []*httptest.ResponseRecorder{plain, gz} {
			if res.Header().Get("Vary") != "Accept-Encoding" {
				t.Errorf("GET %s: Vary %q, want Accept-Encoding", p, res.Header().Get("Vary"))
			}
		}
		if gz.Header().Get("Content-Type") != plain.Header().Get("Content-Type") {
			t.Errorf("GET %s: type %q gzipped, %q plain", p, gz.Header().Get("Content-Type"), plain.Header().Get("Content-Type"))
		}
		if !bytes.Equal(gunzip(t, p, gz.Body.Bytes()), plain.Body.Bytes()) {
			t.Fatalf("GET %s: the gzipped body is not the file", p)
		}
		etag, gzETag := plain.Header().Get("ETag"), gz.Header().Get("ETag")
		if etag == "" || gzETag == "" || etag == gzETag {
			t.Errorf("GET %s: ETag %q plain, %q gzipped: want two", p, etag, gzETag)
		}
		if res := getPage(t, h, p, "gzip", gzETag); res.Code != http.StatusNotModified {
			t.Errorf("GET %s again, gzipped: %d, want 304", p, res.Code)
		}
		if res := getPage(t, h, p, "", gzETag); res.Code != 200 || res.Body.Len() != plain.Body.Len() {
			t.Errorf("GET %s plain with the gzipped ETag: %d, %d bytes; want the file", p, res.Code, res.Body.Len())
		}
		plainBytes += plain.Body.Len()
		gzipBytes += gz.Body.Len()
	}
	if gzipBytes*3 > plainBytes {
		t.Errorf("gzipped %d bytes of %d: want under a third", gzipBytes, plainBytes)
	}

	font := getPage(t, h, "/vendor/katex/fonts/KaTeX_Main-Regular.woff2", "gzip", "")
	if font.Code != 200 || font.Header().Get("Content-Encoding") != "" || font.Header().Get("Vary") != "" {
		t.Errorf("GET a font accepting gzip: %d, Content-Encoding %q, Vary %q; want it as it is", font.Code, font.Header().Get("Content-Encoding"), font.Header().Get("Vary"))
	}
	if res := getPage(t, h, "/vendor/katex/katex.mjs.gz", "gzip", ""); res.Code != 404 {
		t.Errorf("GET a gzipped copy by its own name: %d, want 404", res.Code)
	}
}

// Every library script and stylesheet has its gzipped copy beside it, and
// the copy unzips to the file: a library vendored again without `make
// web-vendor`, or a copy left from an older version, fails here.
func TestVendorGzipCopies(t *testing.T) {
	root, err := fs.Sub(webFS, "web/vendor")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch path.Ext(p) {
		case ".js", ".mjs", ".css":
			body, _ := fs.ReadFile(root, p)
			gz, err := fs.ReadFile(root, p+".gz")
			if err != nil {
				t.Errorf("%s has no gzipped copy (make web-vendor writes it): %v", p, err)
				return nil
			}
			if !bytes.Equal(gunzip(t, p+".gz", gz), body) {
				t.Errorf("%s.gz does not unzip to %s: run make web-vendor", p, p)
			}
			n++
		case ".gz":
			if _, err := fs.Stat(root, strings.TrimSuffix(p, ".gz")); err != nil {
				t.Errorf("%s is the copy of no file", p)
			}
		}
		return nil
	})
	if err != nil || n < 5 {
		t.Fatalf("checked %d files: %v", n, err)
	}
}

// Accept-Encoding is read as HTTP says: a quality of 0 refuses, "*"
// covers gzip unless gzip is named, case does not matter.
func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                       false,
		"identity":               false,
		"br":                     false,
		"gzip":                   true,
		"GZIP":                   true,
		"x-gzip":                 true,
		"deflate, gzip;q=0.8":    true,
		"gzip;q=0":               false,
		"gzip; q=0.000":          false,
		"gzip;q=bad":             false,
		"*":                      true,
		"*;q=0":                  false,
		"*, gzip;q=0":            false,
		"gzip;q=0, *":            false,
		"br;q=1, *;q=0.1":        true,
		"identity;q=1, *;q=0":    false,
		"deflate;level=9, gzip ": true,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if header != "" {
			r.Header.Set("Accept-Encoding", header)
		}
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", header, got, want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("Accept-Encoding", "br")
	r.Header.Add("Accept-Encoding", "gzip")
	if !acceptsGzip(r) {
		t.Error("gzip in a second Accept-Encoding line is not seen")
	}
}
