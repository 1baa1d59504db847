package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/internal/awsjson"
)

// Errors returned by this package; test for them with errors.Is. An
// answer of the service is an *APIError, which matches these too.
var (
	// ErrInvalidArgument reports bad input: a missing stream, a bad
	// selector, no fragment numbers.
	ErrInvalidArgument = errors.New("archive: invalid argument")
	// ErrNotFound reports a stream or fragment that does not exist
	// (ResourceNotFoundException).
	ErrNotFound = errors.New("archive: not found")
	// ErrAccessDenied reports a call refused for its credentials.
	ErrAccessDenied = errors.New("archive: access denied")
	// ErrDataEndpoint wraps a failed GetDataEndpoint call.
	ErrDataEndpoint = errors.New("archive: GetDataEndpoint failed")
	// ErrCall wraps any other failure of ListFragments,
	// GetMediaForFragmentList or GetMedia.
	ErrCall = errors.New("archive: call failed")
)

// APIError is an error answer of a data-plane call: the operation, the
// HTTP status, the code of x-amzn-ErrorType and the message. It never
// holds a signature or a credential.
type APIError struct {
	Operation  string // "ListFragments", "GetMediaForFragmentList", "GetMedia"
	StatusCode int    // HTTP status
	Code       string // e.g. "ResourceNotFoundException"; "" when absent
	Message    string // the message of the body, cut to 256 bytes
}

// Error implements error.
func (e *APIError) Error() string {
	return awsjson.ErrorText("archive", e.Operation, e.StatusCode, e.Code, e.Message)
}

// Unwrap returns ErrCall and, by code or status, ErrNotFound,
// ErrAccessDenied or ErrInvalidArgument.
func (e *APIError) Unwrap() []error {
	errs := []error{ErrCall}
	switch {
	case e.Code == "ResourceNotFoundException" || e.StatusCode == http.StatusNotFound:
		errs = append(errs, ErrNotFound)
	case e.Code == "NotAuthorizedException" || e.Code == "AccessDeniedException" || e.StatusCode == 401 || e.StatusCode == 403:
		errs = append(errs, ErrAccessDenied)
	case e.Code == "InvalidArgumentException":
		errs = append(errs, ErrInvalidArgument)
	}
	return errs
}

// Options are the settings of a Client; the zero value is valid.
type Options struct {
	// HTTPClient sends the data-plane calls; nil means channel.HTTPClient
	// of the aws.Config (its custom CA bundle included). It should have no
	// Timeout, which would cut a GetMedia stream: bound calls with a
	// context.
	HTTPClient *http.Client
	// APITimeout bounds GetDataEndpoint and ListFragments; 0 means 10 s.
	APITimeout time.Duration
}

// Client reads the recorded media of Kinesis video streams: ListFragments
// and GetMediaForFragmentList (kinesisvideoarchivedmedia) and GetMedia
// (kinesisvideomedia), on the endpoint GetDataEndpoint returns for each
// (cached per stream and API). It is safe for concurrent use.
type Client struct {
	kv   *kinesisvideo.Client
	data awsjson.Client // the signed data-plane calls
	opts Options

	mu        sync.Mutex
	endpoints map[string]string // stream|API -> endpoint
}

// New makes a Client for awsCfg (region, credentials and, for a local
// service, the endpoint override: AWS_ENDPOINT_URL or BaseEndpoint).
func New(awsCfg aws.Config, opts Options) (*Client, error) {
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("%w: aws.Config has no Region", ErrInvalidArgument)
	}
	if awsCfg.Credentials == nil {
		return nil, fmt.Errorf("%w: aws.Config has no Credentials", ErrInvalidArgument)
	}
	if opts.APITimeout < 0 {
		return nil, fmt.Errorf("%w: Options.APITimeout must not be negative", ErrInvalidArgument)
	}
	if opts.APITimeout == 0 {
		opts.APITimeout = 10 * time.Second
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = channel.HTTPClient(awsCfg)
	}
	return &Client{
		kv:        kinesisvideo.NewFromConfig(awsCfg),
		data:      awsjson.Client{HTTP: hc, Signer: v4.NewSigner(), Config: awsCfg, Service: "kinesisvideo"},
		opts:      opts,
		endpoints: map[string]string{},
	}, nil
}

// ref is the StreamName or StreamARN member of a request.
func ref(stream string) map[string]any {
	if strings.HasPrefix(stream, "arn:") {
		return map[string]any{"StreamARN": stream}
	}
	return map[string]any{"StreamName": stream}
}

