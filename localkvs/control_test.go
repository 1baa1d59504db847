package localkvs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

func TestControlPlane(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			srv := start(t, localkvs.Config{TLS: tlsOn, DataDir: t.TempDir()})
			controlPlaneOps(t, srv)
		})
	}
}

func controlPlaneOps(t *testing.T, srv *localkvs.Server) {
	ctx := context.Background()
	kv := devClient(srv)

	before := time.Now().Add(-time.Second)
	cr, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{
		ChannelName: aws.String("cam-1"),
		Tags:        []types.Tag{{Key: aws.String("team"), Value: aws.String("video")}},
	})
	if err != nil {
		t.Fatalf("CreateSignalingChannel: %v", err)
	}
	arn := aws.ToString(cr.ChannelARN)
	if !regexp.MustCompile(`^arn:aws:kinesisvideo:us-west-2:000000000000:channel/cam-1/[0-9]{13}$`).MatchString(arn) {
		t.Fatalf("ARN %q has the wrong shape", arn)
	}

	_, err = kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("cam-1")})
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Fatalf("second create: %v, want ResourceInUseException", err)
	}

	d, err := kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("cam-1")})
	if err != nil {
		t.Fatalf("Describe by name: %v", err)
	}
	ci := d.ChannelInfo
	if aws.ToString(ci.ChannelARN) != arn || aws.ToString(ci.ChannelName) != "cam-1" || ci.ChannelStatus != types.StatusActive ||
		ci.ChannelType != types.ChannelTypeSingleMaster || aws.ToInt32(ci.SingleMasterConfiguration.MessageTtlSeconds) != 60 ||
		aws.ToString(ci.Version) == "" {
		t.Fatalf("ChannelInfo = %+v", ci)
	}
	if ct := aws.ToTime(ci.CreationTime); ct.Before(before) || ct.After(time.Now().Add(time.Second)) {
		t.Fatalf("CreationTime %v is not now", ct)
	}
	d2, err := kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
	if err != nil || aws.ToString(d2.ChannelInfo.ChannelName) != "cam-1" {
		t.Fatalf("Describe by ARN: %v %+v", err, d2)
	}

	// Update: TTL changes, version changes; a stale version is refused.
	v1 := aws.ToString(ci.Version)
	_, err = kv.UpdateSignalingChannel(ctx, &kinesisvideo.UpdateSignalingChannelInput{
		ChannelARN: aws.String(arn), CurrentVersion: aws.String(v1),
		SingleMasterConfiguration: &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(30)},
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	d, _ = kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
	if aws.ToInt32(d.ChannelInfo.SingleMasterConfiguration.MessageTtlSeconds) != 30 || aws.ToString(d.ChannelInfo.Version) == v1 {
		t.Fatalf("after update: %+v", d.ChannelInfo)
	}
	_, err = kv.UpdateSignalingChannel(ctx, &kinesisvideo.UpdateSignalingChannelInput{
		ChannelARN: aws.String(arn), CurrentVersion: aws.String(v1),
		SingleMasterConfiguration: &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(40)},
	})
	var vm *types.VersionMismatchException
	if !errors.As(err, &vm) {
		t.Fatalf("update with stale version: %v, want VersionMismatchException", err)
	}

	// List with pagination and a name condition.
	for _, n := range []string{"cam-2", "cam-3", "door-1"} {
		if _, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	var token *string
	pages := 0
	for {
		out, err := kv.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{
			MaxResults: aws.Int32(2), NextToken: token,
			ChannelNameCondition: &types.ChannelNameCondition{ComparisonOperator: types.ComparisonOperatorBeginsWith, ComparisonValue: aws.String("cam")},
		})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		pages++
		for _, c := range out.ChannelInfoList {
			names = append(names, aws.ToString(c.ChannelName))
		}
		if out.NextToken == nil {
			break
		}
		token = out.NextToken
	}
	if fmt.Sprint(names) != "[cam-1 cam-2 cam-3]" || pages != 2 {
		t.Fatalf("List gave %v in %d pages, want [cam-1 cam-2 cam-3] in 2", names, pages)
	}
	all, err := kv.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{})
	if err != nil || len(all.ChannelInfoList) != 4 {
		t.Fatalf("List all: %v, %d channels", err, len(all.ChannelInfoList))
	}

	// Endpoints point at this server (WEBRTC needs media storage).
	enableStorage(t, kv, arn, "cam-1-storage")
	ep, err := kv.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{
		ChannelARN: aws.String(arn),
		SingleMasterChannelEndpointConfiguration: &types.SingleMasterChannelEndpointConfiguration{
			Protocols: []types.ChannelProtocol{types.ChannelProtocolWss, types.ChannelProtocolHttps, types.ChannelProtocolWebrtc},
			Role:      types.ChannelRoleViewer,
		},
	})
	if err != nil {
		t.Fatalf("GetSignalingChannelEndpoint: %v", err)
	}
	got := map[types.ChannelProtocol]string{}
	for _, e := range ep.ResourceEndpointList {
		got[e.Protocol] = aws.ToString(e.ResourceEndpoint)
	}
	if got[types.ChannelProtocolWss] != srv.WSSEndpoint() || got[types.ChannelProtocolHttps] != srv.URL() || got[types.ChannelProtocolWebrtc] != srv.URL() {
		t.Fatalf("endpoints %v, want WSS %s and HTTPS/WEBRTC %s", got, srv.WSSEndpoint(), srv.URL())
	}

	// Tags.
	if _, err := kv.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: aws.String(arn),
		Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("dev")}}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if _, err := kv.UntagResource(ctx, &kinesisvideo.UntagResourceInput{ResourceARN: aws.String(arn), TagKeyList: []string{"team"}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	tags, err := kv.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
	if err != nil || fmt.Sprint(tags.Tags) != "map[env:dev]" {
		t.Fatalf("ListTagsForResource: %v %v", err, tags)
	}

	// Delete: a wrong version is refused, then the channel is gone.
	_, err = kv.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn), CurrentVersion: aws.String("nope")})
	if !errors.As(err, &vm) {
		t.Fatalf("delete with wrong version: %v, want VersionMismatchException", err)
	}
	if _, err := kv.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn)}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("describe deleted: %v, want ResourceNotFoundException", err)
	}
}

