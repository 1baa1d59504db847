package localkvs

import (
	"context"
	"net/http"
)

// The media storage configuration of a channel (kinesisvideo
// UpdateMediaStorageConfiguration and DescribeMediaStorageConfiguration)
// and the kinesisvideowebrtcstorage calls JoinStorageSession and
// JoinStorageSessionAsViewer (docs/protocol.md, "Streams and storage").

// The statuses of a media storage configuration.
const (
	storageEnabled  = "ENABLED"
	storageDisabled = "DISABLED"
)

type mediaStorageJSON struct {
	Status    string `json:"Status"`
	StreamARN string `json:"StreamARN,omitempty"`
}

func (s *Server) apiUpdateMediaStorage(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		ChannelARN                string
		MediaStorageConfiguration *mediaStorageJSON
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validARN("ChannelARN", in.ChannelARN); err != nil {
		return nil, err
	}
	c := in.MediaStorageConfiguration
	if c == nil {
		return nil, invalidArg("MediaStorageConfiguration is required")
	}
	if c.Status != storageEnabled && c.Status != storageDisabled {
		return nil, invalidArg("MediaStorageConfiguration.Status %q must be ENABLED or DISABLED", c.Status)
	}
	if _, ok := s.store.get("", in.ChannelARN); !ok {
		return nil, noChannel(in.ChannelARN)
	}
	rec := mediaStorageRec{Status: c.Status, StreamARN: c.StreamARN}
	if c.Status == storageEnabled {
		if c.StreamARN == "" {
			return nil, invalidArg("MediaStorageConfiguration.StreamARN is required when Status is ENABLED")
		}
		if err := validARN("MediaStorageConfiguration.StreamARN", c.StreamARN); err != nil {
			return nil, err
		}
		st, ok := s.store.getStream("", c.StreamARN)
		if !ok {
			return nil, notFound("no stream with ARN %q", c.StreamARN)
		}
		if st.Retention <= 0 {
			return nil, newAPIError(http.StatusBadRequest, codeNoDataRetention, ErrInvalidArgument,
				"the stream %q has no data retention (DataRetentionInHours is 0): media storage needs a stream that keeps its media", st.Name)
		}
	} else if c.StreamARN != "" {
		if err := validARN("MediaStorageConfiguration.StreamARN", c.StreamARN); err != nil {
			return nil, err
		}
	}
	err := s.store.setMediaStorage(in.ChannelARN, rec, func(others map[string]mediaStorageRec) error {
		if rec.Status != storageEnabled {
			return nil
		}
		for ch, o := range others {
			if ch != in.ChannelARN && o.Status == storageEnabled && o.StreamARN == rec.StreamARN {
				return inUse("the stream %q is already the media storage of channel %q", rec.StreamARN, ch)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rec.Status != storageEnabled {
		s.media.stop(in.ChannelARN, "media storage was disabled")
	}
	s.log.Debug("localkvs: media storage configured", "channel", in.ChannelARN, "status", rec.Status, "stream", rec.StreamARN)
	return struct{}{}, nil
}

func (s *Server) apiDescribeMediaStorage(_ context.Context, _ *http.Request, body []byte) (any, error) {
	c, _, err := s.channelOf(body)
	if err != nil {
		return nil, err
	}
	r := s.store.mediaStorage(c.ARN)
	return map[string]any{"MediaStorageConfiguration": mediaStorageJSON{Status: r.Status, StreamARN: r.StreamARN}}, nil
}

// storageFor checks that channel (an ARN) exists and has media storage
// enabled with a stream that exists, and returns that stream. What it
// returns is also the answer of GetSignalingChannelEndpoint for WEBRTC.
func (s *Server) storageFor(channel string) (*streamRec, error) {
	if _, err := s.channelByARN("channelArn", channel); err != nil {
		return nil, err
	}
	cfg := s.store.mediaStorage(channel)
	if cfg.Status != storageEnabled {
		return nil, invalidArg("the signaling channel %q has no media storage configured (UpdateMediaStorageConfiguration with Status ENABLED and a stream)", channel)
	}
	st, ok := s.store.getStream("", cfg.StreamARN)
	if !ok {
		return nil, notFound("the stream %q of the channel's media storage configuration does not exist (it was deleted)", cfg.StreamARN)
	}
	return st, nil
}

// apiJoinStorageSession is POST /joinStorageSession {"channelArn"}: it
// starts the channel's storage session (replacing a running one) and
// answers 200 with an empty body; the offer goes to the master over
// signaling.
func (s *Server) apiJoinStorageSession(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		ChannelArn string `json:"channelArn"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.storageFor(in.ChannelArn)
	if err != nil {
		return nil, err
	}
	if err := s.media.join(in.ChannelArn, st); err != nil {
		return nil, err
	}
	s.log.Debug("localkvs: storage session joined", "channel", in.ChannelArn, "stream", st.Name)
	return emptyBody{}, nil
}

// apiJoinStorageSessionAsViewer is POST /joinStorageSessionAsViewer
// {"channelArn", "clientId"}: the viewer clientId joins the channel's
// storage session (which its
// master started with JoinStorageSession); its offer then goes to the media
// server, which forwards it the master's media (mediaviewers.go). 200 with
// an empty body.
func (s *Server) apiJoinStorageSessionAsViewer(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		ChannelArn string `json:"channelArn"`
		ClientId   string `json:"clientId"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validClientID("clientId", in.ClientId); err != nil {
		return nil, err
	}
	if _, err := s.storageFor(in.ChannelArn); err != nil {
		return nil, err
	}
	if err := s.media.joinViewer(in.ChannelArn, in.ClientId); err != nil {
		return nil, err
	}
	s.log.Debug("localkvs: storage session joined by a viewer", "channel", in.ChannelArn, "clientId", in.ClientId)
	return emptyBody{}, nil
}

// emptyBody is an answer with an empty body (not "{}").
type emptyBody struct{}