// endpoint returns the data endpoint of stream for api, from the cache.
func (c *Client) endpoint(ctx context.Context, stream string, api types.APIName) (string, error) {
	key := stream + "|" + string(api)
	c.mu.Lock()
	ep := c.endpoints[key]
	c.mu.Unlock()
	if ep != "" {
		return ep, nil
	}
	in := &kinesisvideo.GetDataEndpointInput{APIName: api}
	in.StreamName, in.StreamARN = awsjson.NameOrARN(stream)
	ctx, cancel := context.WithTimeout(ctx, c.opts.APITimeout)
	defer cancel()
	out, err := c.kv.GetDataEndpoint(ctx, in)
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return "", fmt.Errorf("%w: %w: stream %q: %w", ErrDataEndpoint, ErrNotFound, stream, err)
		}
		return "", fmt.Errorf("%w: stream %q: %w", ErrDataEndpoint, stream, err)
	}
	ep = aws.ToString(out.DataEndpoint)
	if ep == "" {
		return "", fmt.Errorf("%w: stream %q: the answer has no DataEndpoint", ErrDataEndpoint, stream)
	}
	c.mu.Lock()
	c.endpoints[key] = ep
	c.mu.Unlock()
	return ep, nil
}

// post sends a signed data-plane call and returns the answer of a 2xx
// status, whose body the caller closes.
func (c *Client) post(ctx context.Context, op, stream string, api types.APIName, path string, body map[string]any) (*http.Response, error) {
	if stream == "" {
		return nil, fmt.Errorf("%w: a stream name or ARN is required", ErrInvalidArgument)
	}
	ep, err := c.endpoint(ctx, stream, api)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCall, op, err)
	}
	resp, err := c.data.Post(ctx, ep, path, payload, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCall, op, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		// The code is the header's only (a nil body), as it always was here.
		return nil, &APIError{Operation: op, StatusCode: resp.StatusCode, Code: awsjson.ErrorCode(resp.Header, nil), Message: awsjson.ErrorMessage(data)}
	}
	return resp, nil
}

// Fragment is one stored fragment of a stream.
type Fragment struct {
	// Number is the fragment number, a long decimal string.
	Number string
	// Size is the size of the fragment's data, in bytes.
	Size int64
	// Producer is the producer timestamp of its first frame.
	Producer time.Time
	// Server is when the service received its first frame.
	Server time.Time
	// Length is its duration.
	Length time.Duration
}

// TimestampType selects the timestamps a Selector compares.
type TimestampType string

// The timestamp types of a Selector.
const (
	ProducerTimestamp TimestampType = "PRODUCER_TIMESTAMP"
	ServerTimestamp   TimestampType = "SERVER_TIMESTAMP"
)