func TestControlPlaneErrors(t *testing.T) {
	srv := start(t, localkvs.Config{})
	kv := devClient(srv)
	ctx := context.Background()
	arn := mustCreate(t, srv, "errs")
	missing := "arn:aws:kinesisvideo:us-west-2:000000000000:channel/none/1700000000000"

	var ia *types.InvalidArgumentException
	var nf *types.ResourceNotFoundException
	cases := []struct {
		name string
		call func() error
		want any
	}{
		{"bad name", func() error {
			_, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("bad name!")})
			return err
		}, &ia},
		{"ttl too small", func() error {
			_, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("t1"),
				SingleMasterConfiguration: &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(4)}})
			return err
		}, &ia},
		{"ttl too large", func() error {
			_, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("t2"),
				SingleMasterConfiguration: &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(121)}})
			return err
		}, &ia},
		{"bad arn", func() error {
			_, err := kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String("arn:nope")})
			return err
		}, &ia},
		{"describe missing", func() error {
			_, err := kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(missing)})
			return err
		}, &nf},
		{"describe missing name", func() error {
			_, err := kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("none")})
			return err
		}, &nf},
		{"endpoint missing", func() error {
			_, err := kv.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{ChannelARN: aws.String(missing)})
			return err
		}, &nf},
		{"delete missing", func() error {
			_, err := kv.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(missing)})
			return err
		}, &nf},
		{"update bad ttl", func() error {
			_, err := kv.UpdateSignalingChannel(ctx, &kinesisvideo.UpdateSignalingChannelInput{ChannelARN: aws.String(arn), CurrentVersion: aws.String("x"),
				SingleMasterConfiguration: &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(500)}})
			return err
		}, &ia},
		{"list tags missing", func() error {
			_, err := kv.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: aws.String(missing)})
			return err
		}, &nf},
		{"bad list token", func() error {
			_, err := kv.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{NextToken: aws.String("!!")})
			return err
		}, &ia},
		{"bad endpoint role", func() error {
			_, err := kv.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{ChannelARN: aws.String(arn),
				SingleMasterChannelEndpointConfiguration: &types.SingleMasterChannelEndpointConfiguration{Role: "BOSS"}})
			return err
		}, &ia},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if err == nil || !errors.As(err, c.want) {
				t.Fatalf("err = %v, want %T", err, c.want)
			}
		})
	}

	t.Run("malformed JSON", func(t *testing.T) {
		status, code, _ := signedPost(t, srv, "/describeSignalingChannel", "not an object", localkvs.DevSecretAccessKey)
		if status != 400 || code != "InvalidArgumentException" {
			t.Fatalf("got %d %q", status, code)
		}
	})
	t.Run("tags limit", func(t *testing.T) {
		var tags []types.Tag
		for i := range 51 {
			tags = append(tags, types.Tag{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")})
		}
		_, err := kv.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: aws.String(arn), Tags: tags})
		var tl *types.TagsPerResourceExceededLimitException
		if !errors.As(err, &tl) {
			t.Fatalf("err = %v, want TagsPerResourceExceededLimitException", err)
		}
	})
}

