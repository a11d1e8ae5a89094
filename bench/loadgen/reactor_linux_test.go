package main

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func timespecBytes(ns int64) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint64(b, uint64(ns/1e9))
	binary.NativeEndian.PutUint64(b[8:], uint64(ns%1e9))
	return b
}

func TestReceiveStamp(t *testing.T) {
	const stamp = int64(1_700_000_000_123_456_789)
	for _, tc := range []struct {
		name   string
		oob    []byte
		kernel bool // the stamp is expected, not the time of the call
	}{
		{"no control messages", nil, false},
		{"the timestamp", cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespecBytes(stamp)), true},
		{"another message first", append(cmsg(unix.SOL_IP, unix.IP_TTL, []byte{64, 0, 0, 0}), cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespecBytes(stamp))...), true},
		{"a timestamp cut short", cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, []byte{1, 2, 3, 4}), false},
		{"a length past the buffer", cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespecBytes(stamp))[:unix.CmsgLen(8)], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().UnixNano()
			got := receiveStamp(tc.oob)
			if tc.kernel && got != stamp {
				t.Fatalf("got %d, want the kernel's %d", got, stamp)
			}
			if !tc.kernel && (got < before || got > time.Now().UnixNano()) {
				t.Fatalf("got %d, want the time of the call", got)
			}
		})
	}
}

// A read long after the bytes arrived is stamped with their arrival.
func TestReadStampedGivesArrivalTime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	raw, err := client.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := raw.Control(func(s uintptr) { fd = int(s) }); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		t.Fatal(err)
	}
	// The kernel turns receive timestamps on for the whole stack a moment
	// after the first socket asks (from a work queue), so the first bytes
	// may come unstamped: try a few times.
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(16)*2)
	const late = 50 * time.Millisecond
	var sent, at, read int64
	for attempt := 0; attempt < 5; attempt++ {
		sent = time.Now().UnixNano()
		if _, err := server.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(late) // the delay being measured: the bytes wait in the socket
		var n int
		var errno unix.Errno
		n, at, errno = rawReadStamped(fd, buf, oob)
		read = time.Now().UnixNano()
		if errno != 0 || string(buf[:n]) != "hello" {
			t.Fatalf("read %q, errno %v", buf[:n], errno)
		}
		if at >= sent && read-at >= int64(late) {
			return
		}
	}
	t.Fatalf("stamped %v after the send and %v before the read; want the arrival, at least %v before the read",
		time.Duration(at-sent), time.Duration(read-at), late)
}
