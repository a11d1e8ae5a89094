package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"paystatus/realtime/engineio"
	"paystatus/realtime/realtimetest"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func startIO(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	cfg.Logger = quietLogger
	if cfg.Engine.PingInterval == 0 {
		cfg.Engine.PingInterval = time.Minute
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.CloseClientConnections()
		ts.Close()
	})
	return srv, ts
}

// app is a namespace's application: it echoes "echo" events through their
// ack, joins rooms on "join" and records sockets and disconnects.
type app struct {
	joinOnConnect []string

	mu          sync.Mutex
	sockets     map[string]*Socket
	disconnects map[string]string
	events      []string
	ready       int
}

func newApp(n *Namespace, joinOnConnect ...string) *app {
	a := &app{joinOnConnect: joinOnConnect, sockets: map[string]*Socket{}, disconnects: map[string]string{}}
	n.OnConnection = func(s *Socket) {
		for _, r := range a.joinOnConnect {
			s.Join(r)
		}
		handler := &HandlerFuncs{}
		handler.Event = func(event string, args []any, ack AckFunc) {
			a.mu.Lock()
			a.events = append(a.events, fmt.Sprintf("%s:%s:%v:%v", s.ID(), event, args, ack != nil))
			a.mu.Unlock()
			switch event {
			case "echo":
				if ack != nil {
					ack(args...)
				}
			case "join":
				s.Join(args[0].(string))
				if ack != nil {
					ack(true)
				}
			}
		}
		handler.Disconnect = func(reason string) {
			a.mu.Lock()
			a.disconnects[s.ID()] = reason
			a.mu.Unlock()
		}
		s.Handler = handler
		// Recorded last: once a test sees the socket, its handlers are set
		// (see TestCloseDuringOnConnection for why tests wait for that).
		a.mu.Lock()
		a.sockets[s.ID()] = s
		a.ready++
		a.mu.Unlock()
	}
	return a
}

// readyCount counts the OnConnection calls that have finished.
func (a *app) readyCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ready
}

// socket returns the socket OnConnection finished with sid. The connect
// reply goes out just before OnConnection runs, so this waits a little.
func (a *app) socket(sid string) *Socket {
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.mu.Lock()
		s := a.sockets[sid]
		a.mu.Unlock()
		if s != nil || time.Now().After(deadline) {
			return s
		}
		time.Sleep(time.Millisecond)
	}
}

func (a *app) disconnect(sid string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.disconnects[sid]
	return r, ok
}

func (a *app) eventLog() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.events...)
}

func TestConnectReply(t *testing.T) {
	for _, recovery := range []bool{false, true} {
		t.Run(fmt.Sprintf("recovery %v", recovery), func(t *testing.T) {
			cfg := Config{}
			if recovery {
				cfg.RecoveryWindow = time.Minute
			}
			srv, ts := startIO(t, cfg)
			root := newApp(srv.Of("/"))
			custom := newApp(srv.Of("/custom"))
			cl := realtimetest.DialSocketIO(t, ts.URL, 4)
			reply := cl.Connect("/", "")
			if _, hasPID := reply["pid"]; hasPID != recovery {
				t.Fatalf("reply %v: pid present %v with recovery %v", reply, hasPID, recovery)
			}
			sock := root.socket(reply["sid"])
			if sock == nil || !sock.Connected() || sock.Recovered() {
				t.Fatalf("server socket %v for sid %s", sock, reply["sid"])
			}
			if got, ok := srv.Of("/").Socket(reply["sid"]); !ok || got != sock {
				t.Fatal("Namespace.Socket does not find the socket")
			}
			if len(sock.Auth()) != 0 || sock.Transport() != "websocket" || sock.Protocol() != 4 {
				t.Fatalf("auth %v transport %s protocol %d", sock.Auth(), sock.Transport(), sock.Protocol())
			}

			auth := `{"token":"abc","pid":"bogus","offset":"bogus-1"}`
			reply2 := cl.Connect("/custom", auth)
			if reply2["sid"] == reply["sid"] {
				t.Fatal("two namespaces share a socket id")
			}
			csock := custom.socket(reply2["sid"])
			if csock == nil {
				t.Fatal("no socket in /custom")
			}
			want := map[string]any{"token": "abc", "pid": "bogus", "offset": "bogus-1"}
			if recovery {
				// The recovery fields are the server's, not the application's.
				want = map[string]any{"token": "abc"}
				if csock.Recovered() || reply2["pid"] == "" || reply2["pid"] == "bogus" {
					t.Fatalf("bogus pid: recovered %v, reply %v", csock.Recovered(), reply2)
				}
			}
			if fmt.Sprint(csock.Auth()) != fmt.Sprint(want) {
				t.Fatalf("auth %v, want %v", csock.Auth(), want)
			}
			if srv.Of("/").Len() != 1 || srv.Of("/custom").Len() != 1 {
				t.Fatalf("namespace sizes %d and %d", srv.Of("/").Len(), srv.Of("/custom").Len())
			}
		})
	}
}