func TestWrongSecretAccessDenied(t *testing.T) {
	srv := start(t, localkvs.Config{})
	ctx := context.Background()
	for name, kv := range map[string]*kinesisvideo.Client{
		"wrong secret": kvsClient(srv, localkvs.DevAccessKeyID, "wrong-secret"),
		"unknown key":  kvsClient(srv, "AKIAUNKNOWN000000000", localkvs.DevSecretAccessKey),
	} {
		_, err := kv.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{})
		var ad *types.AccessDeniedException
		if !errors.As(err, &ad) {
			t.Errorf("%s: err = %v, want AccessDeniedException", name, err)
		}
	}
	// Custom credentials replace the development pair; AWSConfig signs
	// with the first of them.
	srv2 := start(t, localkvs.Config{Credentials: map[string]string{"AKIACUSTOM0000000002": "other", "AKIACUSTOM0000000001": "s3cret"}})
	if _, err := kvsClient(srv2, "AKIACUSTOM0000000001", "s3cret").ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
		t.Fatalf("custom pair: %v", err)
	}
	if c, err := srv2.AWSConfig().Credentials.Retrieve(ctx); err != nil || c.AccessKeyID != "AKIACUSTOM0000000001" {
		t.Fatalf("AWSConfig credentials %q, %v; want the first configured pair", c.AccessKeyID, err)
	}
	if _, err := devClient(srv2).ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
		t.Fatalf("AWSConfig of a server with custom credentials: %v", err)
	}
	_, err := kvsClient(srv2, localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey).ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{})
	var ad *types.AccessDeniedException
	if !errors.As(err, &ad) {
		t.Fatalf("dev pair on a server with custom credentials: %v, want AccessDeniedException", err)
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := localkvs.Start(localkvs.Config{DataDir: dir}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kv := devClient(srv)
	ctx := context.Background()
	cr, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("kept"),
		SingleMasterConfiguration: &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(90)},
		Tags:                      []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
	if err != nil {
		t.Fatal(err)
	}
	gone := mustCreate(t, srv, "gone")
	if _, err := kv.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(gone)}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	srv2 := start(t, localkvs.Config{DataDir: dir})
	kv2 := devClient(srv2)
	d, err := kv2.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("kept")})
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if aws.ToString(d.ChannelInfo.ChannelARN) != aws.ToString(cr.ChannelARN) || aws.ToInt32(d.ChannelInfo.SingleMasterConfiguration.MessageTtlSeconds) != 90 {
		t.Fatalf("after restart: %+v, want ARN %s TTL 90", d.ChannelInfo, aws.ToString(cr.ChannelARN))
	}
	tags, err := kv2.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: cr.ChannelARN})
	if err != nil || tags.Tags["a"] != "b" {
		t.Fatalf("tags after restart: %v %v", err, tags)
	}
	_, err = kv2.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(gone)})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("deleted channel after restart: %v", err)
	}
	// A second server on the same DataDir is refused while the first holds it.
	if _, err := localkvs.New(localkvs.Config{DataDir: dir}); !errors.Is(err, localkvs.ErrStoreLocked) {
		t.Fatalf("second server on the same DataDir: %v, want ErrStoreLocked", err)
	}
}

