// Package synctrace is a SQLite VFS for tests that records, for every WAL
// file opened through it, how many writes reached the file and whether a
// sync followed them. A test opens a store with the DSN parameter
// vfs=<Register()> and asks, at the moment a change was acknowledged,
// whether every WAL write before it was synced: if not, a power cut could
// lose an acknowledged change.
//
// It wraps SQLite's default VFS and forwards every call to it unchanged. It
// is linked only into programs that import it; the server does not.
package synctrace

/*
#cgo CFLAGS: -I${SRCDIR}/..
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlitevfs.h"

enum { st_max_files = 512 };

// One traced WAL file, by full path. Entries are never freed: a test
// process opens few databases.
typedef struct {
	char *path;
	long long writes, syncs, unsynced;
} st_trace;

static pthread_mutex_t st_mu = PTHREAD_MUTEX_INITIALIZER;
// Microseconds every WAL sync sleeps before it runs: a slow disk on demand.
static volatile long st_sync_delay_us;
static st_trace st_traces[st_max_files]; // guarded by st_mu
static int st_ntraces;                   // guarded by st_mu
static vfs_vfs *st_base;
static vfs_vfs st_self;

typedef struct {
	vfs_file base;   // pMethods: st_methods, or NULL if the open failed
	st_trace *trace; // NULL for files other than a WAL
	vfs_file *real;   // the default VFS's file, right after this struct
} st_tfile;

static st_trace *st_lookup(const char *path, int create) {
	st_trace *found = NULL;
	pthread_mutex_lock(&st_mu);
	for (int i = 0; i < st_ntraces && !found; i++) {
		if (strcmp(st_traces[i].path, path) == 0) found = &st_traces[i];
	}
	if (!found && create && st_ntraces < st_max_files) {
		found = &st_traces[st_ntraces++];
		found->path = strdup(path);
	}
	pthread_mutex_unlock(&st_mu);
	return found;
}

#define REAL(f) (((st_tfile*)(f))->real)
static int st_close(vfs_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int st_read(vfs_file *f, void *p, int n, vfs_int64 off) { return REAL(f)->pMethods->xRead(REAL(f), p, n, off); }
static int st_write(vfs_file *f, const void *p, int n, vfs_int64 off) {
	int rc = REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
	st_trace *t = ((st_tfile*)f)->trace;
	if (t && rc == vfs_ok) {
		pthread_mutex_lock(&st_mu);
		t->writes++;
		t->unsynced++;
		pthread_mutex_unlock(&st_mu);
	}
	return rc;
}
static int st_truncate(vfs_file *f, vfs_int64 n) { return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int st_sync(vfs_file *f, int flags) {
	st_trace *t = ((st_tfile*)f)->trace;
	long long before = 0;
	if (t) {
		pthread_mutex_lock(&st_mu);
		before = t->writes;
		pthread_mutex_unlock(&st_mu);
	}
	if (t && st_sync_delay_us > 0) usleep((useconds_t)st_sync_delay_us);
	int rc = REAL(f)->pMethods->xSync(REAL(f), flags);
	if (t && rc == vfs_ok) {
		// Only the writes made before the sync began are known to be synced.
		pthread_mutex_lock(&st_mu);
		t->syncs++;
		t->unsynced = t->writes - before;
		pthread_mutex_unlock(&st_mu);
	}
	return rc;
}
static int st_file_size(vfs_file *f, vfs_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int st_lock(vfs_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int st_unlock(vfs_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int st_check_reserved(vfs_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int st_file_control(vfs_file *f, int op, void *arg) { return REAL(f)->pMethods->xFileControl(REAL(f), op, arg); }
static int st_sector_size(vfs_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int st_device_chars(vfs_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int st_shm_map(vfs_file *f, int pg, int sz, int ext, void volatile **pp) { return vfs_shm_map(REAL(f), pg, sz, ext, pp); }
static int st_shm_lock(vfs_file *f, int off, int n, int flags) { return vfs_shm_lock(REAL(f), off, n, flags); }
static void st_shm_barrier(vfs_file *f) { vfs_shm_barrier(REAL(f)); }
static int st_shm_unmap(vfs_file *f, int del) { return vfs_shm_unmap(REAL(f), del); }
static int st_fetch(vfs_file *f, vfs_int64 off, int n, void **pp) { return vfs_fetch(REAL(f), off, n, pp); }
static int st_unfetch(vfs_file *f, vfs_int64 off, void *p) { return vfs_unfetch(REAL(f), off, p); }

static const vfs_io_methods st_methods = {
	3, st_close, st_read, st_write, st_truncate, st_sync, st_file_size, st_lock, st_unlock,
	st_check_reserved, st_file_control, st_sector_size, st_device_chars,
	st_shm_map, st_shm_lock, st_shm_barrier, st_shm_unmap, st_fetch, st_unfetch,
};

static int st_open(vfs_vfs *vfs, const char *name, vfs_file *f, int flags, int *out_flags) {
	st_tfile *tf = (st_tfile*)f;
	tf->real = (vfs_file*)(tf + 1);
	tf->trace = NULL;
	tf->base.pMethods = NULL;
	int rc = st_base->xOpen(st_base, name, tf->real, flags, out_flags);
	if (rc != vfs_ok || tf->real->pMethods == NULL) {
		return rc;
	}
	if ((flags & vfs_open_wal) && name) {
		tf->trace = st_lookup(name, 1);
	}
	tf->base.pMethods = &st_methods;
	return rc;
}

// st_register registers the tracing VFS under name, once. It returns 0,
// -1 when SQLite's API is missing from the program, or a SQLite error.
static int st_register(const char *name) {
	if (!sqlite3_vfs_find || !sqlite3_vfs_register) return -1;
	if (sqlite3_vfs_find(name)) return 0;
	st_base = sqlite3_vfs_find(NULL);
	if (!st_base) return vfs_ioerr;
	memcpy(&st_self, st_base, sizeof st_self);
	st_self.pNext = NULL;
	st_self.zName = strdup(name);
	st_self.szOsFile = (int)sizeof(st_tfile) + st_base->szOsFile;
	st_self.xOpen = st_open;
	return sqlite3_vfs_register(&st_self, 0);
}

static void st_set_sync_delay(long us) { st_sync_delay_us = us; }

static int st_counts(const char *path, long long *writes, long long *syncs, long long *unsynced) {
	st_trace *t = st_lookup(path, 0);
	if (!t) return 0;
	pthread_mutex_lock(&st_mu);
	*writes = t->writes;
	*syncs = t->syncs;
	*unsynced = t->unsynced;
	pthread_mutex_unlock(&st_mu);
	return 1;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	_ "github.com/mattn/go-sqlite3" // the SQLite this VFS wraps
)

// Name is the VFS's name, for the DSN parameter vfs=.
const Name = "paystatus-synctrace"

var (
	registerOnce sync.Once
	registerErr  error
)

// Register registers the VFS with SQLite, once per process, and returns
// its name.
func Register() (string, error) {
	registerOnce.Do(func() {
		cname := C.CString(Name)
		defer C.free(unsafe.Pointer(cname))
		switch rc := C.st_register(cname); rc {
		case 0:
		case -1:
			registerErr = errors.New("synctrace: SQLite's C API is not linked in")
		default:
			registerErr = fmt.Errorf("synctrace: register VFS: sqlite code %d", int(rc))
		}
	})
	return Name, registerErr
}

// SetSyncDelay makes every WAL sync through the VFS, in every database,
// sleep d before it runs, until it is set back to 0.
func SetSyncDelay(d time.Duration) {
	C.st_set_sync_delay(C.long(d.Microseconds()))
}

// Counts is what the VFS saw of one WAL file.
type Counts struct {
	Writes int64 // successful writes
	Syncs  int64 // successful syncs
	// Unsynced is how many writes no completed sync is known to cover.
	Unsynced int64
}

// WAL returns the counts of the WAL file of the SQLite database at
// dbPath, and whether that file was opened through the VFS at all.
func WAL(dbPath string) (Counts, bool) {
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return Counts{}, false
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(dir, filepath.Base(abs))
	}
	cpath := C.CString(abs + "-wal")
	defer C.free(unsafe.Pointer(cpath))
	var writes, syncs, unsynced C.longlong
	if C.st_counts(cpath, &writes, &syncs, &unsynced) == 0 {
		return Counts{}, false
	}
	return Counts{Writes: int64(writes), Syncs: int64(syncs), Unsynced: int64(unsynced)}, true
}
