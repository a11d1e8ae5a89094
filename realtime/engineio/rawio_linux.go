//go:build linux

package engineio

import (
	"syscall"
	"unsafe"
)

// writeNonblocking and readNonblocking do one system call on a socket in
// non-blocking mode. They skip the runtime's syscall bookkeeping because
// the call cannot block: with it, every write of a broadcast is a chance
// for sysmon to hand the P to another thread, and a broadcast's writes
// must not pay a context switch each.
func writeNonblocking(fd uintptr, b []byte) (int, error) {
	return socketCall(syscall.SYS_WRITE, fd, b)
}

func readNonblocking(fd uintptr, b []byte) (int, error) {
	return socketCall(syscall.SYS_READ, fd, b)
}

// socketCall is read(2) or write(2) on b, returning -1 and the errno on
// failure as the syscall package does.
func socketCall(trap, fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}
