package socketio

// roomSet is one room's members on this node. Most rooms hold a single
// socket (a page in its order's room), so a lone member is kept inline and
// a map is made only when a second one joins. The zero value is empty. It
// is a value type: whoever changes it stores it back.
type roomSet struct {
	one  *Socket              // the lone member, when many is nil
	many map[*Socket]struct{} // every member, once a second has joined
}

func (r roomSet) len() int {
	if r.many != nil {
		return len(r.many)
	}
	if r.one != nil {
		return 1
	}
	return 0
}

func (r roomSet) has(s *Socket) bool {
	if r.many != nil {
		_, in := r.many[s]
		return in
	}
	return r.one != nil && r.one == s
}

// with returns the set with s added.
func (r roomSet) with(s *Socket) roomSet {
	switch {
	case r.many != nil:
		r.many[s] = struct{}{}
	case r.one == nil || r.one == s:
		r.one = s
	default:
		r.many = map[*Socket]struct{}{r.one: {}, s: {}}
		r.one = nil
	}
	return r
}

// without returns the set with s removed.
func (r roomSet) without(s *Socket) roomSet {
	if r.many != nil {
		delete(r.many, s)
		return r
	}
	if r.one == s {
		r.one = nil
	}
	return r
}

// all yields each member once, in no particular order.
func (r roomSet) all(yield func(*Socket) bool) {
	if r.many != nil {
		for s := range r.many {
			if !yield(s) {
				return
			}
		}
		return
	}
	if r.one != nil {
		yield(r.one)
	}
}
