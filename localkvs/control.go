package localkvs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

type tagJSON struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type singleMasterConfig struct {
	MessageTtlSeconds *int `json:"MessageTtlSeconds,omitempty"`
}

type channelInfoJSON struct {
	ChannelARN                string             `json:"ChannelARN"`
	ChannelName               string             `json:"ChannelName"`
	ChannelStatus             string             `json:"ChannelStatus"`
	ChannelType               string             `json:"ChannelType"`
	CreationTime              json.Number        `json:"CreationTime"`
	SingleMasterConfiguration singleMasterConfig `json:"SingleMasterConfiguration"`
	Version                   string             `json:"Version"`
}

func channelInfo(c *channelRec) channelInfoJSON {
	ttl := c.TTL
	return channelInfoJSON{
		ChannelARN:                c.ARN,
		ChannelName:               c.Name,
		ChannelStatus:             c.Status,
		ChannelType:               c.Type,
		CreationTime:              json.Number(strconv.FormatFloat(float64(c.Created)/1000, 'f', 3, 64)),
		SingleMasterConfiguration: singleMasterConfig{MessageTtlSeconds: &ttl},
		Version:                   c.Version,
	}
}

func validTTL(t *int) (int, error) {
	if t == nil {
		return DefaultMessageTTLSeconds, nil
	}
	lo, hi := int(wire.MinMessageTTL/time.Second), int(wire.MaxMessageTTL/time.Second)
	if *t < lo || *t > hi {
		return 0, invalidArg("SingleMasterConfiguration.MessageTtlSeconds %d must be between %d and %d", *t, lo, hi)
	}
	return *t, nil
}

const maxTags = 50

func validTags(tags []tagJSON) error {
	for i, t := range tags {
		if len(t.Key) < 1 || len(t.Key) > 128 {
			return invalidArg("Tags[%d].Key must be 1 to 128 characters", i)
		}
		if strings.HasPrefix(t.Key, "aws:") {
			return invalidArg("Tags[%d].Key %q must not start with aws:", i, t.Key)
		}
		if len(t.Value) > 256 {
			return invalidArg("Tags[%d].Value must be at most 256 characters", i)
		}
	}
	return nil
}

func tagsLimit(n int) error {
	return limitExceeded(codeTagsLimit, "a resource can have at most %d tags, this request would give it %d", maxTags, n)
}

// createChannel validates and creates a channel.
func (s *Server) createChannel(name, typ string, ttl *int, tags []tagJSON) (*channelRec, error) {
	if err := validName("ChannelName", name); err != nil {
		return nil, err
	}
	switch typ {
	case "", "SINGLE_MASTER":
		typ = "SINGLE_MASTER"
	default:
		return nil, invalidArg("ChannelType %q is not supported; use SINGLE_MASTER", typ)
	}
	t, err := validTTL(ttl)
	if err != nil {
		return nil, err
	}
	if err := validTags(tags); err != nil {
		return nil, err
	}
	c := &channelRec{Name: name, Type: typ, TTL: t, Tags: map[string]string{}}
	for _, tg := range tags {
		c.Tags[tg.Key] = tg.Value
	}
	if len(c.Tags) > maxTags {
		return nil, tagsLimit(len(c.Tags))
	}
	limit := s.limits.MaxChannels
	if limit == 0 {
		limit = maxChannels(s.cfg.Region)
	}
	c, err = s.store.create(s.cfg.Region, c, limit)
	if err != nil {
		return nil, err
	}
	s.log.Debug("localkvs: channel created", "name", c.Name, "arn", c.ARN)
	return c, nil
}

func (s *Server) apiCreate(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		ChannelName               string
		ChannelType               string
		SingleMasterConfiguration *singleMasterConfig
		Tags                      []tagJSON
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var ttl *int
	if in.SingleMasterConfiguration != nil {
		ttl = in.SingleMasterConfiguration.MessageTtlSeconds
	}
	c, err := s.createChannel(in.ChannelName, in.ChannelType, ttl, in.Tags)
	if err != nil {
		return nil, err
	}
	return map[string]string{"ChannelARN": c.ARN}, nil
}

