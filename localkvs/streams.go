package localkvs

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
)

// The stream operations of the kinesisvideo control plane (docs/protocol.md,
// "Streams and storage"): CreateStream, DescribeStream, ListStreams,
// UpdateStream, UpdateDataRetention, DeleteStream, TagStream, UntagStream,
// ListTagsForStream, GetDataEndpoint and DescribeMappedResourceConfiguration.

// Error codes of the stream operations.
const (
	codeAccountStreamLimit = "AccountStreamLimitExceededException"
	codeNoDataRetention    = "NoDataRetentionException"
)

// maxStreams is the number of streams one account may have in the region.
const maxStreams = 10000

// maxRetentionHours is the longest DataRetentionInHours KVS accepts (10 years).
const maxRetentionHours = 87600

var (
	deviceNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
	mediaTypeRE  = regexp.MustCompile(`^[\w\-\.\+]+/[\w\-\.\+]+(,[\w\-\.\+]+/[\w\-\.\+]+)*$`)
)

func (s *Server) streamHandlers() map[string]apiHandler {
	return map[string]apiHandler{
		"/createstream":                        s.apiCreateStream,
		"/describestream":                      s.apiDescribeStream,
		"/liststreams":                         s.apiListStreams,
		"/updatestream":                        s.apiUpdateStream,
		"/updatedataretention":                 s.apiUpdateRetention,
		"/deletestream":                        s.apiDeleteStream,
		"/tagstream":                           s.apiTagStream,
		"/untagstream":                         s.apiUntagStream,
		"/listtagsforstream":                   s.apiListTagsForStream,
		"/getdataendpoint":                     s.apiDataEndpoint,
		"/describemappedresourceconfiguration": s.apiMappedResources,
		"/updatemediastorageconfiguration":     s.apiUpdateMediaStorage,
		"/describemediastorageconfiguration":   s.apiDescribeMediaStorage,
		"/joinstoragesession":                  s.apiJoinStorageSession,
		"/joinstoragesessionasviewer":          s.apiJoinStorageSessionAsViewer,
		"/listfragments":                       s.apiListFragments,
		"/getmediaforfragmentlist":             nil, // streamed: see serveMedia
		"/getmedia":                            nil, // streamed: see serveMedia
	}
}

type streamInfoJSON struct {
	CreationTime         json.Number `json:"CreationTime"`
	DataRetentionInHours int         `json:"DataRetentionInHours"`
	DeviceName           string      `json:"DeviceName,omitempty"`
	KmsKeyId             string      `json:"KmsKeyId"`
	MediaType            string      `json:"MediaType,omitempty"`
	Status               string      `json:"Status"`
	StreamARN            string      `json:"StreamARN"`
	StreamName           string      `json:"StreamName"`
	Version              string      `json:"Version"`
}

func (s *Server) streamInfo(r *streamRec) streamInfoJSON {
	kms := r.KMSKeyID
	if kms == "" {
		kms = "arn:aws:kms:" + s.cfg.Region + ":" + AccountID + ":alias/aws/kinesisvideo"
	}
	return streamInfoJSON{
		CreationTime:         json.Number(strconv.FormatFloat(float64(r.Created)/1000, 'f', 3, 64)),
		DataRetentionInHours: r.Retention,
		DeviceName:           r.Device,
		KmsKeyId:             kms,
		MediaType:            r.MediaType,
		Status:               r.Status,
		StreamARN:            r.ARN,
		StreamName:           r.Name,
		Version:              r.Version,
	}
}

func validDevice(device, mediaType string) error {
	if device != "" && !deviceNameRE.MatchString(device) {
		return invalidArg("DeviceName %q: want 1 to 128 of [a-zA-Z0-9_.-]", device)
	}
	if mediaType != "" && (len(mediaType) > 128 || !mediaTypeRE.MatchString(mediaType)) {
		return invalidArg("MediaType %q: want a media type such as video/h264 (a comma-separated list of them)", mediaType)
	}
	return nil
}