func TestEventAck(t *testing.T) {
	srv, ts := startIO(t, Config{})
	root := newApp(srv.Of("/"))
	custom := newApp(srv.Of("/custom"))
	cl := realtimetest.DialSocketIO(t, ts.URL, 4)
	root.socket(cl.Connect("/", "")["sid"])
	custom.socket(cl.Connect("/custom", "")["sid"])

	cl.Send(`21["echo",1,"a",{"k":[true]}]`)
	if got := cl.Recv(); got != `31[1,"a",{"k":[true]}]` {
		t.Fatalf("ack %q", got)
	}
	cl.Send(`2/custom,7["echo",true]`)
	if got := cl.Recv(); got != `3/custom,7[true]` {
		t.Fatalf("namespace ack %q", got)
	}
	cl.Send(`2123["echo"]`)
	if got := cl.Recv(); got != `3123[]` {
		t.Fatalf("empty ack %q", got)
	}
	// Without an id there is no ack; the next reply is for the next event.
	cl.Send(`2["echo",5]`)
	cl.Send(`2/nope,9["echo","dropped"]`) // namespace not joined: ignored
	cl.Send(`29["echo","x"]`)
	if got := cl.Recv(); got != `39["x"]` {
		t.Fatalf("after an event without ack id: %q", got)
	}
}

// connectedSocket starts a server and connects one client to its root
// namespace; it returns the app, the client, its socket id and socket.
func connectedSocket(t *testing.T) (*app, *realtimetest.Client, string, *Socket) {
	t.Helper()
	srv, ts := startIO(t, Config{})
	a := newApp(srv.Of("/"))
	cl := realtimetest.DialSocketIO(t, ts.URL, 4)
	sid := cl.Connect("/", "")["sid"]
	return a, cl, sid, a.socket(sid)
}

