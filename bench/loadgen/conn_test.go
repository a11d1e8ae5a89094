package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer accepts websocket upgrades and lets a test play the server's
// side of a connection frame by frame.
type fakeServer struct {
	t     *testing.T
	ln    net.Listener
	conns chan *fakeConn
	// answer writes the upgrade response; the default is a correct one
	// followed, in the same write, by the Engine.IO open packet.
	answer func(w io.Writer, key string)
}

type fakeConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func newFakeServer(t *testing.T) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, conns: make(chan *fakeConn, 16)}
	s.answer = func(w io.Writer, key string) {
		fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n%s",
			acceptKey(key), srvFrame(true, opText, []byte(`0{"sid":"s1","pingInterval":25000,"pingTimeout":20000}`)))
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(nc)
			req, err := http.ReadRequest(br)
			if err != nil {
				t.Errorf("fake server: %v", err)
				nc.Close()
				continue
			}
			if req.URL.RequestURI() != "/socket.io/?EIO=4&transport=websocket" || req.Header.Get("Upgrade") != "websocket" ||
				req.Header.Get("Sec-WebSocket-Version") != "13" || req.Header.Get("User-Agent") != userAgent {
				t.Errorf("fake server: unexpected request %s %v", req.URL, req.Header)
			}
			var out strings.Builder
			s.answer(&out, req.Header.Get("Sec-WebSocket-Key"))
			if _, err := io.WriteString(nc, out.String()); err != nil {
				t.Errorf("fake server: %v", err)
			}
			s.conns <- &fakeConn{t: t, nc: nc, br: br}
		}
	}()
	return s
}

func (s *fakeServer) url() string {
	return "ws://" + s.ln.Addr().String() + "/socket.io/?EIO=4&transport=websocket"
}

func (s *fakeServer) accept() *fakeConn {
	select {
	case c := <-s.conns:
		return c
	case <-time.After(10 * time.Second):
		s.t.Fatal("no connection")
		return nil
	}
}

// send writes the given frames, each cut into pieces of at most piece
// bytes written separately (0: all in one write).
func (c *fakeConn) send(piece int, frames ...[]byte) {
	c.t.Helper()
	b := cat(frames...)
	if piece <= 0 {
		piece = len(b)
	}
	for len(b) > 0 {
		n := min(piece, len(b))
		if _, err := c.nc.Write(b[:n]); err != nil {
			c.t.Fatalf("fake server write: %v", err)
		}
		b = b[n:]
		if piece < 16 {
			time.Sleep(time.Millisecond) // let the client read the pieces separately
		}
	}
}

func (c *fakeConn) text(s string) []byte { return srvFrame(true, opText, []byte(s)) }

// recv reads one client frame, which must be masked.
func (c *fakeConn) recv() (byte, string) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	read := func(n int) []byte {
		b := make([]byte, n)
		if _, err := io.ReadFull(c.br, b); err != nil {
			c.t.Fatalf("fake server read: %v", err)
		}
		return b
	}
	frame := read(2)
	n := int(frame[1] & 0x7f)
	switch n {
	case 126:
		ext := read(2)
		frame = append(frame, ext...)
		n = int(binary.BigEndian.Uint16(ext))
	case 127:
		ext := read(8)
		frame = append(frame, ext...)
		n = int(binary.BigEndian.Uint64(ext))
	}
	frame = append(frame, read(4+n)...)
	op, p := unmaskClientFrame(c.t, frame)
	return op, string(p)
}

func (c *fakeConn) expect(op byte, payload string) {
	c.t.Helper()
	gotOp, got := c.recv()
	if gotOp != op || got != payload {
		c.t.Fatalf("client sent %d %q, want %d %q", gotOp, got, op, payload)
	}
}

// expectEOF waits until the client closed the connection.
func (c *fakeConn) expectEOF() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c.br); err != nil {
		c.t.Fatalf("waiting for the client to close: %v", err)
	}
}

