package realtime

import (
	"net/http"
	"os"
	"path/filepath"
)

// clientFiles serves the official socket.io browser client from the
// installed npm package, as Node's socket.io serves it.
type clientFiles struct {
	dir string
}

func newClientFiles(dir string) http.Handler { return &clientFiles{dir: dir} }

var clientFileNames = map[string]string{
	"socket.io.js":         "socket.io.js",
	"socket.io.min.js":     "socket.io.min.js",
	"socket.io.js.map":     "socket.io.js.map",
	"socket.io.min.js.map": "socket.io.min.js.map",
}

func (c *clientFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := clientFileNames[filepath.Base(r.URL.Path)]
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	path := filepath.Join(c.dir, name)
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, "socket.io client not installed: run npm ci", http.StatusNotFound)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		http.Error(w, "socket.io client unreadable", http.StatusInternalServerError)
		return
	}
	if filepath.Ext(name) == ".map" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "public, max-age=0")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, name, info.ModTime(), f)
}