func TestServerEmit(t *testing.T) {
	a, cl, sid, sock := connectedSocket(t)

	if err := sock.Emit("plain", "é", 2); err != nil {
		t.Fatal(err)
	}
	if got := cl.Recv(); got != `2["plain","é",2]` {
		t.Fatalf("emit %q", got)
	}
	answers := make(chan []any, 2)
	for i := 0; i < 2; i++ {
		if err := sock.EmitWithAck("q", func(args []any) { answers <- args }, i); err != nil {
			t.Fatal(err)
		}
	}
	if got := cl.Recv(); got != `20["q",0]` {
		t.Fatalf("first emit with ack %q", got)
	}
	if got := cl.Recv(); got != `21["q",1]` {
		t.Fatalf("second emit with ack %q", got)
	}
	cl.Send(`31["second"]`)
	cl.Send(`30["first",2]`)
	cl.Send(`30["again"]`) // an ack is used once
	for _, want := range []string{"[second]", "[first 2]"} {
		select {
		case got := <-answers:
			if fmt.Sprint(got) != want {
				t.Fatalf("ack args %v, want %s", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no ack")
		}
	}
	// The third answer must not arrive; a round trip proves it was handled.
	cl.Send(`25["echo"]`)
	if got := cl.Recv(); got != `35[]` {
		t.Fatalf("echo %q", got)
	}
	select {
	case got := <-answers:
		t.Fatalf("an ack ran twice: %v", got)
	default:
	}

	sock.Disconnect()
	if got := cl.Recv(); got != "1" {
		t.Fatalf("server disconnect sent %q", got)
	}
	if err := sock.Emit("late"); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("emit after disconnect: %v", err)
	}
	if r, _ := a.disconnect(sid); r != "server namespace disconnect" {
		t.Fatalf("disconnect reason %q", r)
	}
}

func TestBroadcastRooms(t *testing.T) {
	srv, ts := startIO(t, Config{})
	nsp := srv.Of("/")
	var created, deleted []string
	var roomMu sync.Mutex
	nsp.OnRoomCreated = func(r string) { roomMu.Lock(); created = append(created, r); roomMu.Unlock() }
	nsp.OnRoomDeleted = func(r string) { roomMu.Lock(); deleted = append(deleted, r); roomMu.Unlock() }
	a := newApp(nsp, "all")
	names := []string{"A", "B", "C", "D"}
	clients := map[string]*realtimetest.Client{}
	sids := map[string]string{}
	for _, n := range names {
		clients[n] = realtimetest.DialSocketIO(t, ts.URL, 4)
		sids[n] = clients[n].Connect("/", "")["sid"]
		a.socket(sids[n])
	}
	for _, n := range []string{"A", "B", "C"} {
		clients[n].Send(`21["join","r"]`)
		if got := clients[n].Recv(); got != `31[true]` {
			t.Fatalf("join ack %q", got)
		}
	}
	realtimetest.Eventually(t, 5*time.Second, `nsp.RoomSize("all") == 4`, func() bool { return nsp.RoomSize("all") == 4 })
	if nsp.RoomSize("r") != 3 || nsp.RoomSize("all") != 4 || len(nsp.Members("r")) != 3 {
		t.Fatalf("room sizes r=%d all=%d", nsp.RoomSize("r"), nsp.RoomSize("all"))
	}

	if err := nsp.Broadcast("r", []string{sids["B"]}, "news", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	// A broadcast to everyone marks the end: what comes before it is what
	// the room broadcast delivered.
	if err := nsp.Broadcast("all", nil, "marker"); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		got := clients[n].Recv()
		if n == "A" || n == "C" {
			if got != `2["news",{"n":1}]` {
				t.Fatalf("%s got %q, want the news", n, got)
			}
			got = clients[n].Recv()
		}
		if got != `2["marker"]` {
			t.Fatalf("%s got %q, want the marker", n, got)
		}
	}

	// Leaving and disconnecting update the rooms.
	sockA := a.socket(sids["A"])
	if !sockA.Leave("r") || sockA.In("r") || nsp.RoomSize("r") != 2 || sockA.Leave("r") {
		t.Fatalf("Leave: in r %v, room size %d", sockA.In("r"), nsp.RoomSize("r"))
	}
	if fmt.Sprint(sockA.Rooms()) != "[all]" {
		t.Fatalf("rooms after leave %v", sockA.Rooms())
	}
	clients["D"].Send("1")
	realtimetest.Eventually(t, 5*time.Second, `nsp.Len() == 3 && nsp.RoomSize("all") == 3`, func() bool { return nsp.Len() == 3 && nsp.RoomSize("all") == 3 })
	roomMu.Lock()
	defer roomMu.Unlock()
	if fmt.Sprint(created) != "[all r]" || len(deleted) != 0 {
		t.Fatalf("rooms created %v deleted %v", created, deleted)
	}
}

func TestConnectErrors(t *testing.T) {
	srv, ts := startIO(t, Config{})
	a := newApp(srv.Of("/"))
	cl := realtimetest.DialSocketIO(t, ts.URL, 4)
	cl.Send("0/x,")
	got := cl.Recv()
	if !strings.HasPrefix(got, "4/x,{") || !strings.Contains(got, "Invalid namespace") {
		t.Fatalf("unknown namespace reply %q", got)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(got, "4/x,")), &body); err != nil || body["message"] != "Invalid namespace" {
		t.Fatalf("connect error body %q: %v", got, err)
	}
	cl.Send(`0[1,2]`)
	if got := cl.Recv(); got != `4{"message":"Invalid auth payload"}` {
		t.Fatalf("bad auth reply %q", got)
	}
	// The connection survives both and can still join.
	if a.socket(cl.Connect("/", "")["sid"]) == nil {
		t.Fatal("no socket after the connect errors")
	}
}

