package socketio

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// recoveryStore keeps recent broadcasts and the state of dropped sockets
// for connection state recovery: a client that returns within the window
// with its private id and the offset of the last broadcast it saw gets its
// id, its rooms and what it missed.
//
// A busy server records every broadcast and keeps each for the window, so
// a record must hold as few heap objects as it can: the garbage collector
// marks every one of them on each cycle.
type recoveryStore struct {
	window time.Duration
	prefix string           // differs per process, so offsets never match another's
	now    func() time.Time // time.Now; tests move it

	mu          sync.Mutex
	seq         uint64                  // guarded by mu
	sessionScan time.Time               // guarded by mu; last expiry scan of sessions
	packets     []storedPacket          // guarded by mu; packets[head:] are kept, in the order recorded
	head        int                     // guarded by mu
	sessions    map[string]savedSession // guarded by mu; by private id
}

// storedPacket is one recorded broadcast. Its offset is prefix-seq; the
// string itself is not kept.
type storedPacket struct {
	seq    uint64
	nsp    string
	room   string   // the one room it went to, or empty
	rooms  []string // the rooms, when it went to more than one
	except []string // socket ids or rooms that did not get it
	text   string
	at     time.Time
}

type savedSession struct {
	sid   string
	nsp   string
	rooms []string
	at    time.Time
}

func newRecoveryStore(window time.Duration) *recoveryStore {
	return &recoveryStore{window: window, prefix: randomID()[:8], now: time.Now, sessions: make(map[string]savedSession)}
}

// nextOffset numbers the next broadcast and returns its offset as clients
// see it.
func (r *recoveryStore) nextOffset() (uint64, string) {
	r.mu.Lock()
	r.seq++
	seq := r.seq
	r.mu.Unlock()
	return seq, r.prefix + "-" + strconv.FormatUint(seq, 36)
}

// parseOffset returns the sequence number of an offset this store gave out.
func (r *recoveryStore) parseOffset(offset string) (uint64, bool) {
	rest, ok := strings.CutPrefix(offset, r.prefix+"-")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 36, 64)
	return seq, err == nil && seq > 0
}

func (r *recoveryStore) record(p storedPacket) {
	p.at = r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(p.at)
	r.packets = append(r.packets, p)
}

// keptLocked returns the packets still inside the window, oldest first.
// r.mu must be held.
func (r *recoveryStore) keptLocked() []storedPacket { return r.packets[r.head:] }

func (r *recoveryStore) persist(pid string, s savedSession) {
	s.at = r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(s.at)
	r.sessions[pid] = s
}

// pruneLocked drops what has outlived the window. r.mu must be held.
//
// Dropped packets only move head; the kept ones are moved down once head
// passes half the slice, so each packet is copied about once however long
// the window, never the whole window's packets per broadcast.
func (r *recoveryStore) pruneLocked(now time.Time) {
	for r.head < len(r.packets) && now.Sub(r.packets[r.head].at) > r.window {
		r.packets[r.head] = storedPacket{} // let its strings go
		r.head++
	}
	if r.head > 0 && r.head >= len(r.packets)/2 {
		kept := copy(r.packets, r.packets[r.head:])
		clear(r.packets[kept:])
		r.packets = r.packets[:kept]
		r.head = 0
		// After a burst, give back what the quieter rate does not need.
		if cap(r.packets) > 1024 && kept < cap(r.packets)/4 {
			r.packets = slices.Clone(r.packets)
		}
	}
	// Scanning every saved session on each broadcast would cost O(n).
	if now.Sub(r.sessionScan) < time.Second {
		return
	}
	r.sessionScan = now
	for pid, s := range r.sessions {
		if now.Sub(s.at) > r.window {
			delete(r.sessions, pid)
		}
	}
}

// restore takes the session saved under pid, with the packets for it that
// were broadcast after offset. It fails when either is unknown or expired.
func (r *recoveryStore) restore(pid, offset, nsp string) (savedSession, []string, bool) {
	if pid == "" || offset == "" {
		return savedSession{}, nil, false
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now)
	s, ok := r.sessions[pid]
	if !ok || s.nsp != nsp || now.Sub(s.at) > r.window {
		return savedSession{}, nil, false
	}
	delete(r.sessions, pid)
	seq, known := r.parseOffset(offset)
	kept := r.keptLocked()
	from := -1
	for i := len(kept) - 1; known && i >= 0; i-- {
		if kept[i].seq == seq {
			from = i
			break
		}
	}
	if from < 0 {
		return savedSession{}, nil, false
	}
	var missed []string
	for _, p := range kept[from+1:] {
		if p.nsp == nsp && reaches(p, s) {
			missed = append(missed, p.text)
		}
	}
	return s, missed, true
}

// reaches reports whether a recorded broadcast was meant for the socket a
// session saved.
func reaches(p storedPacket, s savedSession) bool {
	for _, e := range p.except {
		if e == s.sid || slices.Contains(s.rooms, e) {
			return false
		}
	}
	switch {
	case p.room != "":
		return p.room == s.sid || slices.Contains(s.rooms, p.room)
	case len(p.rooms) > 0:
		for _, r := range p.rooms {
			if r == s.sid || slices.Contains(s.rooms, r) {
				return true
			}
		}
		return false
	}
	return true
}
