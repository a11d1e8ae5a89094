package socketio

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// broadcastTo records a broadcast in rs the way Namespace.Broadcast does
// and returns its offset.
func broadcastTo(rs *recoveryStore, nsp, room string, except map[string]bool, text string) string {
	off := rs.nextOffset()
	rs.record(storedPacket{offset: off, nsp: nsp, room: room, except: except, text: text})
	return off
}

func TestRecoveryRestoresMissedPackets(t *testing.T) {
	rs := newRecoveryStore(time.Minute)
	broadcastTo(rs, "/", "r", nil, "before")
	last := broadcastTo(rs, "/", "r", nil, "last seen")
	rs.persist("pid1", savedSession{sid: "s1", nsp: "/", rooms: []string{"r", "q"}})

	broadcastTo(rs, "/", "r", nil, "r1")
	broadcastTo(rs, "/", "other", nil, "not a member")
	broadcastTo(rs, "/", "q", map[string]bool{"s1": true}, "excepting s1")
	broadcastTo(rs, "/", "q", map[string]bool{"s2": true}, "excepting another")
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
	n := len(rs.packets)
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
		off := rs.nextOffset()
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
	if other := newRecoveryStore(time.Minute).nextOffset(); seen[other] {
		t.Fatalf("two stores share offset %q", other)
	}
}