func TestMalformedPacketCloses(t *testing.T) {
	bad := []string{"9", "x", "2notanarray", `2["ev"`, `2[1]`, `2[]`, `5x-["f",{"_placeholder":true,"num":0}]`, `61-["no id"]`, `3["no id"]`, `31{"a":1}`}
	srv, ts := startIO(t, Config{})
	a := newApp(srv.Of("/"))
	for _, p := range bad {
		t.Run(p, func(t *testing.T) {
			cl := realtimetest.DialSocketIO(t, ts.URL, 4)
			sid := cl.Connect("/", "")["sid"]
			a.socket(sid)
			cl.Send(p)
			cl.ExpectClosed()
			realtimetest.Eventually(t, 5*time.Second, "the socket's disconnect", func() bool { _, ok := a.disconnect(sid); return ok })
			if r, _ := a.disconnect(sid); r != "parse error" {
				t.Fatalf("disconnect reason %q", r)
			}
		})
	}
	for _, e := range a.eventLog() {
		t.Errorf("a malformed packet reached OnEvent: %s", e)
	}
}

func TestClientDisconnect(t *testing.T) {
	srv, ts := startIO(t, Config{RecoveryWindow: time.Minute})
	nsp := srv.Of("/")
	a := newApp(nsp, "r")
	cl := realtimetest.DialSocketIO(t, ts.URL, 4)
	sid := cl.Connect("/", "")["sid"]
	a.socket(sid)
	cl.Send("1")
	realtimetest.Eventually(t, 5*time.Second, "the socket's disconnect", func() bool { _, ok := a.disconnect(sid); return ok })
	if r, _ := a.disconnect(sid); r != "client namespace disconnect" {
		t.Fatalf("reason %q", r)
	}
	if nsp.Len() != 0 || nsp.RoomSize("r") != 0 {
		t.Fatalf("len %d room %d after disconnect", nsp.Len(), nsp.RoomSize("r"))
	}
	// The engine connection stays and can connect again.
	sid2 := cl.Connect("/", "")["sid"]
	if sid2 == sid || a.socket(sid2) == nil {
		t.Fatal("reconnect reused the sid")
	}
}

func TestConnectTimeout(t *testing.T) {
	srv, ts := startIO(t, Config{ConnectTimeout: 50 * time.Millisecond})
	a := newApp(srv.Of("/"))
	slow := realtimetest.DialSocketIO(t, ts.URL, 4)
	quick := realtimetest.DialSocketIO(t, ts.URL, 4)
	a.socket(quick.Connect("/", "")["sid"])
	slow.ExpectClosed()
	// The connected client is left alone.
	quick.Send(`21["echo"]`)
	if got := quick.Recv(); got != `31[]` {
		t.Fatalf("connected client got %q", got)
	}
}

func TestEIO3Client(t *testing.T) {
	srv, ts := startIO(t, Config{Engine: engineio.Config{AllowEIO3: true}})
	a := newApp(srv.Of("/"))
	custom := newApp(srv.Of("/custom"))
	cl := realtimetest.DialSocketIO(t, ts.URL, 3)
	// A socket.io-client 2 is in "/" without asking.
	if got := cl.Recv(); got != "0" {
		t.Fatalf("first packet %q, want 0", got)
	}
	cl.Send(`21["echo","x"]`)
	if got := cl.Recv(); got != `31["x"]` {
		t.Fatalf("ack %q", got)
	}
	cl.Send("0/custom?token=1")
	if got := cl.Recv(); got != "0/custom," {
		t.Fatalf("namespace connect %q", got)
	}
	realtimetest.Eventually(t, 5*time.Second, `custom.readyCount() == 1`, func() bool { return custom.readyCount() == 1 })
	cl.Send("0/nope")
	if got := cl.Recv(); got != `4/nope,"Invalid namespace"` {
		t.Fatalf("v2 connect error %q", got)
	}
	if n := srv.Of("/").Len(); n != 1 {
		t.Fatalf("%d sockets in /", n)
	}
	if log := a.eventLog(); len(log) != 1 || !strings.Contains(log[0], ":echo:[x]:true") {
		t.Fatalf("events %q", log)
	}
}

