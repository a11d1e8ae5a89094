// SQLite's VFS ABI, as published in sqlite3.h (structure version 3 of
// sqlite3_vfs and sqlite3_io_methods), for the VFSes of this package and
// of synctrace. The functions are resolved at link time against the copy
// of SQLite that mattn/go-sqlite3 compiles in; weak, so that cgo's trial
// link of a package alone succeeds. synctrace finds this file through
// its -I flag, a dependency the go command's build cache does not see: after
// changing it, build synctrace's tests with -a (or clean the cache).
#ifndef PAYSTATUS_SQLITEVFS_H
#define PAYSTATUS_SQLITEVFS_H

typedef long long vfs_int64;
typedef struct vfs_file vfs_file;
typedef struct vfs_io_methods {
	int iVersion;
	int (*xClose)(vfs_file*);
	int (*xRead)(vfs_file*, void*, int, vfs_int64);
	int (*xWrite)(vfs_file*, const void*, int, vfs_int64);
	int (*xTruncate)(vfs_file*, vfs_int64);
	int (*xSync)(vfs_file*, int);
	int (*xFileSize)(vfs_file*, vfs_int64*);
	int (*xLock)(vfs_file*, int);
	int (*xUnlock)(vfs_file*, int);
	int (*xCheckReservedLock)(vfs_file*, int*);
	int (*xFileControl)(vfs_file*, int, void*);
	int (*xSectorSize)(vfs_file*);
	int (*xDeviceCharacteristics)(vfs_file*);
	int (*xShmMap)(vfs_file*, int, int, int, void volatile**);
	int (*xShmLock)(vfs_file*, int, int, int);
	void (*xShmBarrier)(vfs_file*);
	int (*xShmUnmap)(vfs_file*, int);
	int (*xFetch)(vfs_file*, vfs_int64, int, void**);
	int (*xUnfetch)(vfs_file*, vfs_int64, void*);
} vfs_io_methods;
struct vfs_file { const vfs_io_methods *pMethods; };

typedef struct vfs_vfs vfs_vfs;
struct vfs_vfs {
	int iVersion;
	int szOsFile;
	int mxPathname;
	vfs_vfs *pNext;
	const char *zName;
	void *pAppData;
	int (*xOpen)(vfs_vfs*, const char*, vfs_file*, int, int*);
	void *rest[15]; // xDelete … xNextSystemCall, forwarded as they are
};

extern vfs_vfs *sqlite3_vfs_find(const char *name) __attribute__((weak));
extern int sqlite3_vfs_register(vfs_vfs *vfs, int makeDefault) __attribute__((weak));

enum {
	vfs_ok = 0,
	vfs_nomem = 7,
	vfs_ioerr = 10,
	vfs_open_wal = 0x00080000,
};

// The calls of io_methods versions 2 and 3, made on a wrapped file whose
// methods may be of an older version, with the answers SQLite's own VFSes
// give when a call is missing.
static inline int vfs_shm_map(vfs_file *f, int pg, int sz, int ext, void volatile **pp) {
	if (f->pMethods->iVersion < 2) return vfs_ioerr;
	return f->pMethods->xShmMap(f, pg, sz, ext, pp);
}
static inline int vfs_shm_lock(vfs_file *f, int off, int n, int flags) {
	if (f->pMethods->iVersion < 2) return vfs_ioerr;
	return f->pMethods->xShmLock(f, off, n, flags);
}
static inline void vfs_shm_barrier(vfs_file *f) {
	if (f->pMethods->iVersion >= 2) f->pMethods->xShmBarrier(f);
}
static inline int vfs_shm_unmap(vfs_file *f, int del) {
	if (f->pMethods->iVersion < 2) return vfs_ok;
	return f->pMethods->xShmUnmap(f, del);
}
static inline int vfs_fetch(vfs_file *f, vfs_int64 off, int n, void **pp) {
	if (f->pMethods->iVersion < 3) { *pp = 0; return vfs_ok; }
	return f->pMethods->xFetch(f, off, n, pp);
}
static inline int vfs_unfetch(vfs_file *f, vfs_int64 off, void *p) {
	if (f->pMethods->iVersion < 3) return vfs_ok;
	return f->pMethods->xUnfetch(f, off, p);
}

#endif
