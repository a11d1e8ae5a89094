//go:build linux

package engineio

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// sendRing submits a broadcast's socket writes to the kernel in batches
// through io_uring: one system call for up to ringEntries sends instead of
// one each, so a broadcast does not pay a system call's entry and exit per
// socket. Every send carries
// MSG_DONTWAIT, so it completes during the submitting call, with a byte
// count (perhaps short) or -EAGAIN, and never waits in the kernel.
type sendRing struct {
	mu sync.Mutex // one batch at a time

	fd      int
	ringMem []byte // the submission and completion rings (one mapping)
	sqeMem  []byte

	sqHead, sqTail, sqMask *uint32
	sqArray                unsafe.Pointer // [entries]uint32
	cqHead, cqTail, cqMask *uint32
	cqes                   unsafe.Pointer // [cqEntries]cqe
	sqes                   unsafe.Pointer // [entries]sqe
	entries                uint32
}

const (
	// ringEntries bounds one submission, during which the goroutine
	// cannot be preempted: a submission must stay within about one of the
	// scheduler's time slices. The measurements behind the value are in
	// docs/performance.md.
	ringEntries = 1024

	sysIOUringSetup = 425
	sysIOUringEnter = 426

	ioringOffSQRing     = 0
	ioringOffSQEs       = 0x10000000
	ioringFeatSingleMap = 1 << 0
	ioringEnterGetEvent = 1 << 0
	ioringOpSend        = 26

	msgDontWait = 0x40
	msgNoSignal = 0x4000
)

// The kernel's structures, as in <linux/io_uring.h>.
type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	msgFlags    uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFDIn  int32
	addr3       uint64
	pad         uint64
}

type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// newSendRing sets up a ring, or returns an error where io_uring is not
// available (old kernels, seccomp profiles that refuse it); callers then
// write with one system call per socket.
func newSendRing() (*sendRing, error) {
	var p uringParams
	fd, _, errno := syscall.Syscall(sysIOUringSetup, ringEntries, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, errno
	}
	r := &sendRing{fd: int(fd), entries: p.sqEntries}
	if p.features&ioringFeatSingleMap == 0 {
		_ = syscall.Close(r.fd)
		return nil, errors.New("io_uring without single mapping")
	}
	size := max(int(p.sqOff.array)+int(p.sqEntries)*4, int(p.cqOff.cqes)+int(p.cqEntries)*int(unsafe.Sizeof(cqe{})))
	var err error
	if r.ringMem, err = syscall.Mmap(r.fd, ioringOffSQRing, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		_ = syscall.Close(r.fd)
		return nil, err
	}
	if r.sqeMem, err = syscall.Mmap(r.fd, ioringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		_ = syscall.Munmap(r.ringMem)
		_ = syscall.Close(r.fd)
		return nil, err
	}
	base := unsafe.Pointer(&r.ringMem[0])
	r.sqHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = (*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.sqArray = unsafe.Add(base, p.sqOff.array)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = (*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Add(base, p.cqOff.cqes)
	r.sqes = unsafe.Pointer(&r.sqeMem[0])
	return r, nil
}

// send writes each item's frame to its descriptor and stores the result in
// item.res: bytes written, or a negative errno. Items are taken in chunks
// of the ring's size.
func (r *sendRing) send(items []batchItem) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd < 0 {
		return errors.New("io_uring: ring closed")
	}
	for len(items) > 0 {
		chunk := items[:min(len(items), int(r.entries))]
		items = items[len(chunk):]
		if err := r.sendChunk(chunk); err != nil {
			return err
		}
	}
	return nil
}

// sendChunk submits at most r.entries sends and reaps all of their
// completions. r.mu must be held.
func (r *sendRing) sendChunk(chunk []batchItem) error {
	mask := atomic.LoadUint32(r.sqMask)
	tail := atomic.LoadUint32(r.sqTail)
	for i := range chunk {
		idx := (tail + uint32(i)) & mask
		e := (*sqe)(unsafe.Add(r.sqes, uintptr(idx)*unsafe.Sizeof(sqe{})))
		*e = sqe{
			opcode:   ioringOpSend,
			fd:       int32(chunk[i].fd),
			addr:     uint64(uintptr(unsafe.Pointer(&chunk[i].frame[0]))),
			len:      uint32(len(chunk[i].frame)),
			msgFlags: msgDontWait | msgNoSignal,
			userData: uint64(i),
		}
		*(*uint32)(unsafe.Add(r.sqArray, uintptr(idx)*4)) = idx
		chunk[i].res = resPending
	}
	// The kernel reads the entries after it sees the new tail.
	atomic.StoreUint32(r.sqTail, tail+uint32(len(chunk)))
	submitted, remaining := 0, len(chunk)
	for tries := 0; remaining > 0; tries++ {
		if tries == 1000 {
			return errors.New("io_uring: sends did not complete")
		}
		var n uintptr
		var errno syscall.Errno
		if submitted < len(chunk) {
			// Sends with MSG_DONTWAIT complete within the submitting call,
			// so this does not wait.
			n, _, errno = syscall.RawSyscall6(sysIOUringEnter, uintptr(r.fd), uintptr(len(chunk)-submitted), 0, ioringEnterGetEvent, 0, 0)
		} else {
			// Not expected; wait as a blocking call would.
			_, _, errno = syscall.Syscall6(sysIOUringEnter, uintptr(r.fd), 0, uintptr(remaining), ioringEnterGetEvent, 0, 0)
		}
		switch errno {
		case 0:
			submitted += int(n)
		case syscall.EINTR, syscall.EAGAIN, syscall.EBUSY:
		default:
			return errno
		}
		remaining -= r.reap(chunk)
	}
	return nil
}

// reap records the completions waiting in the ring and returns how many.
func (r *sendRing) reap(chunk []batchItem) int {
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail)
	mask := atomic.LoadUint32(r.cqMask)
	n := 0
	for ; head != tail; head++ {
		c := (*cqe)(unsafe.Add(r.cqes, uintptr(head&mask)*unsafe.Sizeof(cqe{})))
		if i := int(c.userData); i < len(chunk) {
			chunk[i].res = int(c.res)
		}
		n++
	}
	atomic.StoreUint32(r.cqHead, head)
	return n
}

func (r *sendRing) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd < 0 {
		return
	}
	_ = syscall.Munmap(r.sqeMem)
	_ = syscall.Munmap(r.ringMem)
	_ = syscall.Close(r.fd)
	r.fd = -1
}