func (s *Server) apiCreateStream(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		StreamName           string
		DeviceName           string
		MediaType            string
		KmsKeyId             string
		DataRetentionInHours *int
		Tags                 map[string]string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validName("StreamName", in.StreamName); err != nil {
		return nil, err
	}
	if err := validDevice(in.DeviceName, in.MediaType); err != nil {
		return nil, err
	}
	if len(in.KmsKeyId) > 2048 {
		return nil, invalidArg("KmsKeyId is longer than 2048 characters")
	}
	retention := 0
	if in.DataRetentionInHours != nil {
		retention = *in.DataRetentionInHours
		if retention < 0 || retention > maxRetentionHours {
			return nil, invalidArg("DataRetentionInHours %d must be between 0 and %d", retention, maxRetentionHours)
		}
	}
	tags := tagList(in.Tags)
	if err := validTags(tags); err != nil {
		return nil, err
	}
	r := &streamRec{Name: in.StreamName, Device: in.DeviceName, MediaType: in.MediaType, KMSKeyID: in.KmsKeyId,
		Retention: retention, Tags: map[string]string{}}
	if err := addTags(r.Tags, tags); err != nil {
		return nil, err
	}
	r, err := s.store.createStream(s.cfg.Region, r, maxStreams)
	if err != nil {
		return nil, err
	}
	s.log.Debug("localkvs: stream created", "name", r.Name, "arn", r.ARN, "retentionHours", r.Retention)
	return map[string]string{"StreamARN": r.ARN}, nil
}

// lookupStream finds a stream by ARN (when set) or name; when both are
// given they must agree.
func (s *Server) lookupStream(name, arn string) (*streamRec, error) {
	r, err := find(streamResource, name, arn, s.store.getStream)
	if err != nil {
		return nil, err
	}
	if arn != "" && name != "" && name != r.Name {
		return nil, invalidArg("StreamName %q does not match the stream of StreamARN %q", name, arn)
	}
	return r, nil
}