func TestConnectionStateRecovery(t *testing.T) {
	srv, ts := startIO(t, Config{RecoveryWindow: time.Minute})
	nsp := srv.Of("/")
	a := newApp(nsp, "r")

	cl := realtimetest.DialSocketIO(t, ts.URL, 4)
	reply := cl.Connect("/", "")
	sid, pid := reply["sid"], reply["pid"]
	a.socket(sid)
	if pid == "" {
		t.Fatal("no pid with recovery on")
	}
	// OnConnection joins "r" just after the connect reply goes out.
	realtimetest.Eventually(t, 5*time.Second, `nsp.RoomSize("r") == 1`, func() bool { return nsp.RoomSize("r") == 1 })
	if err := nsp.Broadcast("r", nil, "e", 1); err != nil {
		t.Fatal(err)
	}
	args := realtimetest.EventArgs(t, cl.Recv(), "2")
	if len(args) != 3 || args[0] != "e" || args[1] != 1.0 {
		t.Fatalf("broadcast args %v", args)
	}
	offset, _ := args[2].(string)
	if offset == "" {
		t.Fatalf("broadcast carries no offset: %v", args)
	}

	// The network drops: no close frame, no close packet.
	_ = cl.UnderlyingConn().Close()
	realtimetest.Eventually(t, 5*time.Second, `nsp.Len() == 0`, func() bool { return nsp.Len() == 0 })
	if r, _ := a.disconnect(sid); r != "transport close" {
		t.Fatalf("drop reason %q", r)
	}
	if nsp.RoomSize("r") != 0 {
		t.Fatal("dropped socket still in its room")
	}
	if err := nsp.Broadcast("r", nil, "e", 2); err != nil {
		t.Fatal(err)
	}
	if err := nsp.Broadcast("other", nil, "e", "not for r"); err != nil {
		t.Fatal(err)
	}

	cl2 := realtimetest.DialSocketIO(t, ts.URL, 4)
	reply2 := cl2.Connect("/", fmt.Sprintf(`{"pid":%q,"offset":%q}`, pid, offset))
	if reply2["sid"] != sid || reply2["pid"] != pid {
		t.Fatalf("recovered reply %v, want sid %s pid %s", reply2, sid, pid)
	}
	missed := realtimetest.EventArgs(t, cl2.Recv(), "2")
	if len(missed) != 3 || missed[0] != "e" || missed[1] != 2.0 {
		t.Fatalf("missed broadcast %v", missed)
	}
	// The old socket is in a.sockets under the same id until OnConnection
	// runs for the recovered one.
	realtimetest.Eventually(t, 5*time.Second, "the recovered socket", func() bool { s := a.socket(sid); return s != nil && s.Recovered() })
	sock := a.socket(sid)
	if !sock.In("r") || nsp.RoomSize("r") != 1 {
		t.Fatalf("recovered socket %v: rooms %v", sock, sock.Rooms())
	}
	if len(sock.Auth()) != 0 {
		t.Fatalf("recovery fields left in auth: %v", sock.Auth())
	}
	// Live again: the next broadcast arrives normally.
	if err := nsp.Broadcast("r", nil, "e", 3); err != nil {
		t.Fatal(err)
	}
	if live := realtimetest.EventArgs(t, cl2.Recv(), "2"); len(live) != 3 || live[1] != 3.0 {
		t.Fatalf("after recovery %v", live)
	}

	// The saved session is spent: the same pid again gets a new socket.
	cl3 := realtimetest.DialSocketIO(t, ts.URL, 4)
	reply3 := cl3.Connect("/", fmt.Sprintf(`{"pid":%q,"offset":%q}`, pid, offset))
	if reply3["sid"] == sid || a.socket(reply3["sid"]) == nil {
		t.Fatal("a session was recovered twice")
	}
}

func TestRecoveryNotAfterParseError(t *testing.T) {
	srv, ts := startIO(t, Config{RecoveryWindow: time.Minute})
	nsp := srv.Of("/")
	a := newApp(nsp, "r")
	cl := realtimetest.DialSocketIO(t, ts.URL, 4)
	reply := cl.Connect("/", "")
	a.socket(reply["sid"])
	realtimetest.Eventually(t, 5*time.Second, `nsp.RoomSize("r") == 1`, func() bool { return nsp.RoomSize("r") == 1 })
	if err := nsp.Broadcast("r", nil, "e", 1); err != nil {
		t.Fatal(err)
	}
	offset := realtimetest.EventArgs(t, cl.Recv(), "2")[2].(string)
	cl.Send("garbage")
	cl.ExpectClosed()
	realtimetest.Eventually(t, 5*time.Second, `nsp.Len() == 0`, func() bool { return nsp.Len() == 0 })
	cl2 := realtimetest.DialSocketIO(t, ts.URL, 4)
	reply2 := cl2.Connect("/", fmt.Sprintf(`{"pid":%q,"offset":%q}`, reply["pid"], offset))
	if reply2["sid"] == reply["sid"] || a.socket(reply2["sid"]) == nil {
		t.Fatal("a socket closed for a protocol error was recovered")
	}
}

