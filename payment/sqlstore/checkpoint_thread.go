package sqlstore

/*
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

// SQLite's C API, resolved at link time against the copy that
// github.com/mattn/go-sqlite3 compiles into the program. Weak, so that cgo's
// trial link of this package on its own succeeds; ckpt_start checks them.
typedef struct sqlite3 sqlite3;
extern int sqlite3_open_v2(const char *filename, sqlite3 **db, int flags, const char *vfs) __attribute__((weak));
extern int sqlite3_close_v2(sqlite3 *db) __attribute__((weak));
extern int sqlite3_wal_checkpoint_v2(sqlite3 *db, const char *schema, int mode, int *log_frames, int *checkpointed) __attribute__((weak));
extern int sqlite3_exec(sqlite3 *db, const char *sql, int (*callback)(void *, int, char **, char **), void *arg, char **errmsg) __attribute__((weak));

enum {
	ckpt_open_readwrite = 0x00000002, // SQLITE_OPEN_READWRITE
	ckpt_open_fullmutex = 0x00010000, // SQLITE_OPEN_FULLMUTEX: the Go side may run a pass on the same handle
	ckpt_mode_passive = 0,            // SQLITE_CHECKPOINT_PASSIVE
	ckpt_busy = 5,                    // SQLITE_BUSY
	ckpt_background_nice = 19,
};

typedef struct {
	sqlite3 *db;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake;
	int stopping; // guarded by mu
	long period_ns;
	// What the thread's latest pass saw, for the Go side's catch-up check.
	atomic_int last_rc;
	atomic_int last_frames;
	atomic_int last_checkpointed;
	atomic_long passes;
} ckpt_thread;

// ckpt_pass runs one PASSIVE checkpoint. SQLITE_BUSY (another connection
// is checkpointing, or a writer holds the WAL index for a moment) is not a
// failure: the pass copied nothing and the next one tries again.
static int ckpt_pass(ckpt_thread *t, int *frames, int *checkpointed) {
	*frames = -1;
	*checkpointed = -1;
	int rc = sqlite3_wal_checkpoint_v2(t->db, NULL, ckpt_mode_passive, frames, checkpointed);
	return rc == ckpt_busy ? 0 : rc;
}

static void *ckpt_loop(void *arg) {
	ckpt_thread *t = arg;
#ifdef __linux__
	// On Linux a thread has its own nice value: this one only gets the CPU
	// when the server's threads do not want it.
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), ckpt_background_nice);
#endif
	pthread_mutex_lock(&t->mu);
	while (!t->stopping) {
		struct timespec at;
#ifdef __linux__
		clock_gettime(CLOCK_MONOTONIC, &at);
#else
		clock_gettime(CLOCK_REALTIME, &at);
#endif
		at.tv_sec += t->period_ns / 1000000000L;
		at.tv_nsec += t->period_ns % 1000000000L;
		if (at.tv_nsec >= 1000000000L) {
			at.tv_sec++;
			at.tv_nsec -= 1000000000L;
		}
		while (!t->stopping && pthread_cond_timedwait(&t->wake, &t->mu, &at) != ETIMEDOUT) {
		}
		if (t->stopping) {
			break;
		}
		pthread_mutex_unlock(&t->mu);
		int frames, checkpointed;
		int rc = ckpt_pass(t, &frames, &checkpointed);
		atomic_store(&t->last_frames, frames);
		atomic_store(&t->last_checkpointed, checkpointed);
		atomic_store(&t->last_rc, rc);
		atomic_fetch_add(&t->passes, 1);
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

// ckpt_start opens path and starts the thread. On failure it returns NULL
// and sets *err: a SQLite result code, an errno, or -1 when SQLite's API is
// missing from the program.
static ckpt_thread *ckpt_start(const char *path, long period_ns, int *err) {
	if (!sqlite3_open_v2 || !sqlite3_close_v2 || !sqlite3_wal_checkpoint_v2 || !sqlite3_exec) {
		*err = -1;
		return NULL;
	}
	ckpt_thread *t = calloc(1, sizeof *t);
	if (!t) {
		*err = ENOMEM;
		return NULL;
	}
	t->period_ns = period_ns;
	int rc = sqlite3_open_v2(path, &t->db, ckpt_open_readwrite | ckpt_open_fullmutex, NULL);
	if (rc == 0) {
		// A new connection learns that the database is in WAL mode, and opens
		// the WAL, on its first read; until then a checkpoint does nothing.
		rc = sqlite3_exec(t->db, "PRAGMA journal_mode", NULL, NULL, NULL);
	}
	if (rc != 0) {
		sqlite3_close_v2(t->db);
		free(t);
		*err = rc;
		return NULL;
	}
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
#ifdef __linux__
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
	pthread_cond_init(&t->wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&t->mu, NULL);
	rc = pthread_create(&t->thread, NULL, ckpt_loop, t);
	if (rc != 0) {
		pthread_cond_destroy(&t->wake);
		pthread_mutex_destroy(&t->mu);
		sqlite3_close_v2(t->db);
		free(t);
		*err = rc;
		return NULL;
	}
	return t;
}

// ckpt_stop ends the thread after any pass in progress and frees t.
static int ckpt_stop(ckpt_thread *t) {
	pthread_mutex_lock(&t->mu);
	t->stopping = 1;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->mu);
	int rc = sqlite3_close_v2(t->db);
	free(t);
	return rc;
}

static int ckpt_last(ckpt_thread *t, int *frames, int *checkpointed, long *passes) {
	*frames = atomic_load(&t->last_frames);
	*checkpointed = atomic_load(&t->last_checkpointed);
	*passes = atomic_load(&t->passes);
	return atomic_load(&t->last_rc);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// checkpointThread runs PASSIVE checkpoints of one SQLite database every
// period, on a C thread of its own at the lowest CPU priority.
//
// A checkpoint waits in fsync for milliseconds. Run from Go, it is a cgo
// call that keeps its P until sysmon takes the P back, which on a quiet
// process takes up to 10 ms; with GOMAXPROCS=1 every request waited it out.
// Lending a second P for the call (changing GOMAXPROCS around it) stopped
// the world twice per pass, and in end-to-end runs with the passes turned off
// the receipt p99 was lower (1.0–1.1 ms against 1.1–1.4 ms). On a thread
// outside Go's scheduler a pass takes nothing from it.
type checkpointThread struct {
	mu sync.Mutex // guards t
	t  *C.ckpt_thread
}

var errCheckpointThreadClosed = errors.New("checkpoint thread closed")

func startCheckpointThread(path string, period time.Duration) (*checkpointThread, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var code C.int
	t := C.ckpt_start(cpath, C.long(period.Nanoseconds()), &code)
	if t == nil {
		if code == -1 {
			return nil, errors.New("start checkpoint thread: SQLite's C API is not linked in")
		}
		return nil, fmt.Errorf("start checkpoint thread: code %d", int(code))
	}
	return &checkpointThread{t: t}, nil
}

// last reports the thread's latest pass, and how many it has made.
func (c *checkpointThread) last() (walState, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t == nil {
		return walState{}, 0, errCheckpointThreadClosed
	}
	var frames, checkpointed C.int
	var passes C.long
	if rc := C.ckpt_last(c.t, &frames, &checkpointed, &passes); rc != 0 {
		return walState{}, int64(passes), fmt.Errorf("wal checkpoint: sqlite code %d", int(rc))
	}
	return walState{Frames: int(frames), Checkpointed: int(checkpointed)}, int64(passes), nil
}

// passNow runs one pass on the calling goroutine's thread, on the thread's
// database handle (SQLite serialises the two).
func (c *checkpointThread) passNow() (walState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t == nil {
		return walState{}, errCheckpointThreadClosed
	}
	var frames, checkpointed C.int
	if rc := C.ckpt_pass(c.t, &frames, &checkpointed); rc != 0 {
		return walState{}, fmt.Errorf("wal checkpoint: sqlite code %d", int(rc))
	}
	return walState{Frames: int(frames), Checkpointed: int(checkpointed)}, nil
}

// stop ends the thread, after a pass in progress, and closes its handle.
// Safe to call more than once.
func (c *checkpointThread) stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t == nil {
		return nil
	}
	rc := C.ckpt_stop(c.t)
	c.t = nil
	if rc != 0 {
		return fmt.Errorf("close checkpoint connection: sqlite code %d", int(rc))
	}
	return nil
}