func TestTLSCertReusedFromDataDir(t *testing.T) {
	dir := t.TempDir()
	a, err := localkvs.New(localkvs.Config{TLS: true, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pem1 := a.CACertPEM()
	a.Close()
	b, err := localkvs.New(localkvs.Config{TLS: true, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if string(b.CACertPEM()) != string(pem1) || len(pem1) == 0 {
		t.Fatal("the CA in DataDir was not reused")
	}
	plain, _ := localkvs.New(localkvs.Config{})
	defer plain.Close()
	if plain.CACertPEM() != nil || plain.CertPool() != nil {
		t.Fatal("a server without TLS has a CA")
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]localkvs.Config{
		"region":      {Region: "Mars"},
		"empty key":   {Credentials: map[string]string{"": "x"}},
		"empty value": {Credentials: map[string]string{"AKIA": ""}},
		"viewers":     {Limits: localkvs.Limits{MaxViewers: -1}},
		"lead":        {Limits: localkvs.Limits{MaxConnectionDuration: time.Second}},
	} {
		if _, err := localkvs.New(cfg); !errors.Is(err, localkvs.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := localkvs.New(localkvs.Config{}); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
}

// TestChannelsPerRegionLimit: CreateSignalingChannel beyond the region's
// channel limit fails with AccountChannelLimitExceededException, and
// deleting a channel makes room again. The real limit (10,000 in
// us-west-2) is shortened through Limits.MaxChannels.
func TestChannelsPerRegionLimit(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: localkvs.Limits{MaxChannels: 3}})
	kv := devClient(srv)
	ctx := context.Background()
	var arns []string
	for i := range 3 {
		out, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String(fmt.Sprintf("lim-%d", i))})
		if err != nil {
			t.Fatalf("channel %d: %v", i, err)
		}
		arns = append(arns, aws.ToString(out.ChannelARN))
	}
	_, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("lim-3")})
	var limit *types.AccountChannelLimitExceededException
	if !errors.As(err, &limit) {
		t.Fatalf("4th channel: got %v, want AccountChannelLimitExceededException", err)
	}
	if _, err := kv.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arns[0])}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("lim-3")}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	if _, err := localkvs.New(localkvs.Config{Limits: localkvs.Limits{MaxChannels: -1}}); !errors.Is(err, localkvs.ErrInvalidConfig) {
		t.Fatalf("negative MaxChannels: %v", err)
	}
}

// TestCORS: a browser page on a loopback origin (the official JS SDK's test
// page, or kvswebrtc web's on localhost:3001) can call the control plane:
// the preflight is answered for that origin and the response carries the
// headers the AWS SDK reads. Foreign origins: TestDefect2Origins.
func TestCORS(t *testing.T) {
	srv := start(t, localkvs.Config{})
	pre, _ := http.NewRequest(http.MethodOptions, srv.URL()+"/describeSignalingChannel", nil)
	pre.Header.Set("Origin", "http://localhost:3001")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-amz-date,x-amz-security-token,x-amz-user-agent")
	resp, err := http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "http://localhost:3001" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
	// The real call from that origin (unsigned here: refused, but readable by the page).
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/describeSignalingChannel", strings.NewReader(`{"ChannelName":"x"}`))
	req.Header.Set("Origin", "http://localhost:3001")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3001" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "x-amzn-ErrorType") {
		t.Fatalf("POST from another origin: %v", resp.Header)
	}
	// Without an Origin nothing changes.
	resp, err = http.Post(srv.URL()+"/describeSignalingChannel", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS headers on a request without Origin")
	}
}

