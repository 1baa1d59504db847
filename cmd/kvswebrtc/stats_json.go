package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/kvswebrtc/kvswebrtc/peer"
)

// The JSON lines of `master --output json` and `viewer --output json`: one
// object a line, each with "time" (RFC 3339, UTC) and "event":
//
//	started       the peer is on the channel (channelArn, region, clientId for a viewer)
//	viewerJoined  master: a viewer's session connected (clientId, viewers)
//	viewerLeft    master: a viewer's session ended (clientId, reason)
//	firstFrame    viewer: the first video frame (ttffMs)
//	stats         the periodic stats: a master's sessions, a viewer's session
//	summary       viewer: the final stats
//	stopped       the peer stopped
//
// A session's receive counters are left out when it received nothing (a
// master's sessions are send-only unless viewers send audio), its send
// counters when it sent nothing (a viewer's).

// jsonLine is one line of the JSON output.
type jsonLine struct {
	Time           time.Time     `json:"time"`
	Event          string        `json:"event"`
	ChannelARN     string        `json:"channelArn,omitempty"`
	Region         string        `json:"region,omitempty"`
	ClientID       string        `json:"clientId,omitempty"`
	Reason         string        `json:"reason,omitempty"`
	Viewers        *int          `json:"viewers,omitempty"`
	KbpsOut        *float64      `json:"kbpsOut,omitempty"`
	KbpsIn         *float64      `json:"kbpsIn,omitempty"`
	ElapsedSeconds float64       `json:"elapsedSeconds,omitempty"`
	TTFFMs         float64       `json:"ttffMs,omitempty"`
	Sessions       []sessionJSON `json:"sessions,omitempty"`
	Session        *sessionJSON  `json:"session,omitempty"`
}

// sessionJSON is one session's stats.
type sessionJSON struct {
	ClientID        string  `json:"clientId"`
	State           string  `json:"state"`
	OfferToAnswerMs float64 `json:"offerToAnswerMs,omitempty"`
	ConnectMs       float64 `json:"connectMs,omitempty"`
	TTFFMs          float64 `json:"ttffMs,omitempty"`
	CandidatePair   string  `json:"candidatePair,omitempty"`
	FramesSent      uint64  `json:"framesSent,omitempty"`
	BytesSent       uint64  `json:"bytesSent,omitempty"`
	VideoFrames     uint64  `json:"videoFrames,omitempty"`
	Keyframes       uint64  `json:"keyframes,omitempty"`
	AudioFrames     uint64  `json:"audioFrames,omitempty"`
	PacketsReceived uint64  `json:"packetsReceived,omitempty"`
	BytesReceived   uint64  `json:"bytesReceived,omitempty"`
	PacketsLost     *int64  `json:"packetsLost,omitempty"` // with the receive counters only
	DataSent        uint64  `json:"dataMessagesSent,omitempty"`
	DataReceived    uint64  `json:"dataMessagesReceived,omitempty"`
	Reoffers        int     `json:"reoffers,omitempty"`
	Reconnects      int     `json:"signalingReconnects,omitempty"`
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sessionToJSON converts a session's stats.
func sessionToJSON(s peer.SessionStats) sessionJSON {
	j := sessionJSON{
		ClientID: s.ClientID, State: s.State.String(),
		OfferToAnswerMs: msf(s.OfferToAnswer), ConnectMs: msf(s.Connect), TTFFMs: msf(s.TimeToFirstFrame),
		FramesSent: s.FramesSent, BytesSent: s.BytesSent,
		VideoFrames: s.Frames, Keyframes: s.Keyframes, AudioFrames: s.AudioFrames,
		PacketsReceived: s.PacketsReceived, BytesReceived: s.BytesReceived,
		DataSent: s.DataMessagesSent, DataReceived: s.DataMessagesReceived,
	}
	if s.Local.Type != "" {
		j.CandidatePair = pair(s)
	}
	if s.PacketsReceived > 0 || len(s.Streams) > 0 {
		lost := s.PacketsLost
		j.PacketsLost = &lost
	}
	return j
}

// masterSessionsJSON converts Master.Stats, in client id order.
func masterSessionsJSON(m map[string]peer.SessionStats) []sessionJSON {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]sessionJSON, 0, len(ids))
	for _, id := range ids {
		out = append(out, sessionToJSON(m[id]))
	}
	return out
}

// emitJSON writes l as one line, stamped now.
func emitJSON(w io.Writer, l jsonLine) {
	l.Time = time.Now().UTC()
	b, err := json.Marshal(l)
	if err != nil {
		return
	}
	fmt.Fprintf(w, "%s\n", b)
}

// masterRates measures the master's bit rate out between stats lines.
type masterRates struct {
	last    time.Time
	lastOut uint64
}

// kbpsOut is the rate sent to all viewers since the last call.
func (r *masterRates) kbpsOut(st map[string]peer.SessionStats) float64 {
	now := time.Now()
	var out uint64
	for _, s := range st {
		out += s.BytesSent
	}
	rate := 0.0
	if !r.last.IsZero() && out >= r.lastOut {
		rate = kbps(out-r.lastOut, now.Sub(r.last))
	}
	r.last, r.lastOut = now, out
	return rate
}

// masterJSON writes the JSON lines of `master --output json`. Its methods
// do nothing on a nil *masterJSON (text output).
type masterJSON struct {
	w     io.Writer
	rates masterRates
}

// newMasterJSON returns the JSON writer for --output format, nil unless json.
func newMasterJSON(format string, stdout io.Writer) *masterJSON {
	if format != "json" {
		return nil
	}
	return &masterJSON{w: &syncWriter{w: stdout}}
}

// textOut is where a command's human lines go: stdout, or stderr when
// stdout carries JSON lines.
func textOut(format string, stdout, stderr io.Writer) io.Writer {
	if format == "json" {
		return stderr
	}
	return stdout
}

func (j *masterJSON) started(arn, region string) {
	if j != nil {
		emitJSON(j.w, jsonLine{Event: "started", ChannelARN: arn, Region: region})
	}
}

func (j *masterJSON) joined(id string, viewers int) {
	if j != nil {
		emitJSON(j.w, jsonLine{Event: "viewerJoined", ClientID: id, Viewers: &viewers})
	}
}

func (j *masterJSON) left(id string, reason error) {
	if j != nil {
		r := ""
		if reason != nil {
			r = reason.Error()
		}
		emitJSON(j.w, jsonLine{Event: "viewerLeft", ClientID: id, Reason: r})
	}
}

// stats writes a stats line and reports true, or reports false for text.
func (j *masterJSON) stats(m *peer.Master) bool {
	if j == nil {
		return false
	}
	st := m.Stats()
	n := len(m.Viewers())
	rate := j.rates.kbpsOut(st)
	emitJSON(j.w, jsonLine{Event: "stats", Viewers: &n, KbpsOut: &rate, Sessions: masterSessionsJSON(st)})
	return true
}

func (j *masterJSON) stopped() {
	if j != nil {
		emitJSON(j.w, jsonLine{Event: "stopped"})
	}
}
