package engineio

import (
	"encoding/json"
	"net/http"
)

// queuedPacketOverhead is what one queued polling packet costs beyond its
// bytes (its string header and slice slot), so that many empty control
// packets are charged against MaxQueuedBytes for the memory they hold.
const queuedPacketOverhead = 32

func queuedCost(p string) int { return len(p) + queuedPacketOverhead }

// maxPongData bounds the data a protocol 3 pong echoes. Clients ping with
// no data, or "probe" during an upgrade; longer data is not echoed.
const maxPongData = 16

func pongData(ping string) string {
	if len(ping) > maxPongData {
		return ""
	}
	return ping
}

// writeFull answers a handshake refused because the server holds as many
// sessions as it may: 503, so clients back off and retry.
func writeFull(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(http.StatusServiceUnavailable)
	body, _ := json.Marshal(map[string]any{"code": codeBadRequest, "message": "Server at capacity"})
	_, _ = w.Write(body)
}
