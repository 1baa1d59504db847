package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// Setting up a run: the channels, through the control plane (kvswebrtc
// serve) or by name (the bare relay).

// setupBare names the channels; the bare relay needs no control plane.
func (r *runner) setupBare(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-server %q is not a URL like ws://127.0.0.1:PORT", endpoint)
	}
	base := "ws://" + u.Host + "/"
	for i := 0; i < r.cfg.Channels; i++ {
		r.channels = append(r.channels, fmt.Sprintf("bare-%d", i))
	}
	r.dialURL = func(_ context.Context, p *peer) (string, error) {
		q := url.Values{"X-Amz-ChannelARN": {r.channels[p.ch]}}
		if p.id != "" {
			q.Set("X-Amz-ClientId", p.id)
		}
		return base + "?" + q.Encode(), nil
	}
	return nil
}

func kvsClient(endpoint, region string) *kinesisvideo.Client {
	return kinesisvideo.New(kinesisvideo.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""),
	})
}

// setupKVS creates the channels through the control plane and finds the
// WSS endpoint.
func (r *runner) setupKVS(ctx context.Context, endpoint string) ([]string, error) {
	endpoint = strings.Replace(strings.Replace(endpoint, "ws://", "http://", 1), "wss://", "https://", 1)
	kv := kvsClient(endpoint, r.cfg.Region)
	run := time.Now().UnixMilli()
	r.channels = make([]string, r.cfg.Channels)
	t0 := time.Now()
	jobs := make(chan int)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				out, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{
					ChannelName: aws.String(fmt.Sprintf("loadgen-%d-%d", run, i)),
				})
				if err != nil {
					select {
					case errc <- fmt.Errorf("CreateSignalingChannel: %w", err):
					default:
					}
					continue
				}
				r.channels[i] = aws.ToString(out.ChannelARN)
			}
		}()
	}
	for i := range r.channels {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	fmt.Fprintf(r.log, "created %d channels in %s\n", len(r.channels), time.Since(t0).Round(time.Millisecond))
	ep, err := kv.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{
		ChannelARN: aws.String(r.channels[0]),
		SingleMasterChannelEndpointConfiguration: &types.SingleMasterChannelEndpointConfiguration{
			Protocols: []types.ChannelProtocol{types.ChannelProtocolWss},
			Role:      types.ChannelRoleMaster,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("GetSignalingChannelEndpoint: %w", err)
	}
	wss := ""
	for _, e := range ep.ResourceEndpointList {
		if e.Protocol == types.ChannelProtocolWss {
			wss = aws.ToString(e.ResourceEndpoint)
		}
	}
	if wss == "" {
		return nil, errors.New("GetSignalingChannelEndpoint returned no WSS endpoint")
	}
	// The local service has one WSS endpoint for every channel and role.
	p, err := sigv4.New(r.cfg.Region, sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""), sigv4.AllowInsecureEndpoint())
	if err != nil {
		return nil, err
	}
	r.dialURL = func(ctx context.Context, pe *peer) (string, error) {
		q := map[string]string{sigv4.ParamChannelARN: r.channels[pe.ch]}
		if pe.id != "" {
			q[sigv4.ParamClientID] = pe.id
		}
		ep := wss
		if r.cfg.wssFor != nil {
			ep = r.cfg.wssFor(pe)
		}
		return p.PresignURL(ctx, ep, q, time.Now())
	}
	return r.channels, nil
}

func (r *runner) deleteChannels(endpoint string, arns []string) {
	kv := kvsClient(endpoint, r.cfg.Region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, a := range arns {
		if a != "" {
			_, _ = kv.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(a)})
		}
	}
}
