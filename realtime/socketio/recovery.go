package socketio

import (
	"strconv"
	"sync"
	"time"
)

// recoveryStore keeps recent broadcasts and the state of dropped sockets
// for connection state recovery: a client that returns within the window
// with its private id and the offset of the last broadcast it saw gets its
// id, its rooms and what it missed.
type recoveryStore struct {
	window time.Duration
	prefix string // differs per process, so offsets never match another's

	mu          sync.Mutex
	seq         uint64                  // guarded by mu
	sessionScan time.Time               // guarded by mu; last expiry scan of sessions
	packets     []storedPacket          // guarded by mu; oldest first
	sessions    map[string]savedSession // guarded by mu; by private id
}

type storedPacket struct {
	offset string
	nsp    string
	room   string
	except map[string]bool
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
	return &recoveryStore{window: window, prefix: randomID()[:8], sessions: make(map[string]savedSession)}
}

func (r *recoveryStore) nextOffset() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return r.prefix + "-" + strconv.FormatUint(r.seq, 36)
}

func (r *recoveryStore) record(p storedPacket) {
	p.at = time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(p.at)
	r.packets = append(r.packets, p)
}

func (r *recoveryStore) persist(pid string, s savedSession) {
	s.at = time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(s.at)
	r.sessions[pid] = s
}

// pruneLocked drops what has outlived the window. r.mu must be held.
func (r *recoveryStore) pruneLocked(now time.Time) {
	cut := 0
	for cut < len(r.packets) && now.Sub(r.packets[cut].at) > r.window {
		cut++
	}
	if cut > 0 {
		r.packets = append(r.packets[:0:0], r.packets[cut:]...)
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
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now)
	s, ok := r.sessions[pid]
	if !ok || s.nsp != nsp || now.Sub(s.at) > r.window {
		return savedSession{}, nil, false
	}
	delete(r.sessions, pid)
	from := -1
	for i := len(r.packets) - 1; i >= 0; i-- {
		if r.packets[i].offset == offset {
			from = i
			break
		}
	}
	if from < 0 {
		return savedSession{}, nil, false
	}
	var missed []string
	for _, p := range r.packets[from+1:] {
		if p.nsp == nsp && !p.except[s.sid] && (p.room == "" || contains(s.rooms, p.room)) {
			missed = append(missed, p.text)
		}
	}
	return s, missed, true
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
