package sqlstore

/*
#include <stdlib.h>
#include <string.h>

#include "sqlitevfs.h"

enum {
	// Pending bytes at most: a commit of up to about 30 pages is one write.
	ww_cap = 128 * 1024,
	ww_wal_header = 32,
	ww_frame_header = 24,
};

// A WAL file whose contiguous writes are held and handed to the wrapped
// file as one write. Held bytes are written before any other call reaches
// the file (so a read, sync or size sees them), before a write elsewhere,
// and right after the page of a commit frame: when SQLite's write of a
// commit returns, all of it is in the file, synced or not, as without
// this VFS. Guarded by the connection: SQLite calls a file from one
// thread at a time.
typedef struct {
	vfs_file base;     // pMethods: ww_methods, or NULL if the open failed
	vfs_file *real;    // the wrapped VFS's file, right after this struct
	char *buf;        // ww_cap bytes once a write was held, else NULL
	int len;          // bytes held, from offset off
	vfs_int64 off;
	int commit_frame; // the last write held was a commit frame's header
} ww_wal;

#define REAL(f) (((ww_wal*)(f))->real)

// ww_flush writes the held bytes, if any. They are dropped either way: a
// failed write fails the transaction, and SQLite rolls it back.
static int ww_flush(ww_wal *w) {
	if (w->len == 0) return vfs_ok;
	int n = w->len;
	w->len = 0;
	w->commit_frame = 0;
	return w->real->pMethods->xWrite(w->real, w->buf, n, w->off);
}

#define FLUSHED(f, call) do { int rc_ = ww_flush((ww_wal*)(f)); if (rc_ != vfs_ok) return rc_; return call; } while (0)

static int ww_close(vfs_file *f) {
	ww_wal *w = (ww_wal*)f;
	int rc = ww_flush(w);
	int rc2 = REAL(f)->pMethods->xClose(REAL(f));
	free(w->buf);
	w->buf = NULL;
	return rc != vfs_ok ? rc : rc2;
}
static int ww_read(vfs_file *f, void *p, int n, vfs_int64 off) { FLUSHED(f, REAL(f)->pMethods->xRead(REAL(f), p, n, off)); }

// ww_is_commit_header reports whether a write is a WAL frame header whose
// database size is set, which marks the last frame of a transaction.
static int ww_is_commit_header(const unsigned char *p, int n, vfs_int64 off) {
	return n == ww_frame_header && off >= ww_wal_header && (p[4] | p[5] | p[6] | p[7]) != 0;
}

static int ww_write(vfs_file *f, const void *p, int n, vfs_int64 off) {
	ww_wal *w = (ww_wal*)f;
	int after_commit_header = w->commit_frame;
	if (w->len > 0 && (off != w->off + w->len || w->len + n > ww_cap)) {
		int rc = ww_flush(w);
		if (rc != vfs_ok) return rc;
	}
	if (n > ww_cap) return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
	if (!w->buf) {
		w->buf = malloc(ww_cap);
		if (!w->buf) return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
	}
	if (w->len == 0) w->off = off;
	memcpy(w->buf + w->len, p, (size_t)n);
	w->len += n;
	if (after_commit_header) return ww_flush(w); // the commit frame's page
	w->commit_frame = ww_is_commit_header(p, n, off);
	return vfs_ok;
}
static int ww_truncate(vfs_file *f, vfs_int64 n) { FLUSHED(f, REAL(f)->pMethods->xTruncate(REAL(f), n)); }
static int ww_sync(vfs_file *f, int flags) { FLUSHED(f, REAL(f)->pMethods->xSync(REAL(f), flags)); }
static int ww_file_size(vfs_file *f, vfs_int64 *n) { FLUSHED(f, REAL(f)->pMethods->xFileSize(REAL(f), n)); }
static int ww_lock(vfs_file *f, int l) { FLUSHED(f, REAL(f)->pMethods->xLock(REAL(f), l)); }
static int ww_unlock(vfs_file *f, int l) { FLUSHED(f, REAL(f)->pMethods->xUnlock(REAL(f), l)); }
static int ww_check_reserved(vfs_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int ww_file_control(vfs_file *f, int op, void *arg) { FLUSHED(f, REAL(f)->pMethods->xFileControl(REAL(f), op, arg)); }
static int ww_sector_size(vfs_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int ww_device_chars(vfs_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int ww_shm_map(vfs_file *f, int pg, int sz, int ext, void volatile **pp) { return vfs_shm_map(REAL(f), pg, sz, ext, pp); }
static int ww_shm_lock(vfs_file *f, int off, int n, int flags) { return vfs_shm_lock(REAL(f), off, n, flags); }
static void ww_shm_barrier(vfs_file *f) { vfs_shm_barrier(REAL(f)); }
static int ww_shm_unmap(vfs_file *f, int del) { return vfs_shm_unmap(REAL(f), del); }
static int ww_fetch(vfs_file *f, vfs_int64 off, int n, void **pp) { FLUSHED(f, vfs_fetch(REAL(f), off, n, pp)); }
static int ww_unfetch(vfs_file *f, vfs_int64 off, void *p) { return vfs_unfetch(REAL(f), off, p); }

static const vfs_io_methods ww_methods = {
	3, ww_close, ww_read, ww_write, ww_truncate, ww_sync, ww_file_size, ww_lock, ww_unlock,
	ww_check_reserved, ww_file_control, ww_sector_size, ww_device_chars,
	ww_shm_map, ww_shm_lock, ww_shm_barrier, ww_shm_unmap, ww_fetch, ww_unfetch,
};

// ww_open opens WAL files wrapped; every other file is the wrapped VFS's
// own, with its methods, in the same space.
static int ww_open(vfs_vfs *vfs, const char *name, vfs_file *f, int flags, int *out_flags) {
	vfs_vfs *base = (vfs_vfs*)vfs->pAppData;
	if (!(flags & vfs_open_wal)) return base->xOpen(base, name, f, flags, out_flags);
	ww_wal *w = (ww_wal*)f;
	memset(w, 0, sizeof *w);
	w->real = (vfs_file*)(w + 1);
	int rc = base->xOpen(base, name, w->real, flags, out_flags);
	if (rc != vfs_ok || w->real->pMethods == NULL) return rc;
	w->base.pMethods = &ww_methods;
	return rc;
}

// ww_register registers, under name, a VFS that wraps the one named base
// (NULL: SQLite's default). It returns 0, -1 when SQLite's API is missing
// from the program, or a SQLite error code. Registrations live as long as
// the process. The wrapped VFS's methods other than xOpen are called with
// this VFS, whose pAppData is the wrapped VFS: that holds for SQLite's unix
// VFS (and the tracing one over it), which reads pAppData only in xOpen.
static int ww_register(const char *name, const char *base_name) {
	if (!sqlite3_vfs_find || !sqlite3_vfs_register) return -1;
	if (sqlite3_vfs_find(name)) return vfs_ok;
	vfs_vfs *base = sqlite3_vfs_find(base_name);
	if (!base) return vfs_ioerr;
	vfs_vfs *self = malloc(sizeof *self);
	char *zname = strdup(name);
	if (!self || !zname) {
		free(self);
		free(zname);
		return vfs_nomem;
	}
	memcpy(self, base, sizeof *self);
	self->pNext = NULL;
	self->zName = zname;
	self->pAppData = base;
	self->szOsFile = (int)sizeof(ww_wal) + base->szOsFile;
	self->xOpen = ww_open;
	return sqlite3_vfs_register(self, 0);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// walWritesVFS is the prefix of the VFS that hands a transaction's WAL
// frames to the file as one write. SQLite writes each frame as two (its
// header, then its page), and every system call costs; the frames are
// written, and synced, before the commit returns, as without it.
const walWritesVFS = "paystatus-walwrites"

var walVFSes struct {
	mu    sync.Mutex
	names map[string]string // base VFS ("" for the default) → registered name; guarded by mu
}

// walWrites returns the name of the write-coalescing VFS over base (""
// for SQLite's default), registering it on first use.
func walWrites(base string) (string, error) {
	walVFSes.mu.Lock()
	defer walVFSes.mu.Unlock()
	if name, ok := walVFSes.names[base]; ok {
		return name, nil
	}
	name := walWritesVFS
	if base != "" {
		name += "+" + base
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var cbase *C.char
	if base != "" {
		cbase = C.CString(base)
		defer C.free(unsafe.Pointer(cbase))
	}
	switch rc := C.ww_register(cname, cbase); rc {
	case 0:
	case -1:
		return "", errors.New("register SQLite VFS: SQLite's C API is not linked in")
	default:
		return "", fmt.Errorf("register SQLite VFS %s over %q: sqlite code %d", name, base, int(rc))
	}
	if walVFSes.names == nil {
		walVFSes.names = map[string]string{}
	}
	walVFSes.names[base] = name
	return name, nil
}
