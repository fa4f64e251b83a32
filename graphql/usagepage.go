package graphql

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// usagePage is the usage page: HTML, script and style, no build step.
//
//go:embed usage
var usagePage embed.FS

// routeUsagePage serves the usage page at /usage and its files at
// /usage/<file>.
func (h *handler) routeUsagePage(mux *http.ServeMux) {
	mux.HandleFunc("GET /usage", func(w http.ResponseWriter, r *http.Request) {
		serveUsageFile(w, r, "index.html")
	})
	mux.HandleFunc("GET /usage/{file}", func(w http.ResponseWriter, r *http.Request) {
		serveUsageFile(w, r, r.PathValue("file"))
	})
}

// usageTypes are the content types of the page's files.
var usageTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

func serveUsageFile(w http.ResponseWriter, r *http.Request, name string) {
	ctype, ok := usageTypes[path.Ext(name)]
	body, err := fs.ReadFile(usagePage, "usage/"+name)
	if !ok || err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Content-Security-Policy", usageCSP(r.Host))
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	w.Write(body)
}

// usageCSP is the page's Content-Security-Policy: its own script and
// style only, no inline code, no frames, and connections to this origin
// (its WebSocket too, named with the request's host when that is a plain
// host[:port]).
func usageCSP(host string) string {
	connect := "'self'"
	if validHost(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src " + connect +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// validHost reports whether h is only a host name or address and a port.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']':
		default:
			return false
		}
	}
	return true
}
