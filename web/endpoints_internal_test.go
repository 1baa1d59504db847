package web

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
)

// hostRecorder is an HTTP client that records the hosts asked for and
// answers nothing.
type hostRecorder struct {
	mu    sync.Mutex
	hosts []string
}

func (h *hostRecorder) Do(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.hosts = append(h.hosts, r.URL.Host)
	h.mu.Unlock()
	return nil, errors.New("recorded")
}

// TestVariantEndpoints: against AWS (no custom endpoint) the endpoint type
// and FIPS choose the control-plane host as the aws CLI does.
func TestVariantEndpoints(t *testing.T) {
	for _, c := range []struct {
		choice endpointChoice
		host   string
	}{
		{endpointChoice{}, "kinesisvideo.us-west-2.amazonaws.com"},
		{endpointChoice{FIPS: true}, "kinesisvideo-fips.us-west-2.amazonaws.com"},
		{endpointChoice{EndpointType: "dualStack"}, "kinesisvideo.us-west-2.api.aws"},
		{endpointChoice{Region: "eu-west-1"}, "kinesisvideo.eu-west-1.amazonaws.com"},
	} {
		rec := &hostRecorder{}
		s, err := New(Config{
			AWS: aws.Config{Region: "us-west-2", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""), HTTPClient: rec,
				RetryMaxAttempts: 1},
			AllowRegionChange: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.clientsFor(c.choice)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = v.kv().DescribeSignalingChannel(context.Background(), &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("x")})
		if len(rec.hosts) == 0 || rec.hosts[0] != c.host {
			t.Errorf("choice %+v: the control plane is %v, want %s", c.choice, rec.hosts, c.host)
		}
	}
}