// handshake plays the server's side up to joined-order; extra frames go
// out in the same write as the join reply.
func (c *fakeConn) handshake(order string, extra ...[]byte) {
	c.t.Helper()
	c.expect(opText, "40")
	c.send(0, c.text(`40{"sid":"x"}`))
	c.expect(opText, fmt.Sprintf(`42["join-order",{"orderId":"%s","token":"tok"}]`, order))
	c.send(0, append([][]byte{c.text(`42["joined-order",{"orderId":"` + order + `","success":true}]`)}, extra...)...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startClient connects c (the fake server plays along on its own
// goroutine via play) and starts serving it, with the reactor where there
// is one, or with the blocking loop.
func startClient(t *testing.T, srv *fakeServer, c *client, reactor bool, play func(*fakeConn)) *fakeConn {
	t.Helper()
	got := make(chan *fakeConn, 1)
	go func() {
		fc := srv.accept()
		play(fc)
		got <- fc
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	c.run.wg.Add(1)
	loop := c.blockingLoop
	if reactor {
		loop = c.serve()
	}
	if loop != nil {
		go loop()
	}
	return <-got
}

func servingModes(t *testing.T, f func(t *testing.T, reactor bool)) {
	t.Run("reactor", func(t *testing.T) { f(t, true) })
	t.Run("blocking", func(t *testing.T) { f(t, false) })
}

func TestClientSteadyState(t *testing.T) {
	servingModes(t, func(t *testing.T, reactor bool) {
		srv := newFakeServer(t)
		set := &clientSet{wsURL: srv.url(), fanCap: 8, sched: make([]atomic.Int64, 1), lat: make([]atomic.Int64, 1)}
		c := &client{idx: 0, orderID: "o1", token: "tok", run: set}
		before := time.Now().UnixNano()
		// A broadcast in the same write as joined-order is not lost.
		fc := startClient(t, srv, c, reactor, func(fc *fakeConn) {
			fc.handshake("o1", fc.text(`42["connection-test",{"orderId":"o1","timestamp":100}]`))
		})
		waitFor(t, "the early broadcast", func() bool { return set.fanRecvs.Load() == 1 })

		// Websocket ping: pong with the same payload. Engine.IO ping: "3".
		fc.send(0, srvFrame(true, opPing, []byte("hb")))
		fc.expect(opPong, "hb")
		fc.send(0, fc.text("2"))
		fc.expect(opText, "3")

		// A broadcast fragmented, with a ping between the fragments, and
		// trickled a few bytes per write.
		frames := cat(
			srvFrame(false, opText, []byte(`42["connection-te`)),
			srvFrame(true, opPing, []byte("mid")),
			srvFrame(false, opContinuation, []byte(`st",{"orderId":"o1",`)),
			srvFrame(true, opContinuation, []byte(`"timestamp":101}]`)))
		fc.send(3, frames)
		fc.expect(opPong, "mid")
		waitFor(t, "the fragmented broadcast", func() bool { return set.fanRecvs.Load() == 2 })

		// Acks: for a broadcast that asks (both paths), and for an update.
		fc.send(0, fc.text(`4217["connection-test",{"orderId":"o1","timestamp":102}]`))
		fc.expect(opText, `4317[{"received":true}]`)
		fc.send(0, fc.text(`4218[ "connection-test",{"orderId":"o1","timestamp":103}]`))
		fc.expect(opText, `4318[{"received":true}]`)
		set.sched[0].Store(before)
		fc.send(0, fc.text(`425["payment-status-update",{"orderId":"o1","status":"completed","seq":1}]`))
		fc.expect(opText, `435[{"orderId":"o1","received":true,"seq":1}]`)

		// Bad frames are counted and do not end the connection.
		fc.send(1, fc.text(`42["connection-test",{"timestamp":"x"}]`), srvFrame(true, opBinary, []byte{1}),
			fc.text(`42["payment-status-update",[`), fc.text(`4zz`))
		waitFor(t, "bad frames", func() bool { return set.badFrames.Load() == 3 })
		fc.send(0, fc.text("2"))
		fc.expect(opText, "3")

		if set.updates.Load() != 1 || set.terminal.Load() != 1 || set.lat[0].Load() <= 0 {
			t.Errorf("update not recorded: %d %d %d", set.updates.Load(), set.terminal.Load(), set.lat[0].Load())
		}

		set.closeAll([]*client{c}, 10*time.Second)
		fc.expectEOF()
		if n := set.unexpected.Load(); n != 0 {
			t.Errorf("%d unexpected disconnections: %s", n, set.lastErr())
		}
		if n := set.fanRecvs.Load(); n != 4 {
			t.Errorf("fanRecvs %d, want 4", n)
		}
		after := time.Now().UnixNano()
		for i, r := range c.fan {
			if r.ts != int64(100+i) || r.recv < before || r.recv > after {
				t.Errorf("receipt %d: %+v", i, r)
			}
		}
	})
}

func TestClientServerEnds(t *testing.T) {
	cases := []struct {
		name  string
		end   func(fc *fakeConn)
		reply func(fc *fakeConn) // what the client answers, if anything
		err   string
	}{
		{"engine.io close", func(fc *fakeConn) { fc.send(0, fc.text("1")) }, nil, "server sent close"},
		{"socket.io disconnect", func(fc *fakeConn) { fc.send(0, fc.text("41")) }, nil, "server disconnected"},
		{"tcp close", func(fc *fakeConn) { fc.nc.Close() }, nil, "EOF"},
		{"websocket close", func(fc *fakeConn) { fc.send(0, srvFrame(true, opClose, []byte{0x03, 0xe9, 'b'})) },
			func(fc *fakeConn) { fc.expect(opClose, "\x03\xe9") }, "close 1001"},
		{"protocol error", func(fc *fakeConn) { fc.send(0, []byte{0x83, 0}) },
			func(fc *fakeConn) {
				op, p := fc.recv()
				if op != opClose || len(p) < 2 || binary.BigEndian.Uint16([]byte(p)) != closeProtocolError {
					fc.t.Errorf("client answered %d %q, want close 1002", op, p)
				}
			}, "opcode 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			servingModes(t, func(t *testing.T, reactor bool) {
				srv := newFakeServer(t)
				set := &clientSet{wsURL: srv.url()}
				c := &client{idx: 3, orderID: "o1", token: "tok", run: set}
				fc := startClient(t, srv, c, reactor, func(fc *fakeConn) { fc.handshake("o1") })
				tc.end(fc)
				if tc.reply != nil {
					tc.reply(fc)
				}
				waitFor(t, "the disconnection", func() bool { return set.unexpected.Load() == 1 })
				if !strings.Contains(set.lastErr(), "client 3: ") || !strings.Contains(set.lastErr(), tc.err) {
					t.Errorf("last error %q, want one about %q", set.lastErr(), tc.err)
				}
				done := make(chan struct{})
				go func() { set.wg.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("client not finished")
				}
				fc.nc.Close()
			})
		})
	}
}

// An ending that arrives in the same read as joined-order still counts.
func TestClientEndsRightAfterJoin(t *testing.T) {
	servingModes(t, func(t *testing.T, reactor bool) {
		srv := newFakeServer(t)
		set := &clientSet{wsURL: srv.url()}
		c := &client{idx: 1, orderID: "o1", token: "tok", run: set}
		fc := startClient(t, srv, c, reactor, func(fc *fakeConn) { fc.handshake("o1", fc.text("1")) })
		waitFor(t, "the disconnection", func() bool { return set.unexpected.Load() == 1 })
		fc.expectEOF()
		set.wg.Wait()
	})
}

func TestConnectFailures(t *testing.T) {
	cases := []struct {
		name   string
		answer func(w io.Writer, key string)
		err    string
	}{
		{"refused upgrade", func(w io.Writer, key string) {
			io.WriteString(w, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		}, "bad handshake (HTTP 400)"},
		{"wrong accept key", func(w io.Writer, key string) {
			fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acceptKey("other"))
		}, "bad handshake"},
		{"no upgrade header", func(w io.Writer, key string) {
			fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acceptKey(key))
		}, "bad handshake"},
		{"extension not offered", func(w io.Writer, key string) {
			fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n", acceptKey(key))
		}, "extension"},
		{"no open packet", func(w io.Writer, key string) {
			fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n%s", acceptKey(key), srvFrame(true, opText, []byte("40")))
		}, "expected open packet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t)
			srv.answer = tc.answer
			c := &client{orderID: "o1", run: &clientSet{wsURL: srv.url()}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.connect(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("connect: %v, want an error about %q", err, tc.err)
			}
		})
	}
}
