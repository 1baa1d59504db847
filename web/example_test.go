package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/kvswebrtc/kvswebrtc/web"
)

// Example serves the test page against an embedded local service, fetches
// the page, and asks the backend for a signed URL as the page does.
func Example() {
	local, err := web.StartLocal(web.LocalConfig{})
	if err != nil {
		panic(err)
	}
	defer local.Close()

	srv, err := web.New(local.Config(nil))
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv) // or go srv.ListenAndServe("127.0.0.1:3001"), then srv.Shutdown(ctx)
	defer hs.Close()

	res, err := http.Get(hs.URL + "/")
	if err != nil {
		panic(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.Status, strings.Contains(string(page), "<title>KVS WebRTC test page</title>"))

	body, _ := json.Marshal(map[string]string{"channelName": "demo", "role": "viewer", "clientId": "v1"})
	res, err = http.Post(hs.URL+"/api/connect", "application/json", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	var out struct {
		ChannelARN         string `json:"channelARN"`
		SignedURL          string `json:"signedURL"`
		ICETransportPolicy string `json:"iceTransportPolicy"`
	}
	json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	fmt.Println(strings.HasPrefix(out.ChannelARN, "arn:aws:kinesisvideo:us-west-2:000000000000:channel/demo/"))
	fmt.Println(strings.HasPrefix(out.SignedURL, "ws://127.0.0.1:"), strings.Contains(out.SignedURL, "X-Amz-ClientId=v1"))
	fmt.Println(out.ICETransportPolicy)
	// Output:
	// 200 OK true
	// true
	// true true
	// all
}
