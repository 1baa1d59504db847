package localkvs

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

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
	if err := addTags(c.Tags, tags); err != nil {
		return nil, err
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

// channelRef is a request that names a channel by ChannelName or
// ChannelARN (DescribeSignalingChannel, DescribeMediaStorageConfiguration).
// An unnamed struct (alias), as nameCondition, for encoding/json's errors.
type channelRef = struct{ ChannelName, ChannelARN string }

// channelOf decodes a channelRef and finds its channel by ARN (when set)
// or name.
func (s *Server) channelOf(body []byte) (*channelRec, channelRef, error) {
	var in channelRef
	if err := decode(body, &in); err != nil {
		return nil, in, err
	}
	c, err := find(channelResource, in.ChannelName, in.ChannelARN, s.store.get)
	return c, in, err
}

func (s *Server) apiDescribe(_ context.Context, _ *http.Request, body []byte) (any, error) {
	c, in, err := s.channelOf(body)
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
		ChannelNameCondition *nameCondition
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	p, err := listChannelsOp.parse(in.MaxResults, in.NextToken, in.ChannelNameCondition)
	if err != nil {
		return nil, err
	}
	chans, more := s.store.list(p.prefix, p.after, p.max)
	return listAnswer("ChannelInfoList", chans, more, channelInfo, func(c *channelRec) string { return c.Name }), nil
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
	if _, err := s.channelByARN("ChannelARN", in.ChannelARN); err != nil {
		return nil, err
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
	if err := checkTagsToAdd(in.Tags); err != nil {
		return nil, err
	}
	return emptyAnswer(s.store.update(in.ResourceARN, func(c *channelRec) error {
		return addTags(c.Tags, in.Tags)
	}))
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
	if err := checkTagKeys(in.TagKeyList); err != nil {
		return nil, err
	}
	return emptyAnswer(s.store.update(in.ResourceARN, func(c *channelRec) error {
		removeTags(c.Tags, in.TagKeyList)
		return nil
	}))
}

func (s *Server) apiListTags(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		ResourceARN string
		NextToken   *string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c, err := s.channelByARN("ResourceARN", in.ResourceARN)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Tags": c.Tags}, nil
}