func TestShutdownDisconnects(t *testing.T) {
	srv, ts := startIO(t, Config{})
	a := newApp(srv.Of("/"))
	cl := realtimetest.DialSocketIO(t, ts.URL, 4)
	sid := cl.Connect("/", "")["sid"]
	a.socket(sid)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cl.ExpectClosed()
	if r, _ := a.disconnect(sid); r != "server shutting down" {
		t.Fatalf("reason %q", r)
	}
}

func BenchmarkBroadcast(b *testing.B) {
	const n = 1000
	srv, ts := startIO(b, Config{Engine: engineio.Config{MaxQueuedBytes: 64 << 20}})
	nsp := srv.Of("/")
	nsp.OnConnection = func(s *Socket) { s.Join("r") }
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		cl := realtimetest.DialSocketIO(b, ts.URL, 4)
		cl.Send("0")
		wg.Add(1)
		go func(c *websocket.Conn) {
			defer wg.Done()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}(cl.Conn)
	}
	realtimetest.Eventually(b, 30*time.Second, `nsp.RoomSize("r") == n`, func() bool { return nsp.RoomSize("r") == n })
	payload := map[string]any{"orderId": "o-123", "status": "paid", "amount": 1999}
	b.ReportAllocs()
	for b.Loop() {
		if err := nsp.Broadcast("r", nil, "payment_status", payload); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	wg.Wait()
}

// A client that returns while broadcasts keep flowing must see every one
// after its offset exactly once and in order, and none before its connect
// reply: the missed ones from the store, then the live ones.
func TestRecoveryUnderConcurrentBroadcasts(t *testing.T) {
	srv, ts := startIO(t, Config{RecoveryWindow: time.Minute})
	nsp := srv.Of("/")
	a := newApp(nsp, "r")
	for round := 0; round < 20; round++ {
		cl := realtimetest.DialSocketIO(t, ts.URL, 4)
		reply := cl.Connect("/", "")
		a.socket(reply["sid"])
		realtimetest.Eventually(t, 5*time.Second, `nsp.RoomSize("r") == 1`, func() bool { return nsp.RoomSize("r") == 1 })
		if err := nsp.Broadcast("r", nil, "seq", 0); err != nil {
			t.Fatal(err)
		}
		offset := realtimetest.EventArgs(t, cl.Recv(), "2")[2].(string)
		_ = cl.UnderlyingConn().Close()
		realtimetest.Eventually(t, 5*time.Second, `nsp.Len() == 0`, func() bool { return nsp.Len() == 0 })

		stop := make(chan struct{})
		done := make(chan int)
		go func() {
			i := 1
			for ; ; i++ {
				select {
				case <-stop:
					done <- i - 1
					return
				default:
				}
				_ = nsp.Broadcast("r", nil, "seq", i)
			}
		}()
		cl2 := realtimetest.DialSocketIO(t, ts.URL, 4)
		cl2.Send(fmt.Sprintf(`0{"pid":%q,"offset":%q}`, reply["pid"], offset))
		var got []int
		early := 0
		var connected map[string]string
		for connected == nil {
			p := cl2.Recv()
			if strings.HasPrefix(p, "0{") {
				_ = json.Unmarshal([]byte(p[1:]), &connected)
				break
			}
			early++
			got = append(got, int(realtimetest.EventArgs(t, p, "2")[1].(float64)))
		}
		if connected["sid"] != reply["sid"] {
			close(stop)
			<-done
			t.Fatalf("round %d: not recovered: %v", round, connected)
		}
		time.Sleep(2 * time.Millisecond) // let live broadcasts follow
		close(stop)
		last := <-done
		_ = nsp.Broadcast("r", nil, "end")
		for {
			args := realtimetest.EventArgs(t, cl2.Recv(), "2")
			if args[0] == "end" {
				break
			}
			got = append(got, int(args[1].(float64)))
		}
		seen := map[int]int{}
		disorder := -1
		for i, n := range got {
			seen[n]++
			if disorder < 0 && n != i+1 {
				disorder = i
			}
		}
		missing, dup := 0, 0
		for i := 1; i <= last; i++ {
			if seen[i] == 0 {
				missing++
			}
			if seen[i] > 1 {
				dup++
			}
		}
		if early > 0 || missing > 0 || dup > 0 || disorder >= 0 {
			t.Fatalf("round %d: of %d broadcasts, %d before the connect reply, %d lost, %d twice, first out of order at %d",
				round, last, early, missing, dup, disorder)
		}
		_ = cl2.Close()
		realtimetest.Eventually(t, 5*time.Second, `nsp.Len() == 0`, func() bool { return nsp.Len() == 0 })
	}
}

