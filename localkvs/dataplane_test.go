package localkvs_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

func TestGetIceServerConfig(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		srv := start(t, localkvs.Config{TLS: tlsOn})
		arn := mustCreate(t, srv, "ice")
		status, code, body := signedPost(t, srv, "/v1/get-ice-server-config",
			map[string]string{"ChannelARN": arn, "ClientId": "viewer-1", "Service": "TURN"}, localkvs.DevSecretAccessKey)
		if status != 200 {
			t.Fatalf("tls=%v: status %d %s %s", tlsOn, status, code, body)
		}
		var out struct{ IceServerList []json.RawMessage }
		if err := json.Unmarshal(body, &out); err != nil || out.IceServerList == nil {
			t.Fatalf("body %s: want an IceServerList array (%v)", body, err)
		}

		status, code, _ = signedPost(t, srv, "/v1/get-ice-server-config",
			map[string]string{"ChannelARN": "arn:aws:kinesisvideo:us-west-2:000000000000:channel/x/1"}, localkvs.DevSecretAccessKey)
		if status != 404 || code != "ResourceNotFoundException" {
			t.Fatalf("unknown channel: %d %q", status, code)
		}
		status, code, _ = signedPost(t, srv, "/v1/get-ice-server-config",
			map[string]string{"ChannelARN": arn, "Service": "STUN"}, localkvs.DevSecretAccessKey)
		if status != 400 || code != "InvalidArgumentException" {
			t.Fatalf("bad service: %d %q", status, code)
		}
		status, code, _ = signedPost(t, srv, "/v1/get-ice-server-config",
			map[string]string{"ChannelARN": arn}, "wrong")
		if status != 403 || code != "AccessDeniedException" {
			t.Fatalf("wrong secret: %d %q", status, code)
		}
	}
}

func TestLimitICEConfigPerSecond(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: localkvs.Limits{ICEConfigPerSecond: 1}})
	arn := mustCreate(t, srv, "ice-rate")
	limited := false
	for range 5 {
		status, code, _ := signedPost(t, srv, "/v1/get-ice-server-config", map[string]string{"ChannelARN": arn}, localkvs.DevSecretAccessKey)
		if status == 400 && code == "ClientLimitExceededException" {
			limited = true
			break
		}
		if status != 200 {
			t.Fatalf("status %d %q", status, code)
		}
	}
	if !limited {
		t.Fatal("5 calls at 1 per second were never limited")
	}
}

func TestSendAlexaOfferToMaster(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "alexa")
	offer := payload(t, map[string]string{"type": "offer", "sdp": "v=0 alexa"})
	req := map[string]string{"ChannelARN": arn, "SenderClientId": "alexa-1", "MessagePayload": offer}

	// No master connected.
	status, code, body := signedPost(t, srv, "/v1/send-alexa-offer-to-master", req, localkvs.DevSecretAccessKey)
	if status != 404 || code != "ResourceNotFoundException" {
		t.Fatalf("no master: %d %q %s", status, code, body)
	}
	// Unknown channel.
	status, _, _ = signedPost(t, srv, "/v1/send-alexa-offer-to-master", map[string]string{
		"ChannelARN": "arn:aws:kinesisvideo:us-west-2:000000000000:channel/x/1", "SenderClientId": "a", "MessagePayload": offer}, localkvs.DevSecretAccessKey)
	if status != 404 {
		t.Fatalf("unknown channel: %d", status)
	}

	master := dial(t, srv, arn, "")
	masterIn := frames(master)
	answer := payload(t, map[string]string{"type": "answer", "sdp": "v=0 master"})
	answered := make(chan error, 1)
	go func() { // the master answers the offer it receives
		select {
		case b := <-masterIn:
			var m wire.ServiceMessage
			json.Unmarshal(b, &m)
			if m.MessageType != wire.SDPOffer || m.SenderClientID != "alexa-1" || m.MessagePayload != offer {
				answered <- fmt.Errorf("master got %s, want the offer from alexa-1", b)
				return
			}
			answered <- write(master, wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: answer, RecipientClientID: "alexa-1"})
		case <-time.After(waitTimeout):
			answered <- fmt.Errorf("the master got no offer within %s", waitTimeout)
		}
	}()
	status, code, body = signedPost(t, srv, "/v1/send-alexa-offer-to-master", req, localkvs.DevSecretAccessKey)
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * waitTimeout):
		t.Fatal("the master's goroutine never finished")
	}
	if status != 200 {
		t.Fatalf("status %d %q %s", status, code, body)
	}
	var out struct{ Answer string }
	if err := json.Unmarshal(body, &out); err != nil || out.Answer != answer {
		t.Fatalf("answer %s, want %q", body, answer)
	}

	// A master that never answers: the call times out.
	localkvs.SetAlexaTimeout(srv, 200*time.Millisecond)
	status, code, _ = signedPost(t, srv, "/v1/send-alexa-offer-to-master", req, localkvs.DevSecretAccessKey)
	if status != 504 {
		t.Fatalf("unanswered: %d %q, want 504", status, code)
	}
}
