package barerelay

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/bench/relay/internal/jsonscan"
)

// Query parameters naming the channel and the viewer (as in KVS).
const (
	ParamChannel  = "X-Amz-ChannelARN"
	ParamClientID = "X-Amz-ClientId"
)

// The keys of the fields the relay reads from a client frame.
var (
	keyAction    = []byte(`"action":"`)
	keyPayload   = []byte(`"messagePayload":"`)
	keyRecipient = []byte(`"recipientClientId":"`)
)

// writeTimeout bounds one relayed write.
const writeTimeout = 5 * time.Second

// ErrNoChannel is reported (as HTTP 400) when the upgrade names no channel.
var ErrNoChannel = errors.New("barerelay: X-Amz-ChannelARN is required")

type room struct {
	mu      sync.Mutex
	master  *websocket.Conn
	viewers map[string]*websocket.Conn
}

// Relay is an http.Handler relaying signaling frames between the master and
// the viewers of each channel. The zero value is not usable: call [New].
type Relay struct {
	mu    sync.Mutex
	rooms map[string]*room
}

// New returns an empty relay.
func New() *Relay { return &Relay{rooms: map[string]*room{}} }

func (r *Relay) room(name string) *room {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm := r.rooms[name]
	if rm == nil {
		rm = &room{viewers: map[string]*websocket.Conn{}}
		r.rooms[name] = rm
	}
	return rm
}

// ServeHTTP upgrades the request and relays its frames until it closes.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	ch := q.Get(ParamChannel)
	if ch == "" {
		http.Error(w, ErrNoChannel.Error(), http.StatusBadRequest)
		return
	}
	ids, viewer := q[ParamClientID]
	id := ""
	if viewer {
		id = ids[0]
	}
	ws, err := websocket.Accept(w, req, &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return
	}
	rm := r.room(ch)
	rm.mu.Lock()
	var old *websocket.Conn
	if viewer {
		old = rm.viewers[id]
		rm.viewers[id] = ws
	} else {
		old = rm.master
		rm.master = ws
	}
	rm.mu.Unlock()
	if old != nil {
		old.CloseNow()
	}
	defer func() {
		rm.mu.Lock()
		if viewer {
			if rm.viewers[id] == ws {
				delete(rm.viewers, id)
			}
		} else if rm.master == ws {
			rm.master = nil
		}
		rm.mu.Unlock()
		ws.CloseNow()
	}()

	ctx := context.Background()
	var out []byte
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		action := jsonscan.Field(data, keyAction)
		payload := jsonscan.Field(data, keyPayload)
		if action == nil || payload == nil {
			continue
		}
		out = append(out[:0], `{"messageType":"`...)
		out = append(out, action...)
		out = append(out, `","messagePayload":"`...)
		out = append(out, payload...)
		var to *websocket.Conn
		if viewer {
			out = append(out, `","senderClientId":"`...)
			out = append(out, id...)
			out = append(out, `"}`...)
			rm.mu.Lock()
			to = rm.master
			rm.mu.Unlock()
		} else {
			out = append(out, `"}`...)
			rcpt := jsonscan.Field(data, keyRecipient)
			rm.mu.Lock()
			to = rm.viewers[string(rcpt)]
			rm.mu.Unlock()
		}
		if to == nil {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		err = to.Write(wctx, websocket.MessageText, out)
		cancel()
		if err != nil {
			to.CloseNow()
		}
	}
}
