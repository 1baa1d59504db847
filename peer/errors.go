package peer

import "errors"

// Errors returned by this package. Test for them with errors.Is; the
// returned error wraps one of them with detail, and keeps the cause (a
// channel, signaling or pion error) in its chain.
var (
	// ErrInvalidConfig reports a MasterConfig, ViewerConfig or Settings
	// field that breaks a rule; the message names the field.
	ErrInvalidConfig = errors.New("peer: invalid config")
	// ErrResolve reports a failure of the control-plane steps
	// (channel.Resolve): describe, create, endpoint or ICE config.
	ErrResolve = errors.New("peer: resolving the signaling channel failed")
	// ErrSignaling reports a failure to connect to the signaling service or
	// to send through it.
	ErrSignaling = errors.New("peer: signaling failed")
	// ErrClientLimitExceeded reports that the service refused the signaling
	// connection with ClientLimitExceededException: the channel has its
	// maximum of viewers connected (10 on KVS), or connects came too fast.
	ErrClientLimitExceeded = errors.New("peer: the signaling service refused the connection: client limit exceeded")
	// ErrPeerConnection reports a pion/webrtc failure: creating the peer
	// connection, an offer or answer, or applying a description.
	ErrPeerConnection = errors.New("peer: peer connection failed")
	// ErrStarted reports a second call to Start.
	ErrStarted = errors.New("peer: already started")
	// ErrNotStarted reports a call that needs Start first.
	ErrNotStarted = errors.New("peer: not started")
	// ErrClosed reports a call after Close.
	ErrClosed = errors.New("peer: closed")
	// ErrUnknownViewer reports a viewer client id with no session.
	ErrUnknownViewer = errors.New("peer: no session with that viewer")
	// ErrNoDataChannel reports a Send while no data channel is open.
	ErrNoDataChannel = errors.New("peer: no open data channel")
	// ErrTooManyViewers is the reason OnViewerLeft gives for an offer from
	// a new viewer that was refused because MasterConfig.MaxViewers
	// sessions exist already (no answer is sent).
	ErrTooManyViewers = errors.New("peer: the master already serves its maximum of viewers")
	// ErrSessionReplaced is the reason OnViewerLeft gives when a new offer
	// from the same viewer client id replaced its session.
	ErrSessionReplaced = errors.New("peer: session replaced by a new offer from the same viewer")
	// ErrConnectionFailed is the reason OnViewerLeft gives (and what
	// WaitConnected returns) when ICE or DTLS failed, or the connection
	// was closed by the remote peer.
	ErrConnectionFailed = errors.New("peer: connection failed or closed")
	// ErrNoAnswer is the reason Viewer.OnReoffer gives when the master did
	// not answer an offer within ViewerConfig.ReofferAnswerTimeout.
	ErrNoAnswer = errors.New("peer: no answer to the offer")
	// ErrSignalingReconnected is the reason Viewer.OnReoffer gives when the
	// signaling connection came back after a drop and the peer connection
	// was not connected.
	ErrSignalingReconnected = errors.New("peer: signaling reconnected while the peer connection was not connected")
	// ErrCodecNotSupported is the reason OnViewerLeft gives when a viewer's
	// offer cannot receive the codec of a source the master sends (an
	// H.265 camera and a browser without H.265, say): the session is not
	// answered, rather than left with a black picture. The message names
	// the codec and what the viewer offered.
	ErrCodecNotSupported = errors.New("peer: the viewer cannot receive the codec the master sends")
	// ErrReconnectICEServer is the reason Viewer.OnReoffer gives when the
	// service sent RECONNECT_ICE_SERVER.
	ErrReconnectICEServer = errors.New("peer: the service asked for new ICE servers (RECONNECT_ICE_SERVER)")
)
