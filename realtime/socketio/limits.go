package socketio

// EventAdmitter may be implemented by a Handler: AdmitEvent is asked
// before an inbound event is decoded, so a flood is dropped for the cost of
// a counter instead of a JSON decode.
type EventAdmitter interface {
	AdmitEvent() bool
}

// jsonDepthWithin reports whether the arrays and objects in data nest no
// deeper than max. It only counts brackets outside strings and allocates
// nothing; well-formedness is left to the decoder.
func jsonDepthWithin(data string, max int) bool {
	depth, inString, escaped := 0, false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > max {
				return false
			}
		case ']', '}':
			depth--
		}
	}
	return true
}

// payloadAllowed applies the size and depth bounds to inbound JSON.
func (s *Server) payloadAllowed(data string) bool {
	return len(data) <= s.cfg.MaxEventBytes && jsonDepthWithin(data, s.cfg.MaxEventDepth)
}
