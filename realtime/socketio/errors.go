package socketio

import "errors"

// Errors for malformed or excessive packets; the connection is closed on
// them.
var (
	ErrMalformedPacket = errors.New("socket.io: malformed packet")
	// ErrTooManyAttachments: a binary packet announces more attachments
	// than Config.MaxAttachments allows.
	ErrTooManyAttachments = errors.New("socket.io: too many binary attachments")
	// ErrAttachmentsTooLarge: a binary packet's attachments add up to more
	// than the engine's MaxPayload.
	ErrAttachmentsTooLarge = errors.New("socket.io: binary attachments too large")
	// ErrUnexpectedBinary: a binary message that no binary packet
	// announced, or a text packet while attachments are awaited.
	ErrUnexpectedBinary = errors.New("socket.io: binary message out of sequence")
)