// lookup finds a channel by ARN (when set) or name.
func (s *Server) lookup(name, arn string) (*channelRec, error) {
	if arn != "" {
		if err := validARN("ChannelARN", arn); err != nil {
			return nil, err
		}
		c, ok := s.store.get("", arn)
		if !ok {
			return nil, noChannel(arn)
		}
		return c, nil
	}
	if name == "" {
		return nil, invalidArg("ChannelName or ChannelARN is required")
	}
	if err := validName("ChannelName", name); err != nil {
		return nil, err
	}
	c, ok := s.store.get(name, "")
	if !ok {
		return nil, notFound("no signaling channel named %q", name)
	}
	return c, nil
}

func (s *Server) apiDescribe(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct{ ChannelName, ChannelARN string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c, err := s.lookup(in.ChannelName, in.ChannelARN)
	if err != nil {
		return nil, err
	}
	if in.ChannelARN != "" && in.ChannelName != "" && in.ChannelName != c.Name {
		return nil, invalidArg("ChannelName %q does not match the channel of ChannelARN %q", in.ChannelName, in.ChannelARN)
	}
	return map[string]any{"ChannelInfo": channelInfo(c)}, nil
}

func (s *Server) apiList(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		MaxResults           *int
		NextToken            *string
		ChannelNameCondition *struct{ ComparisonOperator, ComparisonValue string }
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	max := 500
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 10000 {
			return nil, invalidArg("MaxResults %d must be between 1 and 10000", *in.MaxResults)
		}
		max = *in.MaxResults
	}
	after := ""
	if in.NextToken != nil && *in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		if err != nil || !wire.ValidName(string(b)) {
			return nil, invalidArg("NextToken is not a token returned by ListSignalingChannels")
		}
		after = string(b)
	}
	prefix := ""
	if c := in.ChannelNameCondition; c != nil {
		if c.ComparisonOperator != "" && c.ComparisonOperator != "BEGINS_WITH" {
			return nil, invalidArg("ChannelNameCondition.ComparisonOperator %q is not supported; use BEGINS_WITH", c.ComparisonOperator)
		}
		if c.ComparisonValue != "" && !wire.ValidName(c.ComparisonValue) {
			return nil, invalidArg("ChannelNameCondition.ComparisonValue %q: want %s", c.ComparisonValue, wire.NameRule)
		}
		prefix = c.ComparisonValue
	}
	chans, more := s.store.list(prefix, after, max)
	list := make([]channelInfoJSON, len(chans))
	for i, c := range chans {
		list[i] = channelInfo(c)
	}
	out := map[string]any{"ChannelInfoList": list}
	if more {
		out["NextToken"] = base64.RawURLEncoding.EncodeToString([]byte(chans[len(chans)-1].Name))
	}
	return out, nil
}

