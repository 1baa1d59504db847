package sigv4_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// Presign the URL a viewer opens, then verify it as the service would.
func Example() {
	creds := sigv4.StaticCredentials("AKIA4F7WJQR7FMMWMNXI", "FakeSecretKey", "")
	signer, err := sigv4.New("us-west-2", creds)
	if err != nil {
		panic(err)
	}
	at := time.Date(2019, 12, 1, 0, 0, 0, 0, time.UTC)
	url, err := signer.PresignURL(context.Background(), "wss://kvs.awsamazon.com",
		map[string]string{"X-Amz-TestParam": "test-param-value"}, at)
	if err != nil {
		panic(err)
	}
	fmt.Println(url)
	// Output:
	// wss://kvs.awsamazon.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA4F7WJQR7FMMWMNXI%2F20191201%2Fus-west-2%2Fkinesisvideo%2Faws4_request&X-Amz-Date=20191201T000000Z&X-Amz-Expires=299&X-Amz-Signature=be1e78950d956a8a9a1997417099ddbd7455619f3d08c4ad20e1e272179ca695&X-Amz-SignedHeaders=host&X-Amz-TestParam=test-param-value
}