// Selector picks the fragments whose producer or server timestamp is in
// [Start, End].
type Selector struct {
	Type       TimestampType
	Start, End time.Time
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// ListFragmentsPage is one ListFragments call: at most max fragments
// (1..1000; 0 means the service's default) after the page of next (""
// for the first), and the token of the next page ("" after the last). A nil
// sel lists every fragment.
func (c *Client) ListFragmentsPage(ctx context.Context, stream string, sel *Selector, max int, next string) ([]Fragment, string, error) {
	body := ref(stream)
	if max < 0 || max > 1000 {
		return nil, "", fmt.Errorf("%w: max %d must be between 1 and 1000 (or 0)", ErrInvalidArgument, max)
	}
	if max > 0 {
		body["MaxResults"] = max
	}
	if next != "" {
		body["NextToken"] = next
	}
	if sel != nil {
		if sel.Type != ProducerTimestamp && sel.Type != ServerTimestamp {
			return nil, "", fmt.Errorf("%w: Selector.Type %q must be ProducerTimestamp or ServerTimestamp", ErrInvalidArgument, sel.Type)
		}
		body["FragmentSelector"] = map[string]any{
			"FragmentSelectorType": sel.Type,
			"TimestampRange":       map[string]any{"StartTimestamp": epoch(sel.Start), "EndTimestamp": epoch(sel.End)},
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.APITimeout)
	defer cancel()
	resp, err := c.post(ctx, "ListFragments", stream, types.APINameListFragments, "/listFragments", body)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var out struct {
		Fragments []struct {
			FragmentNumber               string
			FragmentSizeInBytes          int64
			ProducerTimestamp            float64
			ServerTimestamp              float64
			FragmentLengthInMilliseconds int64
		}
		NextToken string
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out); err != nil {
		return nil, "", fmt.Errorf("%w: ListFragments: decoding the answer: %w", ErrCall, err)
	}
	list := make([]Fragment, len(out.Fragments))
	for i, f := range out.Fragments {
		list[i] = Fragment{
			Number: f.FragmentNumber, Size: f.FragmentSizeInBytes,
			Producer: fromEpoch(f.ProducerTimestamp), Server: fromEpoch(f.ServerTimestamp),
			Length: time.Duration(f.FragmentLengthInMilliseconds) * time.Millisecond,
		}
	}
	return list, out.NextToken, nil
}

func fromEpoch(s float64) time.Time {
	return time.UnixMilli(int64(math.Round(s * 1000)))
}

// ListFragments lists every fragment of stream that sel picks (all with a
// nil sel), following the pages, sorted by producer timestamp (the service
// does not sort them).
func (c *Client) ListFragments(ctx context.Context, stream string, sel *Selector) ([]Fragment, error) {
	var all []Fragment
	next := ""
	for {
		page, tok, err := c.ListFragmentsPage(ctx, stream, sel, 1000, next)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if tok == "" {
			break
		}
		next = tok
	}
	sort.SliceStable(all, func(i, j int) bool {
		if !all[i].Producer.Equal(all[j].Producer) {
			return all[i].Producer.Before(all[j].Producer)
		}
		return numberLess(all[i].Number, all[j].Number)
	})
	return all, nil
}

// numberLess compares two fragment numbers (decimal strings) numerically.
func numberLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// GetMediaForFragmentList returns the media of the given fragments (1 to
// 1000 numbers, as ListFragments gives them): one MKV chunk per fragment,
// in the order given, each with the tags AWS_KINESISVIDEO_FRAGMENT_NUMBER,
// AWS_KINESISVIDEO_SERVER_SIDE_TIMESTAMP and
// AWS_KINESISVIDEO_PRODUCER_SIDE_TIMESTAMP. The caller closes it.
func (c *Client) GetMediaForFragmentList(ctx context.Context, stream string, numbers []string) (io.ReadCloser, error) {
	if len(numbers) == 0 || len(numbers) > 1000 {
		return nil, fmt.Errorf("%w: 1 to 1000 fragment numbers are needed, got %d", ErrInvalidArgument, len(numbers))
	}
	body := ref(stream)
	body["Fragments"] = numbers
	resp, err := c.post(ctx, "GetMediaForFragmentList", stream, types.APINameGetMediaForFragmentList, "/getMediaForFragmentList", body)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// StartType is where GetMedia starts.
type StartType string

// The start types of GetMedia.
const (
	// StartNow starts with the next fragment stored.
	StartNow StartType = "NOW"
	// StartEarliest starts with the oldest fragment kept.
	StartEarliest StartType = "EARLIEST"
	// StartFragmentNumber starts with the fragment Start.FragmentNumber.
	StartFragmentNumber StartType = "FRAGMENT_NUMBER"
	// StartServerTimestamp and StartProducerTimestamp start with the
	// fragment holding Start.Timestamp.
	StartServerTimestamp   StartType = "SERVER_TIMESTAMP"
	StartProducerTimestamp StartType = "PRODUCER_TIMESTAMP"
	// StartContinuationToken resumes after the chunk whose
	// AWS_KINESISVIDEO_CONTINUATION_TOKEN tag is Start.ContinuationToken.
	StartContinuationToken StartType = "CONTINUATION_TOKEN"
)

// Start is the start selector of GetMedia.
type Start struct {
	Type              StartType
	FragmentNumber    string
	Timestamp         time.Time
	ContinuationToken string
}

// GetMedia returns the stream's media from start on, live: one MKV chunk
// per fragment, with the tags AWS_KINESISVIDEO_FRAGMENT_NUMBER,
// AWS_KINESISVIDEO_SERVER_TIMESTAMP and AWS_KINESISVIDEO_PRODUCER_TIMESTAMP
// before its Cluster and AWS_KINESISVIDEO_MILLIS_BEHIND_NOW and
// AWS_KINESISVIDEO_CONTINUATION_TOKEN after it. Past the stored fragments
// the one being recorded comes frame by frame, as it is received. It goes
// on until ctx is done or the reader is closed.
func (c *Client) GetMedia(ctx context.Context, stream string, start Start) (io.ReadCloser, error) {
	sel := map[string]any{"StartSelectorType": start.Type}
	switch start.Type {
	case StartNow, StartEarliest:
	case StartFragmentNumber:
		sel["AfterFragmentNumber"] = start.FragmentNumber
	case StartServerTimestamp, StartProducerTimestamp:
		sel["StartTimestamp"] = epoch(start.Timestamp)
	case StartContinuationToken:
		sel["ContinuationToken"] = start.ContinuationToken
	default:
		return nil, fmt.Errorf("%w: Start.Type %q is not a GetMedia start type", ErrInvalidArgument, start.Type)
	}
	body := ref(stream)
	body["StartSelector"] = sel
	resp, err := c.post(ctx, "GetMedia", stream, types.APINameGetMedia, "/getMedia", body)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
