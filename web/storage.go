package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/channel"
)

// The page's storage controls, as the official page's "WebRTC Ingestion
// and Storage" section: Create Stream, Update and Describe media storage
// configuration, List storage channels and JoinStorageSession(AsViewer),
// each made by the server with its credentials.
//
//	POST /api/streams           {"streamName", "retentionHours"} -> {"streamARN", "created"}
//	POST /api/streams/list      {} -> {"streams": [{"streamName", "streamARN", "retentionHours", "status"}]}
//	POST /api/storage/describe  {"channelName"} -> {"status", "streamARN"}
//	POST /api/storage/update    {"channelName", "streamName"} -> {"status", "streamARN"}
//	                            (an empty streamName disables storage)
//	POST /api/storage/channels  {} -> {"channels": [{"channelName", "channelARN", "streamARN"}]}
//	POST /api/storage/join      {"channelName", "role", "clientId"} -> {"joined": true}

// maxStorageChannels bounds the channels List storage channels describes.
const maxStorageChannels = 200

func (s *Server) routeStorage() {
	s.mux.HandleFunc("POST /api/streams", s.handleCreateStream)
	s.mux.HandleFunc("POST /api/streams/list", s.handleListStreams)
	s.mux.HandleFunc("POST /api/storage/describe", s.handleDescribeStorage)
	s.mux.HandleFunc("POST /api/storage/update", s.handleUpdateStorage)
	s.mux.HandleFunc("POST /api/storage/channels", s.handleStorageChannels)
	s.mux.HandleFunc("POST /api/storage/join", s.handleJoinStorage)
}

// kv returns the variant's kinesisvideo client.
func (v *variant) kv() *kinesisvideo.Client {
	v.kvOnce.Do(func() { v.kvClient = kinesisvideo.NewFromConfig(v.aws) })
	return v.kvClient
}

type storageRequest struct {
	ChannelName    string `json:"channelName"`
	StreamName     string `json:"streamName"`
	RetentionHours int    `json:"retentionHours"`
	Role           string `json:"role"`
	ClientID       string `json:"clientId"`
	endpointChoice
}

// readStorage reads a storage request and its endpoint variant, then
// checks the request with check (nil: no check), answering the error
// itself (ok false).
func (s *Server) readStorage(w http.ResponseWriter, r *http.Request, check func(*storageRequest) error) (storageRequest, *variant, bool) {
	var req storageRequest
	var after func() error
	if check != nil {
		after = func() error { return check(&req) }
	}
	v, ok := s.readRequest(w, r, &req, nil, after)
	return req, v, ok
}

// needChannel checks the channel name of a storage request.
func needChannel(q *storageRequest) error { return validID("channelName", q.ChannelName) }

// joinRole checks the role and client id of a join request: the master
// (the default) has no client id, a viewer a valid one.
func (q *storageRequest) joinRole() (channel.Role, error) {
	switch strings.ToLower(q.Role) {
	case "master", "":
		if q.ClientID != "" {
			return "", fmt.Errorf("%w: clientId must be empty for the master", ErrInvalidRequest)
		}
		return channel.RoleMaster, nil
	case "viewer":
		if err := validID("clientId", q.ClientID); err != nil {
			return "", err
		}
		return channel.RoleViewer, nil
	}
	return "", fmt.Errorf("%w: role %q: want master or viewer", ErrInvalidRequest, q.Role)
}

// awsStatus maps an aws-sdk-go-v2 error of a kinesisvideo call to an HTTP
// status for the page.
func awsStatus(err error) int {
	var (
		nf  *types.ResourceNotFoundException
		inv *types.InvalidArgumentException
		use *types.ResourceInUseException
		nr  *types.NoDataRetentionException
		ad  *types.AccessDeniedException
		lim *types.ClientLimitExceededException
		ae  *channel.APIError
	)
	switch {
	case errors.As(err, &nf):
		return http.StatusNotFound
	case errors.As(err, &inv), errors.As(err, &use), errors.As(err, &nr):
		return http.StatusBadRequest
	case errors.As(err, &ad):
		return http.StatusForbidden
	case errors.As(err, &lim):
		return http.StatusTooManyRequests
	case errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500:
		return ae.StatusCode
	case errors.Is(err, channel.ErrNoMediaStorage):
		return http.StatusBadRequest
	}
	return statusOf(err)
}

func (s *Server) handleCreateStream(w http.ResponseWriter, r *http.Request) {
	req, v, ok := s.readStorage(w, r, func(q *storageRequest) error {
		if err := validID("streamName", q.StreamName); err != nil {
			return err
		}
		if q.RetentionHours < 0 || q.RetentionHours > 87600 {
			return fmt.Errorf("%w: retentionHours %d: want 1 to 87600 (0: no storage, which WebRTC ingestion refuses)", ErrInvalidRequest, q.RetentionHours)
		}
		return nil
	})
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	out, err := v.kv().CreateStream(ctx, &kinesisvideo.CreateStreamInput{
		StreamName: aws.String(req.StreamName), DataRetentionInHours: aws.Int32(int32(req.RetentionHours)),
	})
	var use *types.ResourceInUseException
	if errors.As(err, &use) {
		d, derr := v.kv().DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String(req.StreamName)})
		if derr == nil && d.StreamInfo != nil {
			writeJSON(w, http.StatusOK, map[string]any{"streamARN": aws.ToString(d.StreamInfo.StreamARN), "created": false})
			return
		}
	}
	if err != nil {
		s.log.Warn("web: create stream failed", "stream", req.StreamName, "err", err)
		writeError(w, awsStatus(err), fmt.Errorf("web: CreateStream %q: %w", req.StreamName, err))
		return
	}
	s.log.Info("web: stream created", "stream", req.StreamName, "retentionHours", req.RetentionHours)
	writeJSON(w, http.StatusOK, map[string]any{"streamARN": aws.ToString(out.StreamARN), "created": true})
}

