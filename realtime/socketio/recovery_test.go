package socketio

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// broadcastTo records a broadcast in rs the way Namespace.Broadcast does
// and returns its offset.
func broadcastTo(rs *recoveryStore, nsp, room string, except []string, text string) string {
	seq, off := rs.nextOffset()
	rs.record(storedPacket{seq: seq, nsp: nsp, room: room, except: except, text: text})
	return off
}

func TestRecoveryRestoresMissedPackets(t *testing.T) {
	rs := newRecoveryStore(time.Minute)
	broadcastTo(rs, "/", "r", nil, "before")
	last := broadcastTo(rs, "/", "r", nil, "last seen")
	rs.persist("pid1", savedSession{sid: "s1", nsp: "/", rooms: []string{"r", "q"}})

	broadcastTo(rs, "/", "r", nil, "r1")
	broadcastTo(rs, "/", "other", nil, "not a member")
	broadcastTo(rs, "/", "q", []string{"s1"}, "excepting s1")
	broadcastTo(rs, "/", "q", []string{"s2"}, "excepting another")
	broadcastTo(rs, "/x", "r", nil, "other namespace")
	broadcastTo(rs, "/", "", nil, "to all")
	broadcastTo(rs, "/", "r", nil, "r2")

	saved, missed, ok := rs.restore("pid1", last, "/")
	if !ok {
		t.Fatal("restore failed")
	}
	if saved.sid != "s1" || saved.nsp != "/" || fmt.Sprint(saved.rooms) != "[r q]" {
		t.Fatalf("saved session %+v", saved)
	}
	want := []string{"r1", "excepting another", "to all", "r2"}
	if fmt.Sprint(missed) != fmt.Sprint(want) {
		t.Fatalf("missed %q, want %q", missed, want)
	}
}

func TestRecoveryFromOlderOffset(t *testing.T) {
	rs := newRecoveryStore(time.Minute)
	first := broadcastTo(rs, "/", "r", nil, "a")
	broadcastTo(rs, "/", "r", nil, "b")
	broadcastTo(rs, "/", "r", nil, "c")
	rs.persist("p", savedSession{sid: "s", nsp: "/", rooms: []string{"r"}})
	_, missed, ok := rs.restore("p", first, "/")
	if !ok || fmt.Sprint(missed) != "[b c]" {
		t.Fatalf("restore from the first offset: %v %q", ok, missed)
	}
}

func TestRecoveryNothingMissed(t *testing.T) {
	rs := newRecoveryStore(time.Minute)
	last := broadcastTo(rs, "/", "r", nil, "a")
	rs.persist("p", savedSession{sid: "s", nsp: "/", rooms: []string{"r"}})
	saved, missed, ok := rs.restore("p", last, "/")
	if !ok || saved.sid != "s" || len(missed) != 0 {
		t.Fatalf("restore at the newest offset: %v %+v %q", ok, saved, missed)
	}
}

func TestRecoveryFailures(t *testing.T) {
	t.Run("unknown offset", func(t *testing.T) {
		rs := newRecoveryStore(time.Minute)
		broadcastTo(rs, "/", "r", nil, "a")
		rs.persist("p", savedSession{sid: "s", nsp: "/", rooms: []string{"r"}})
		if _, _, ok := rs.restore("p", "nosuch-1", "/"); ok {
			t.Fatal("restored from an unknown offset")
		}
	})
	t.Run("offset of another store", func(t *testing.T) {
		rs, other := newRecoveryStore(time.Minute), newRecoveryStore(time.Minute)
		broadcastTo(rs, "/", "r", nil, "a")
		foreign := broadcastTo(other, "/", "r", nil, "a")
		rs.persist("p", savedSession{sid: "s", nsp: "/"})
		if _, _, ok := rs.restore("p", foreign, "/"); ok {
			t.Fatal("restored from another process's offset")
		}
	})
	t.Run("unknown pid", func(t *testing.T) {
		rs := newRecoveryStore(time.Minute)
		off := broadcastTo(rs, "/", "r", nil, "a")
		rs.persist("p", savedSession{sid: "s", nsp: "/"})
		if _, _, ok := rs.restore("ghost", off, "/"); ok {
			t.Fatal("restored an unknown pid")
		}
		if _, _, ok := rs.restore("p", off, "/"); !ok {
			t.Fatal("a failed restore of another pid spent this one")
		}
	})
	t.Run("empty pid or offset", func(t *testing.T) {
		rs := newRecoveryStore(time.Minute)
		off := broadcastTo(rs, "/", "r", nil, "a")
		rs.persist("p", savedSession{sid: "s", nsp: "/"})
		if _, _, ok := rs.restore("", off, "/"); ok {
			t.Fatal("restored with no pid")
		}
		if _, _, ok := rs.restore("p", "", "/"); ok {
			t.Fatal("restored with no offset")
		}
	})
	t.Run("other namespace", func(t *testing.T) {
		rs := newRecoveryStore(time.Minute)
		off := broadcastTo(rs, "/", "r", nil, "a")
		rs.persist("p", savedSession{sid: "s", nsp: "/"})
		if _, _, ok := rs.restore("p", off, "/admin"); ok {
			t.Fatal("restored into another namespace")
		}
		if _, _, ok := rs.restore("p", off, "/"); !ok {
			t.Fatal("a restore into the wrong namespace spent the session")
		}
	})
	t.Run("expired", func(t *testing.T) {
		rs := newRecoveryStore(time.Millisecond)
		off := broadcastTo(rs, "/", "r", nil, "a")
		rs.persist("p", savedSession{sid: "s", nsp: "/"})
		time.Sleep(20 * time.Millisecond)
		if _, _, ok := rs.restore("p", off, "/"); ok {
			t.Fatal("restored after the window")
		}
	})
	t.Run("session expired, packets fresh", func(t *testing.T) {
		rs := newRecoveryStore(time.Minute)
		rs.persist("p", savedSession{sid: "s", nsp: "/"})
		rs.mu.Lock()
		s := rs.sessions["p"]
		s.at = time.Now().Add(-2 * time.Minute)
		rs.sessions["p"] = s
		rs.mu.Unlock()
		off := broadcastTo(rs, "/", "r", nil, "a")
		if _, _, ok := rs.restore("p", off, "/"); ok {
			t.Fatal("restored a session older than the window")
		}
	})
	t.Run("only once", func(t *testing.T) {
		rs := newRecoveryStore(time.Minute)
		off := broadcastTo(rs, "/", "r", nil, "a")
		broadcastTo(rs, "/", "r", nil, "b")
		rs.persist("p", savedSession{sid: "s", nsp: "/", rooms: []string{"r"}})
		if _, _, ok := rs.restore("p", off, "/"); !ok {
			t.Fatal("first restore failed")
		}
		if _, _, ok := rs.restore("p", off, "/"); ok {
			t.Fatal("a session restored twice")
		}
	})
}

