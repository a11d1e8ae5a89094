//go:build linux

package engineio

import (
	"errors"
	"syscall"
	"testing"
)

// socketPair returns two connected, non-blocking stream sockets.
func socketPair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = syscall.Close(fds[0]); _ = syscall.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestNonblockingIO(t *testing.T) {
	t.Run("bytes written are the bytes read", func(t *testing.T) {
		a, b := socketPair(t)
		if n, err := writeNonblocking(uintptr(a), []byte("42[\"ping\"]")); err != nil || n != 10 {
			t.Fatalf("write: %d, %v", n, err)
		}
		buf := make([]byte, 64)
		n, err := readNonblocking(uintptr(b), buf)
		if err != nil || string(buf[:n]) != "42[\"ping\"]" {
			t.Fatalf("read: %q, %v", buf[:n], err)
		}
	})
	t.Run("nothing to read is EAGAIN, not a block", func(t *testing.T) {
		_, b := socketPair(t)
		n, err := readNonblocking(uintptr(b), make([]byte, 8))
		if n != -1 || !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("got %d, %v; want -1, EAGAIN", n, err)
		}
	})
	t.Run("a full socket takes part of a write, then refuses with EAGAIN", func(t *testing.T) {
		a, _ := socketPair(t)
		chunk := make([]byte, 64<<10)
		total, partial := 0, false
		for i := 0; i < 1000; i++ {
			n, err := writeNonblocking(uintptr(a), chunk)
			if errors.Is(err, syscall.EAGAIN) {
				if n != -1 {
					t.Fatalf("EAGAIN with n = %d", n)
				}
				if total == 0 {
					t.Fatal("EAGAIN before anything was written")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n < len(chunk) {
				partial = true
			}
			total += n
		}
		t.Fatalf("wrote %d bytes without EAGAIN (partial writes seen: %v)", total, partial)
	})
	t.Run("empty buffers are no-ops", func(t *testing.T) {
		a, b := socketPair(t)
		if n, err := writeNonblocking(uintptr(a), nil); n != 0 || err != nil {
			t.Fatalf("write nil: %d, %v", n, err)
		}
		if n, err := readNonblocking(uintptr(b), nil); n != 0 || err != nil {
			t.Fatalf("read nil: %d, %v", n, err)
		}
	})
}