type streamJSON struct {
	StreamName     string `json:"streamName"`
	StreamARN      string `json:"streamARN"`
	RetentionHours int32  `json:"retentionHours"`
	Status         string `json:"status"`
}

func (s *Server) handleListStreams(w http.ResponseWriter, r *http.Request) {
	_, v, ok := s.readStorage(w, r, nil)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	list := []streamJSON{}
	p := kinesisvideo.NewListStreamsPaginator(v.kv(), &kinesisvideo.ListStreamsInput{})
	for p.HasMorePages() && len(list) < maxStorageChannels {
		page, err := p.NextPage(ctx)
		if err != nil {
			writeError(w, awsStatus(err), fmt.Errorf("web: ListStreams: %w", err))
			return
		}
		for _, st := range page.StreamInfoList {
			list = append(list, streamJSON{
				StreamName: aws.ToString(st.StreamName), StreamARN: aws.ToString(st.StreamARN),
				RetentionHours: aws.ToInt32(st.DataRetentionInHours), Status: string(st.Status),
			})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"streams": list})
}

func storageJSON(ms channel.MediaStorage) map[string]any {
	status := "DISABLED"
	if ms.Enabled {
		status = "ENABLED"
	}
	return map[string]any{"status": status, "streamARN": ms.StreamARN}
}

func (s *Server) handleDescribeStorage(w http.ResponseWriter, r *http.Request) {
	req, v, ok := s.readStorage(w, r, needChannel)
	if !ok {
		return
	}
	ms, err := v.resolver.MediaStorage(r.Context(), req.ChannelName)
	if err != nil {
		writeError(w, awsStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, storageJSON(ms))
}

func (s *Server) handleUpdateStorage(w http.ResponseWriter, r *http.Request) {
	req, v, ok := s.readStorage(w, r, func(q *storageRequest) error {
		if err := needChannel(q); err != nil || q.StreamName == "" {
			return err
		}
		return validID("streamName", q.StreamName)
	})
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	ch, err := v.kv().DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String(req.ChannelName)})
	if err != nil {
		writeError(w, awsStatus(err), fmt.Errorf("web: DescribeSignalingChannel %q: %w", req.ChannelName, err))
		return
	}
	ms := channel.MediaStorage{}
	if req.StreamName != "" {
		st, err := v.kv().DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String(req.StreamName)})
		if err != nil {
			writeError(w, awsStatus(err), fmt.Errorf("web: DescribeStream %q: %w (Create Stream first)", req.StreamName, err))
			return
		}
		ms = channel.MediaStorage{Enabled: true, StreamARN: aws.ToString(st.StreamInfo.StreamARN)}
	}
	if err := v.resolver.SetMediaStorage(ctx, aws.ToString(ch.ChannelInfo.ChannelARN), ms); err != nil {
		writeError(w, awsStatus(err), err)
		return
	}
	s.log.Info("web: media storage updated", "channel", req.ChannelName, "stream", req.StreamName, "enabled", ms.Enabled)
	writeJSON(w, http.StatusOK, storageJSON(ms))
}

func (s *Server) handleStorageChannels(w http.ResponseWriter, r *http.Request) {
	_, v, ok := s.readStorage(w, r, nil)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	type entry struct {
		ChannelName string `json:"channelName"`
		ChannelARN  string `json:"channelARN"`
		StreamARN   string `json:"streamARN"`
	}
	out := []entry{}
	seen := 0
	p := kinesisvideo.NewListSignalingChannelsPaginator(v.kv(), &kinesisvideo.ListSignalingChannelsInput{})
	for p.HasMorePages() && seen < maxStorageChannels {
		page, err := p.NextPage(ctx)
		if err != nil {
			writeError(w, awsStatus(err), fmt.Errorf("web: ListSignalingChannels: %w", err))
			return
		}
		for _, ch := range page.ChannelInfoList {
			if seen++; seen > maxStorageChannels {
				break
			}
			arn := aws.ToString(ch.ChannelARN)
			ms, err := v.resolver.MediaStorage(ctx, arn)
			if err != nil {
				s.log.Debug("web: describe media storage", "channel", arn, "err", err)
				continue
			}
			if ms.Enabled {
				out = append(out, entry{ChannelName: aws.ToString(ch.ChannelName), ChannelARN: arn, StreamARN: ms.StreamARN})
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": out})
}

func (s *Server) handleJoinStorage(w http.ResponseWriter, r *http.Request) {
	var role channel.Role
	req, v, ok := s.readStorage(w, r, func(q *storageRequest) (err error) {
		if err = needChannel(q); err == nil {
			role, err = q.joinRole()
		}
		return err
	})
	if !ok {
		return
	}
	res, err := v.resolver.Resolve(r.Context(), req.ChannelName, role, channel.Options{ClientID: req.ClientID, FIPS: v.fips, DualStack: v.dual})
	if err != nil {
		writeError(w, awsStatus(err), err)
		return
	}
	if role == channel.RoleMaster {
		err = res.JoinStorageSession(r.Context())
	} else {
		err = res.JoinStorageSessionAsViewer(r.Context())
	}
	if err != nil {
		s.log.Warn("web: join storage session failed", "channel", req.ChannelName, "role", role, "err", err)
		writeError(w, awsStatus(err), err)
		return
	}
	s.log.Info("web: joined the storage session", "channel", req.ChannelName, "role", role)
	writeJSON(w, http.StatusOK, map[string]any{"joined": true})
}
