package socketio

import (
	"slices"
	"testing"
)

func TestRoomSet(t *testing.T) {
	a, b, c := &Socket{id: "a"}, &Socket{id: "b"}, &Socket{id: "c"}
	ids := func(r roomSet) []string {
		var out []string
		for s := range r.all {
			out = append(out, s.id)
		}
		slices.Sort(out)
		return out
	}
	type step struct {
		add    bool
		s      *Socket
		want   []string
		inline bool // the set holds no map
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"one member stays inline", []step{{true, a, []string{"a"}, true}}},
		{"joining twice counts once", []step{{true, a, []string{"a"}, true}, {true, a, []string{"a"}, true}}},
		{"a second member makes a map", []step{{true, a, []string{"a"}, true}, {true, b, []string{"a", "b"}, false}}},
		{"leaving the inline member empties", []step{{true, a, []string{"a"}, true}, {false, a, nil, true}}},
		{"a stranger leaving changes nothing", []step{{true, a, []string{"a"}, true}, {false, b, []string{"a"}, true}}},
		{"members leave a map one by one", []step{
			{true, a, []string{"a"}, true}, {true, b, []string{"a", "b"}, false}, {true, c, []string{"a", "b", "c"}, false},
			{false, b, []string{"a", "c"}, false}, {false, a, []string{"c"}, false}, {false, c, nil, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r roomSet
			for i, st := range tt.steps {
				if st.add {
					r = r.with(st.s)
				} else {
					r = r.without(st.s)
				}
				if got := ids(r); !slices.Equal(got, st.want) {
					t.Fatalf("step %d: members %v, want %v", i, got, st.want)
				}
				if r.len() != len(st.want) {
					t.Fatalf("step %d: len %d, want %d", i, r.len(), len(st.want))
				}
				for _, s := range []*Socket{a, b, c} {
					if want := slices.Contains(st.want, s.id); r.has(s) != want {
						t.Fatalf("step %d: has(%s) = %v, want %v", i, s.id, r.has(s), want)
					}
				}
				if (r.many == nil) != st.inline {
					t.Fatalf("step %d: inline = %v, want %v", i, r.many == nil, st.inline)
				}
			}
		})
	}
	t.Run("stopping early", func(t *testing.T) {
		r := roomSet{}.with(a).with(b).with(c)
		n := 0
		for range r.all {
			n++
			break
		}
		if n != 1 {
			t.Fatalf("visited %d members after break, want 1", n)
		}
	})
}
