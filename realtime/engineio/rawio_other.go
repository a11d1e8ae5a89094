//go:build !linux

package engineio

import "syscall"

func writeNonblocking(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }

func readNonblocking(fd uintptr, b []byte) (int, error) { return syscall.Read(int(fd), b) }