// A socket closed by another goroutine (shutdown, ping timeout, slow
// consumer) while OnConnection is still setting its handlers must still
// get its Handler.OnDisconnect, as every Node "connection" gets a "disconnect".
func TestCloseDuringOnConnection(t *testing.T) {
	srv, ts := startIO(t, Config{})
	entered := make(chan *Socket, 1)
	release := make(chan struct{})
	disconnected := make(chan string, 1)
	srv.Of("/").OnConnection = func(s *Socket) {
		entered <- s
		<-release
		s.Handler = &HandlerFuncs{Disconnect: func(reason string) { disconnected <- reason }}
	}
	cl := realtimetest.DialSocketIO(t, ts.URL, 4)
	cl.Send("0")
	var sock *Socket
	select {
	case sock = <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("OnConnection not called")
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	realtimetest.Eventually(t, 5*time.Second, `!sock.Connected()`, func() bool { return !sock.Connected() })
	close(release)
	select {
	case r := <-disconnected:
		if r != "server shutting down" {
			t.Fatalf("reason %q", r)
		}
	case <-time.After(time.Second):
		t.Fatal("OnDisconnect never ran for a socket closed during OnConnection")
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

// An acknowledgement whose answer is not decoded still runs once, and a
// malformed answer still ends the connection as a parse error.
func TestEmitWithAckSignal(t *testing.T) {
	a, cl, sid, sock := connectedSocket(t)

	acked := make(chan int, 4)
	for i := 0; i < 2; i++ {
		if err := sock.EmitWithAckSignal("update", func() { acked <- i }, map[string]any{"seq": i}); err != nil {
			t.Fatal(err)
		}
	}
	if got := cl.Recv(); got != `20["update",{"seq":0}]` {
		t.Fatalf("first emit %q", got)
	}
	if got := cl.Recv(); got != `21["update",{"seq":1}]` {
		t.Fatalf("second emit %q", got)
	}
	cl.Send(`30[{"seq":0,"orderId":"ord_1"}]`)
	cl.Send(`30[]`) // used once
	select {
	case got := <-acked:
		if got != 0 {
			t.Fatalf("ack for emit %d, want 0", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ack")
	}
	cl.Send(`25["echo"]`) // a round trip: the repeated answer was handled
	if got := cl.Recv(); got != `35[]` {
		t.Fatalf("echo %q", got)
	}
	if len(acked) != 0 {
		t.Fatalf("an ack ran twice: %d", <-acked)
	}

	cl.Send(`31[{"seq":`)
	cl.ExpectClosed()
	if r, _ := a.disconnect(sid); r != "parse error" {
		t.Fatalf("disconnect reason %q, want parse error", r)
	}
	if len(acked) != 0 {
		t.Fatalf("a malformed answer ran the ack for emit %d", <-acked)
	}
}

// Answers may come in any order; each runs its own callback, and once none
// is awaited the socket holds no list of them.
func TestAcksAnsweredOutOfOrder(t *testing.T) {
	_, cl, _, sock := connectedSocket(t)
	acked := make(chan int, 8)
	for i := 0; i < 3; i++ {
		if err := sock.EmitWithAckSignal("update", func() { acked <- i }, i); err != nil {
			t.Fatal(err)
		}
		if got, want := cl.Recv(), fmt.Sprintf(`2%d["update",%d]`, i, i); got != want {
			t.Fatalf("emit %q, want %q", got, want)
		}
	}
	for _, id := range []int{2, 7, 0, 1} { // 7 was never asked
		cl.Send(fmt.Sprintf("3%d[]", id))
	}
	for _, want := range []int{2, 0, 1} {
		select {
		case got := <-acked:
			if got != want {
				t.Fatalf("ack for emit %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no ack for emit %d", want)
		}
	}
	sock.mu.Lock()
	pending := sock.acks
	sock.mu.Unlock()
	if pending != nil {
		t.Fatalf("%d answers still awaited (list kept: %v)", len(pending), pending != nil)
	}
}
