package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
)

// Playback of the recordings (kinesisvideoarchivedmedia): HLS and DASH
// session URLs, which a player opens with no credentials (the session
// token in the URL is the credential), and GetClip, one MP4 of a time
// range. See docs/protocol.md, "Playback".

// PlaybackMode is what a streaming session plays.
type PlaybackMode string

// The playback modes.
const (
	// Live plays the newest fragments and follows the stream as it is
	// recorded.
	Live PlaybackMode = "LIVE"
	// LiveReplay plays from Selector.Start on and follows the stream (up to
	// Selector.End when it is set).
	LiveReplay PlaybackMode = "LIVE_REPLAY"
	// OnDemand plays the fragments of [Selector.Start, Selector.End] and
	// ends.
	OnDemand PlaybackMode = "ON_DEMAND"
)

// ContainerFormat is the container of an HLS session's media segments.
type ContainerFormat string

// The container formats of HLS (DASH is always fragmented MP4).
const (
	FragmentedMP4 ContainerFormat = "FRAGMENTED_MP4"
	MPEGTS        ContainerFormat = "MPEG_TS"
)

// SessionOptions are the settings of an HLS or DASH streaming session; the
// zero value is a live session with the service's defaults.
type SessionOptions struct {
	// Mode is Live ("" too), LiveReplay or OnDemand.
	Mode PlaybackMode
	// Selector is the time range: required for OnDemand (Start and End)
	// and LiveReplay (Start; End optional); it must be nil for Live.
	Selector *Selector
	// Container is the HLS container: FragmentedMP4 ("" too) or MPEGTS.
	// DASH sessions ignore it.
	Container ContainerFormat
	// Expires is the session's lifetime, 5 minutes to 12 hours; 0 means
	// the service's default (5 minutes).
	Expires time.Duration
	// MaxFragments is MaxMediaPlaylistFragmentResults (HLS) or
	// MaxManifestFragmentResults (DASH): 1 to 5000; 0 means the service's
	// default (5 live, 1000 on demand).
	MaxFragments int
	// Discontinuity is the HLS DiscontinuityMode: "ALWAYS", "NEVER" or
	// "ON_DISCONTINUITY"; "" means the service's default.
	Discontinuity string
}

// sessionBody builds the request of GetHLSStreamingSessionURL or
// GetDASHStreamingSessionURL.
func sessionBody(stream, selectorKey, maxKey string, o SessionOptions) (map[string]any, error) {
	body := ref(stream)
	mode := o.Mode
	if mode == "" {
		mode = Live
	}
	switch mode {
	case Live:
		if o.Selector != nil {
			return nil, fmt.Errorf("%w: a Live session takes no Selector", ErrInvalidArgument)
		}
	case LiveReplay, OnDemand:
		if o.Selector == nil || o.Selector.Start.IsZero() {
			return nil, fmt.Errorf("%w: a %s session needs Selector.Start", ErrInvalidArgument, mode)
		}
		if mode == OnDemand && o.Selector.End.IsZero() {
			return nil, fmt.Errorf("%w: an OnDemand session needs Selector.End", ErrInvalidArgument)
		}
	default:
		return nil, fmt.Errorf("%w: Mode %q: want Live, LiveReplay or OnDemand", ErrInvalidArgument, mode)
	}
	body["PlaybackMode"] = mode
	if s := o.Selector; s != nil {
		typ := s.Type
		if typ == "" {
			typ = ProducerTimestamp
		}
		rng := map[string]any{"StartTimestamp": epoch(s.Start)}
		if !s.End.IsZero() {
			rng["EndTimestamp"] = epoch(s.End)
		}
		body[selectorKey] = map[string]any{"FragmentSelectorType": typ, "TimestampRange": rng}
	}
	if o.Expires != 0 {
		if o.Expires < 5*time.Minute || o.Expires > 12*time.Hour {
			return nil, fmt.Errorf("%w: Expires %v must be between 5m and 12h", ErrInvalidArgument, o.Expires)
		}
		body["Expires"] = int(o.Expires / time.Second)
	}
	if o.MaxFragments != 0 {
		if o.MaxFragments < 1 || o.MaxFragments > 5000 {
			return nil, fmt.Errorf("%w: MaxFragments %d must be between 1 and 5000", ErrInvalidArgument, o.MaxFragments)
		}
		body[maxKey] = o.MaxFragments
	}
	return body, nil
}