// TestErrorMessages: an error keeps its code and message from where it
// arises to the response: the HTTP message is the bare detail, and the Go
// API's errors match the package sentinels with errors.Is.
func TestErrorMessages(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "msgs")
	missing := "arn:aws:kinesisvideo:us-west-2:000000000000:channel/none/1700000000000"
	message := func(body []byte) string {
		var m struct{ Message string }
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("error body %s: %v", body, err)
		}
		return m.Message
	}
	for _, c := range []struct {
		path   string
		body   map[string]string
		status int
		code   string
		msg    string
	}{
		{"/describeSignalingChannel", map[string]string{"ChannelName": "bad name!"}, 400, "InvalidArgumentException",
			`ChannelName "bad name!": want ` + wire.NameRule},
		{"/describeSignalingChannel", map[string]string{"ChannelARN": missing}, 404, "ResourceNotFoundException",
			fmt.Sprintf("no signaling channel with ARN %q", missing)},
		{"/createSignalingChannel", map[string]string{"ChannelName": "msgs"}, 400, "ResourceInUseException",
			`a signaling channel named "msgs" already exists`},
		{"/deleteSignalingChannel", map[string]string{"ChannelARN": arn, "CurrentVersion": "old"}, 400, "VersionMismatchException",
			`CurrentVersion "old" is not the channel's current version`},
		{"/v1/get-ice-server-config", map[string]string{"ChannelARN": arn, "ClientId": "AWS_x"}, 400, "InvalidArgumentException",
			`ClientId "AWS_x": must not start with "AWS_" (reserved)`},
		{"/v1/send-alexa-offer-to-master", map[string]string{"ChannelARN": arn, "SenderClientId": "a b", "MessagePayload": "x"}, 400, "InvalidArgumentException",
			`SenderClientId: ClientId "a b": want ` + wire.ClientIDRule},
	} {
		status, code, body := signedPost(t, srv, c.path, c.body, localkvs.DevSecretAccessKey)
		if status != c.status || code != c.code || message(body) != c.msg {
			t.Errorf("%s %v: %d %s %q, want %d %s %q", c.path, c.body, status, code, message(body), c.status, c.code, c.msg)
		}
	}

	// The WebSocket upgrade's refusals read the same way.
	_, resp, err := dialErr(srv, presign(t, srv, arn, "a b", time.Now(), localkvs.DevSecretAccessKey))
	if err == nil || resp == nil {
		t.Fatalf("dial with a bad ClientId: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if want := `X-Amz-ClientId: ClientId "a b": want ` + wire.ClientIDRule; resp.StatusCode != 400 || message(body) != want {
		t.Errorf("bad ClientId refused with %d %q, want 400 %q", resp.StatusCode, message(body), want)
	}

	// The Go API: sentinels with errors.Is, the same detail in the text.
	_, err = srv.CreateChannel(context.Background(), "msgs")
	if !errors.Is(err, localkvs.ErrResourceInUse) || err.Error() != `localkvs: resource in use: a signaling channel named "msgs" already exists` {
		t.Errorf("CreateChannel of an existing name: %v", err)
	}
	if _, err := srv.CreateChannel(context.Background(), "bad name!"); !errors.Is(err, localkvs.ErrInvalidArgument) {
		t.Errorf("CreateChannel with a bad name: %v, want ErrInvalidArgument", err)
	}
	if err := srv.ReconnectICEServer(context.Background(), missing); !errors.Is(err, localkvs.ErrNotFound) || errors.Is(err, localkvs.ErrInvalidArgument) {
		t.Errorf("ReconnectICEServer of a missing channel: %v, want ErrNotFound only", err)
	}
}