func (s *Server) apiUpdate(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		ChannelARN, CurrentVersion string
		SingleMasterConfiguration  *singleMasterConfig
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validARN("ChannelARN", in.ChannelARN); err != nil {
		return nil, err
	}
	if in.CurrentVersion == "" {
		return nil, invalidArg("CurrentVersion is required")
	}
	var ttl *int
	if in.SingleMasterConfiguration != nil && in.SingleMasterConfiguration.MessageTtlSeconds != nil {
		t, err := validTTL(in.SingleMasterConfiguration.MessageTtlSeconds)
		if err != nil {
			return nil, err
		}
		ttl = &t
	}
	c, err := s.store.update(in.ChannelARN, func(c *channelRec) error {
		if c.Version != in.CurrentVersion {
			return versionMismatch(in.CurrentVersion)
		}
		if ttl != nil {
			c.TTL = *ttl
		}
		c.Version = newVersion()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rm := s.existingRoom(c.ARN); rm != nil {
		rm.setTTL(c.TTL)
	}
	if s.remote != nil {
		s.remote.channelChanged(c.ARN, false) // the other nodes' rooms: cluster_route.go
	}
	return struct{}{}, nil
}

func (s *Server) apiDelete(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct{ ChannelARN, CurrentVersion string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validARN("ChannelARN", in.ChannelARN); err != nil {
		return nil, err
	}
	c, err := s.store.delete(in.ChannelARN, in.CurrentVersion)
	if err != nil {
		return nil, err
	}
	s.deleteRoom(c.ARN)
	if s.remote != nil {
		s.remote.channelChanged(c.ARN, true) // closes its connections on the other nodes
	}
	s.media.stop(c.ARN, "the signaling channel was deleted")
	if err := s.store.dropMediaStorage(c.ARN); err != nil {
		s.log.Warn("localkvs: forgetting the media storage of a deleted channel", "channel", c.ARN, "err", err)
	}
	s.log.Debug("localkvs: channel deleted", "name", c.Name, "arn", c.ARN)
	return struct{}{}, nil
}

func (s *Server) apiEndpoint(_ context.Context, r *http.Request, body []byte) (any, error) {
	var in struct {
		ChannelARN                               string
		SingleMasterChannelEndpointConfiguration *struct {
			Protocols []string
			Role      string
		}
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validARN("ChannelARN", in.ChannelARN); err != nil {
		return nil, err
	}
	if _, ok := s.store.get("", in.ChannelARN); !ok {
		return nil, noChannel(in.ChannelARN)
	}
	protocols := []string{"WSS", "HTTPS"}
	if c := in.SingleMasterChannelEndpointConfiguration; c != nil {
		switch c.Role {
		case "", "MASTER", "VIEWER":
		default:
			return nil, invalidArg("SingleMasterChannelEndpointConfiguration.Role %q must be MASTER or VIEWER", c.Role)
		}
		if len(c.Protocols) > 0 {
			protocols = c.Protocols
		}
	}
	host := r.Host
	if host == "" {
		host = s.hostPort()
	}
	httpScheme, wsScheme := s.schemes()
	type item struct{ Protocol, ResourceEndpoint string }
	list := make([]item, 0, len(protocols))
	for _, p := range protocols {
		switch p {
		case "WSS":
			list = append(list, item{p, wsScheme + host})
		case "HTTPS":
			list = append(list, item{p, httpScheme + host})
		case "WEBRTC": // the storage endpoint: only with media storage (storage.go)
			if s.store.mediaStorage(in.ChannelARN).Status != storageEnabled {
				return nil, invalidArg("the WEBRTC endpoint is for a channel with media storage: the signaling channel %q has none enabled (UpdateMediaStorageConfiguration)", in.ChannelARN)
			}
			list = append(list, item{p, httpScheme + host})
		default:
			return nil, invalidArg("SingleMasterChannelEndpointConfiguration.Protocols: %q is not one of WSS, HTTPS, WEBRTC", p)
		}
	}
	return map[string]any{"ResourceEndpointList": list}, nil
}

func (s *Server) apiTag(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		ResourceARN string
		Tags        []tagJSON
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validARN("ResourceARN", in.ResourceARN); err != nil {
		return nil, err
	}
	if len(in.Tags) == 0 {
		return nil, invalidArg("Tags must hold at least one tag")
	}
	if err := validTags(in.Tags); err != nil {
		return nil, err
	}
	_, err := s.store.update(in.ResourceARN, func(c *channelRec) error {
		for _, t := range in.Tags {
			c.Tags[t.Key] = t.Value
		}
		if len(c.Tags) > maxTags {
			return tagsLimit(len(c.Tags))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Server) apiUntag(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		ResourceARN string
		TagKeyList  []string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validARN("ResourceARN", in.ResourceARN); err != nil {
		return nil, err
	}
	if len(in.TagKeyList) == 0 {
		return nil, invalidArg("TagKeyList must hold at least one key")
	}
	_, err := s.store.update(in.ResourceARN, func(c *channelRec) error {
		for _, k := range in.TagKeyList {
			delete(c.Tags, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Server) apiListTags(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		ResourceARN string
		NextToken   *string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validARN("ResourceARN", in.ResourceARN); err != nil {
		return nil, err
	}
	c, ok := s.store.get("", in.ResourceARN)
	if !ok {
		return nil, noChannel(in.ResourceARN)
	}
	return map[string]any{"Tags": c.Tags}, nil
}