func (c *Client) sessionURL(ctx context.Context, op, path, field string, api types.APIName, stream string, body map[string]any) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.APITimeout)
	defer cancel()
	resp, err := c.post(ctx, op, stream, api, path, body)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", fmt.Errorf("%w: %s: decoding the answer: %w", ErrCall, op, err)
	}
	if out[field] == "" {
		return "", fmt.Errorf("%w: %s: the answer has no %s", ErrCall, op, field)
	}
	return out[field], nil
}

// HLSStreamingSessionURL calls GetHLSStreamingSessionURL and returns the
// session's master playlist URL, which any HLS player opens as it is (no
// signature, no credentials: the URL holds the session token, so treat it
// as a secret until it expires).
func (c *Client) HLSStreamingSessionURL(ctx context.Context, stream string, o SessionOptions) (string, error) {
	body, err := sessionBody(stream, "HLSFragmentSelector", "MaxMediaPlaylistFragmentResults", o)
	if err != nil {
		return "", err
	}
	switch o.Container {
	case "":
	case FragmentedMP4, MPEGTS:
		body["ContainerFormat"] = o.Container
	default:
		return "", fmt.Errorf("%w: Container %q: want FragmentedMP4 or MPEGTS", ErrInvalidArgument, o.Container)
	}
	switch o.Discontinuity {
	case "":
	case "ALWAYS", "NEVER", "ON_DISCONTINUITY":
		body["DiscontinuityMode"] = o.Discontinuity
	default:
		return "", fmt.Errorf("%w: Discontinuity %q: want ALWAYS, NEVER or ON_DISCONTINUITY", ErrInvalidArgument, o.Discontinuity)
	}
	return c.sessionURL(ctx, "GetHLSStreamingSessionURL", "/getHLSStreamingSessionURL", "HLSStreamingSessionURL",
		types.APINameGetHlsStreamingSessionUrl, stream, body)
}

// DASHStreamingSessionURL calls GetDASHStreamingSessionURL and returns the
// session's MPD URL (fragmented MP4 segments), holding the session token
// as HLSStreamingSessionURL does.
func (c *Client) DASHStreamingSessionURL(ctx context.Context, stream string, o SessionOptions) (string, error) {
	if o.Container != "" && o.Container != FragmentedMP4 {
		return "", fmt.Errorf("%w: DASH sessions are fragmented MP4 only", ErrInvalidArgument)
	}
	body, err := sessionBody(stream, "DASHFragmentSelector", "MaxManifestFragmentResults", o)
	if err != nil {
		return "", err
	}
	return c.sessionURL(ctx, "GetDASHStreamingSessionURL", "/getDASHStreamingSessionURL", "DASHStreamingSessionURL",
		types.APINameGetDashStreamingSessionUrl, stream, body)
}

// GetClip returns one MP4 file of the fragments of sel's range (Start and
// End required; Type ProducerTimestamp when empty). The caller closes it.
func (c *Client) GetClip(ctx context.Context, stream string, sel Selector) (io.ReadCloser, error) {
	if sel.Start.IsZero() || sel.End.IsZero() {
		return nil, fmt.Errorf("%w: GetClip needs Selector.Start and Selector.End", ErrInvalidArgument)
	}
	if sel.End.Before(sel.Start) {
		return nil, fmt.Errorf("%w: Selector.End is before Selector.Start", ErrInvalidArgument)
	}
	typ := sel.Type
	if typ == "" {
		typ = ProducerTimestamp
	}
	body := ref(stream)
	body["ClipFragmentSelector"] = map[string]any{
		"FragmentSelectorType": typ,
		"TimestampRange":       map[string]any{"StartTimestamp": epoch(sel.Start), "EndTimestamp": epoch(sel.End)},
	}
	resp, err := c.post(ctx, "GetClip", stream, types.APINameGetClip, "/getClip", body)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
