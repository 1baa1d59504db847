package peer

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/media"
)

// DefaultDataChannelLabel is the label of the data channel a Viewer opens,
// the one the official JavaScript SDK's test page uses.
const DefaultDataChannelLabel = "kvsDataChannel"

// Defaults of the Viewer's automatic re-offer (ViewerConfig).
const (
	// DefaultReofferBaseDelay is the first automatic re-offer's maximum
	// delay; it doubles with each re-offer in a row.
	DefaultReofferBaseDelay = 500 * time.Millisecond
	// DefaultReofferMaxDelay caps the automatic re-offer's delay.
	DefaultReofferMaxDelay = 10 * time.Second
	// DefaultReofferAnswerTimeout is how long the viewer waits for an
	// answer before it offers again.
	DefaultReofferAnswerTimeout = 20 * time.Second
)

// ViewerConfig configures a [Viewer].
type ViewerConfig struct {
	// ChannelConfig names the channel (or holds it resolved for
	// channel.RoleViewer) and the NAT traversal mode.
	ChannelConfig

	// ClientID identifies the viewer on the channel
	// ([a-zA-Z0-9_.-]{1,256}, not starting with "AWS_"). Empty means a
	// random "viewer-<hex>".
	ClientID string

	// NoVideo and NoAudio leave out the receiving of video or audio.
	NoVideo, NoAudio bool
	// Video and Audio, when set, are sent to the master (the viewer's
	// camera and microphone); the viewer reads them in real time.
	Video, Audio media.Source

	// NonTrickle waits for ICE gathering to complete and sends one offer
	// that holds every candidate, instead of sending the offer at once and
	// the candidates as they are found (trickle ICE, the default).
	NonTrickle bool

	// NoDataChannel leaves out the data channel.
	NoDataChannel bool
	// DataChannelLabel is the label of the data channel; "" means
	// DefaultDataChannelLabel.
	DataChannelLabel string

	// VideoSinks and AudioSinks receive the complete frames rebuilt from
	// the received tracks (media.Consume), from the first key frame on:
	// for example a media.Recorder. They are called on the track's
	// goroutine; a slow sink delays the next frame.
	VideoSinks, AudioSinks []media.Sink

	// JoinStorageSession makes the viewer a viewer of the channel's storage
	// session (WebRTC ingestion with several viewers): before each offer it
	// calls JoinStorageSessionAsViewer, so that the KVS media server, not
	// the master, answers and sends it the master's media. The master must
	// be ingesting (MasterConfig.Ingestion). Such a viewer sends no video
	// (ViewerConfig.Video must be nil), as the official SDK's page.
	JoinStorageSession bool

	// Settings are the pion knobs of the peer connection.
	Settings Settings

	// DisableAutoReoffer turns off the automatic re-offer when the current
	// peer connection is lost while signaling is up (see [Viewer]): the
	// viewer then re-offers only after a signaling reconnect and on
	// RECONNECT_ICE_SERVER, and the application handles the rest.
	DisableAutoReoffer bool
	// ReofferBaseDelay and ReofferMaxDelay bound the automatic re-offer's
	// backoff: the n-th re-offer in a row waits a random time (full
	// jitter) up to min(ReofferMaxDelay, ReofferBaseDelay*2^(n-1)); the
	// count starts again once a peer connection connects. Zero means
	// DefaultReofferBaseDelay (500 ms) and DefaultReofferMaxDelay (10 s).
	ReofferBaseDelay, ReofferMaxDelay time.Duration
	// ReofferAnswerTimeout is how long the viewer waits for the master's
	// answer to an offer before it counts the session lost and offers
	// again (with the backoff above), so that a viewer whose master is
	// gone for longer than the channel's message TTL still finds the next
	// master. Zero means DefaultReofferAnswerTimeout (20 s). Unused with
	// DisableAutoReoffer.
	ReofferAnswerTimeout time.Duration

	// Logger receives the viewer's logs and is handed to the channel
	// resolver and the signaling client; nil means silence.
	Logger *slog.Logger
}

// normalize checks cfg and fills in its defaults: the client id, the data
// channel label and the re-offer delays.
func (cfg *ViewerConfig) normalize() error {
	if cfg.ClientID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		cfg.ClientID = "viewer-" + hex.EncodeToString(b[:])
	}
	if err := wire.CheckClientID(cfg.ClientID); err != nil {
		return fmt.Errorf("%w: ViewerConfig.ClientID: %w", ErrInvalidConfig, err)
	}
	if cfg.NoVideo && cfg.NoAudio && cfg.NoDataChannel && cfg.Video == nil && cfg.Audio == nil {
		return fmt.Errorf("%w: ViewerConfig asks for no video, no audio and no data channel: nothing to negotiate", ErrInvalidConfig)
	}
	if err := checkSources("ViewerConfig", cfg.Video, cfg.Audio); err != nil {
		return err
	}
	if cfg.JoinStorageSession && cfg.Video != nil {
		return fmt.Errorf("%w: ViewerConfig.JoinStorageSession: a viewer of a storage session sends no video (ViewerConfig.Video is set)", ErrInvalidConfig)
	}
	if cfg.DataChannelLabel == "" {
		cfg.DataChannelLabel = DefaultDataChannelLabel
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ReofferBaseDelay", cfg.ReofferBaseDelay}, {"ReofferMaxDelay", cfg.ReofferMaxDelay}, {"ReofferAnswerTimeout", cfg.ReofferAnswerTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%w: ViewerConfig.%s must not be negative, got %v", ErrInvalidConfig, d.name, d.v)
		}
	}
	cfg.ReofferBaseDelay = orDefault(cfg.ReofferBaseDelay, DefaultReofferBaseDelay)
	cfg.ReofferMaxDelay = orDefault(cfg.ReofferMaxDelay, DefaultReofferMaxDelay)
	cfg.ReofferAnswerTimeout = orDefault(cfg.ReofferAnswerTimeout, DefaultReofferAnswerTimeout)
	if cfg.ReofferBaseDelay > cfg.ReofferMaxDelay {
		return fmt.Errorf("%w: ViewerConfig.ReofferBaseDelay %v must not exceed ReofferMaxDelay %v", ErrInvalidConfig, cfg.ReofferBaseDelay, cfg.ReofferMaxDelay)
	}
	return nil
}