func TestRecoveryPrunesOldPackets(t *testing.T) {
	rs := newRecoveryStore(10 * time.Millisecond)
	old := broadcastTo(rs, "/", "r", nil, "old")
	time.Sleep(30 * time.Millisecond)
	broadcastTo(rs, "/", "r", nil, "new")
	rs.mu.Lock()
	n := len(rs.keptLocked())
	rs.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d packets kept, want only the fresh one", n)
	}
	rs.persist("p", savedSession{sid: "s", nsp: "/", rooms: []string{"r"}})
	if _, _, ok := rs.restore("p", old, "/"); ok {
		t.Fatal("restored from a pruned offset")
	}
}

func TestRecoveryOffsets(t *testing.T) {
	rs := newRecoveryStore(time.Minute)
	seen := map[string]bool{}
	prefix := ""
	for i := 0; i < 100; i++ {
		_, off := rs.nextOffset()
		if seen[off] {
			t.Fatalf("offset %q repeated", off)
		}
		seen[off] = true
		p, _, ok := strings.Cut(off, "-")
		if !ok || (prefix != "" && p != prefix) {
			t.Fatalf("offset %q", off)
		}
		prefix = p
	}
	if _, other := newRecoveryStore(time.Minute).nextOffset(); seen[other] {
		t.Fatalf("two stores share offset %q", other)
	}
}

// steadyStore returns a store whose window holds kept packets, with a clock
// that advances one millisecond per broadcast, so that from then on each
// record prunes exactly one packet.
func steadyStore(kept int) (*recoveryStore, func()) {
	clock := time.Unix(1_700_000_000, 0)
	rs := newRecoveryStore(time.Duration(kept-1) * time.Millisecond)
	rs.now = func() time.Time { return clock }
	var seq uint64 // not nextOffset: its string would be counted as the store's allocation
	tick := func() {
		clock = clock.Add(time.Millisecond)
		seq++
		rs.record(storedPacket{seq: seq, nsp: "/", room: "r", text: "x"})
	}
	for range kept {
		tick()
	}
	return rs, tick
}

func TestRecoveryPruningKeepsTheWindowWithoutCopyingIt(t *testing.T) {
	const kept = 10000
	rs, tick := steadyStore(kept)
	// Pruning one packet used to copy the rest into a new slice: one
	// allocation of the whole window per broadcast.
	allocs := testing.AllocsPerRun(5*kept, tick)
	if allocs > 0.01 {
		t.Fatalf("%.3f allocations per broadcast in a full window, want about none", allocs)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	live := rs.keptLocked()
	if len(live) != kept {
		t.Fatalf("%d packets kept, want the window's %d", len(live), kept)
	}
	for i := 1; i < len(live); i++ {
		if live[i].seq != live[i-1].seq+1 {
			t.Fatalf("packets out of order or lost at %d: %d after %d", i, live[i].seq, live[i-1].seq)
		}
	}
	if cap(rs.packets) > 4*kept {
		t.Fatalf("backing array of %d for a window of %d", cap(rs.packets), kept)
	}
}

func TestRecoveryGivesBackRoomAfterABurst(t *testing.T) {
	rs, _ := steadyStore(20000)
	clock := rs.now()
	rs.now = func() time.Time { return clock.Add(time.Hour) }
	rs.record(storedPacket{seq: 1 << 40, nsp: "/", room: "r", text: "after the burst"})
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if n := len(rs.keptLocked()); n != 1 {
		t.Fatalf("%d packets kept, want 1", n)
	}
	if c := cap(rs.packets); c > 1024 {
		t.Fatalf("a backing array of %d kept for one packet", c)
	}
}

func TestRecoveryRejectsMalformedOffsets(t *testing.T) {
	rs := newRecoveryStore(time.Minute)
	good := broadcastTo(rs, "/", "r", nil, "a")
	prefix, _, _ := strings.Cut(good, "-")
	for _, off := range []string{prefix, prefix + "-", prefix + "-zz-1", prefix + "-0", prefix + "-!", "-1", good + "x"} {
		t.Run(off, func(t *testing.T) {
			rs.persist("p", savedSession{sid: "s", nsp: "/", rooms: []string{"r"}})
			if _, _, ok := rs.restore("p", off, "/"); ok {
				t.Fatalf("restored from offset %q", off)
			}
		})
	}
}