func (s *Server) apiDescribeStream(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct{ StreamName, StreamARN string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r, err := s.lookupStream(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	return map[string]any{"StreamInfo": s.streamInfo(r)}, nil
}

func (s *Server) apiListStreams(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		MaxResults          *int
		NextToken           *string
		StreamNameCondition *nameCondition
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	p, err := listStreamsOp.parse(in.MaxResults, in.NextToken, in.StreamNameCondition)
	if err != nil {
		return nil, err
	}
	list, more := s.store.listStreams(p.prefix, p.after, p.max)
	return listAnswer("StreamInfoList", list, more, s.streamInfo, func(r *streamRec) string { return r.Name }), nil
}

// streamVersionMismatch is the VersionMismatchException of a stream.
func streamVersionMismatch(version string) *apiError {
	return newAPIError(http.StatusBadRequest, codeVersionMismatch, ErrVersionMismatch,
		"CurrentVersion %q is not the stream's current version", version)
}

// updateStreamAt applies change to the stream arn if its version is
// still version, and gives it a new version then (UpdateStream,
// UpdateDataRetention). It answers the operation's empty answer.
func (s *Server) updateStreamAt(arn, version string, change func(r *streamRec) error) (any, error) {
	return emptyAnswer(s.store.updateStream(arn, func(r *streamRec) error {
		if r.Version != version {
			return streamVersionMismatch(version)
		}
		if err := change(r); err != nil {
			return err
		}
		r.Version = newVersion()
		return nil
	}))
}

func (s *Server) apiUpdateStream(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN, CurrentVersion string
		DeviceName, MediaType                 *string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.CurrentVersion == "" {
		return nil, invalidArg("CurrentVersion is required")
	}
	var dev, mt string
	if in.DeviceName != nil {
		dev = *in.DeviceName
	}
	if in.MediaType != nil {
		mt = *in.MediaType
	}
	if err := validDevice(dev, mt); err != nil {
		return nil, err
	}
	r, err := s.lookupStream(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	return s.updateStreamAt(r.ARN, in.CurrentVersion, func(r *streamRec) error {
		if in.DeviceName != nil {
			r.Device = dev
		}
		if in.MediaType != nil {
			r.MediaType = mt
		}
		return nil
	})
}

func (s *Server) apiUpdateRetention(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN, CurrentVersion, Operation string
		DataRetentionChangeInHours                       *int
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.CurrentVersion == "" {
		return nil, invalidArg("CurrentVersion is required")
	}
	sign := 0
	switch in.Operation {
	case "INCREASE_DATA_RETENTION":
		sign = 1
	case "DECREASE_DATA_RETENTION":
		sign = -1
	default:
		return nil, invalidArg("Operation %q must be INCREASE_DATA_RETENTION or DECREASE_DATA_RETENTION", in.Operation)
	}
	if in.DataRetentionChangeInHours == nil || *in.DataRetentionChangeInHours < 1 {
		return nil, invalidArg("DataRetentionChangeInHours is required and must be at least 1")
	}
	change := *in.DataRetentionChangeInHours
	r, err := s.lookupStream(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	return s.updateStreamAt(r.ARN, in.CurrentVersion, func(r *streamRec) error {
		n := r.Retention + sign*change
		if n < 0 || n > maxRetentionHours {
			return invalidArg("DataRetentionInHours would become %d; it must stay between 0 and %d", n, maxRetentionHours)
		}
		r.Retention = n
		return nil
	})
}

func (s *Server) apiDeleteStream(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct{ StreamARN, CurrentVersion string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validARN("StreamARN", in.StreamARN); err != nil {
		return nil, err
	}
	r, err := s.store.deleteStream(in.StreamARN, in.CurrentVersion)
	if err != nil {
		return nil, err
	}
	for _, ch := range s.store.channelsOfStream(r.ARN) {
		s.media.stop(ch, "the stream "+r.Name+" was deleted")
	}
	if err := s.media.store.dropStream(r.ARN); err != nil {
		s.log.Warn("localkvs: removing the fragments of a deleted stream", "stream", r.Name, "err", err)
	}
	s.log.Debug("localkvs: stream deleted", "name", r.Name, "arn", r.ARN)
	return struct{}{}, nil
}

func (s *Server) apiTagStream(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN string
		Tags                  map[string]string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	tags := tagList(in.Tags)
	if err := checkTagsToAdd(tags); err != nil {
		return nil, err
	}
	r, err := s.lookupStream(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	return emptyAnswer(s.store.updateStream(r.ARN, func(r *streamRec) error {
		return addTags(r.Tags, tags)
	}))
}

func (s *Server) apiUntagStream(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN string
		TagKeyList            []string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkTagKeys(in.TagKeyList); err != nil {
		return nil, err
	}
	r, err := s.lookupStream(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	return emptyAnswer(s.store.updateStream(r.ARN, func(r *streamRec) error {
		removeTags(r.Tags, in.TagKeyList)
		return nil
	}))
}

func (s *Server) apiListTagsForStream(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct{ StreamName, StreamARN, NextToken string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r, err := s.lookupStream(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Tags": r.Tags}, nil
}

// dataAPIs are the APIName values of GetDataEndpoint. This process serves
// GET_MEDIA, LIST_FRAGMENTS and GET_MEDIA_FOR_FRAGMENT_LIST; for the others
// it answers its address too, where they are unknown operations.
var dataAPIs = map[string]bool{
	"PUT_MEDIA": true, "GET_MEDIA": true, "LIST_FRAGMENTS": true, "GET_MEDIA_FOR_FRAGMENT_LIST": true,
	"GET_HLS_STREAMING_SESSION_URL": true, "GET_DASH_STREAMING_SESSION_URL": true, "GET_CLIP": true, "GET_IMAGES": true,
}

func (s *Server) apiDataEndpoint(_ context.Context, r *http.Request, body []byte) (any, error) {
	var in struct{ StreamName, StreamARN, APIName string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if !dataAPIs[in.APIName] {
		return nil, invalidArg("APIName %q is not one of PUT_MEDIA, GET_MEDIA, LIST_FRAGMENTS, GET_MEDIA_FOR_FRAGMENT_LIST, "+
			"GET_HLS_STREAMING_SESSION_URL, GET_DASH_STREAMING_SESSION_URL, GET_CLIP, GET_IMAGES", in.APIName)
	}
	if _, err := s.lookupStream(in.StreamName, in.StreamARN); err != nil {
		return nil, err
	}
	return map[string]string{"DataEndpoint": s.endpointFor(r)}, nil
}

// endpointFor is the http(s) endpoint of this process as the client
// reached it.
func (s *Server) endpointFor(r *http.Request) string {
	host := r.Host
	if host == "" {
		host = s.hostPort()
	}
	scheme, _ := s.schemes()
	return scheme + host
}

// mappedResourceType is the Type of a DescribeMappedResourceConfiguration
// item: the real service does not document its values; this one names a
// signaling channel whose media storage configuration uses the stream.
const mappedResourceType = "SIGNALING_CHANNEL"

func (s *Server) apiMappedResources(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN string
		MaxResults            *int
		NextToken             string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 1) {
		return nil, invalidArg("MaxResults %d must be 1", *in.MaxResults)
	}
	r, err := s.lookupStream(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	type item struct{ Type, ARN string }
	list := []item{}
	for _, ch := range s.store.channelsOfStream(r.ARN) {
		if s.store.mediaStorage(ch).Status == storageEnabled {
			list = append(list, item{mappedResourceType, ch})
		}
	}
	return map[string]any{"MappedResourceConfigurationList": list}, nil
}
