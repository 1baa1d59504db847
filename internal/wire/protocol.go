package wire

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Role is the role a client takes on a signaling channel. The signaling and
// channel packages export it under their own names as aliases of this type.
type Role string

const (
	// RoleMaster is the single peer that viewers connect to (a camera, a bot).
	RoleMaster Role = "MASTER"
	// RoleViewer is one of up to MaxViewers peers that connect to the master.
	RoleViewer Role = "VIEWER"
)

// Valid reports whether r is RoleMaster or RoleViewer.
func (r Role) Valid() bool { return r == RoleMaster || r == RoleViewer }

// The service limits of KVS signaling (docs/protocol.md, "Limits"). The local
// service enforces them by default; the client checks what it can before
// sending.
const (
	// MaxPayload is the largest base64 message payload the service accepts, in bytes.
	MaxPayload = 10 * 1024
	// SDPPerSecond is the SDP offer and answer send rate per connection.
	SDPPerSecond = 5
	// ICEPerSecond is the ICE candidate send rate per connection.
	ICEPerSecond = 20
	// ConnectsPerSecond is the connect rate per channel, masters and viewers together.
	ConnectsPerSecond = 3
	// MaxViewers is the number of viewers connected to one channel at once.
	MaxViewers = 10
	// ICEConfigPerSecond is the GetIceServerConfig rate per channel.
	ICEConfigPerSecond = 5
	// MinMessageTTL and MaxMessageTTL bound a channel's MessageTtlSeconds.
	MinMessageTTL = 5 * time.Second
	MaxMessageTTL = 120 * time.Second
	// DefaultMessageTTL is the MessageTtlSeconds of a channel created without one.
	DefaultMessageTTL = 60 * time.Second
	// MaxClockSkew is how far a request's signing time may be from the
	// service's clock.
	MaxClockSkew = 5 * time.Minute
	// ICETTL is the lifetime of the TURN credentials GetIceServerConfig
	// returns (its Ttl), fixed by the real service.
	ICETTL = 300 * time.Second
	// IdleTimeout closes a connection that sent no message for this long.
	IdleTimeout = 10 * time.Minute
	// MaxConnectionDuration is the longest a connection stays open.
	MaxConnectionDuration = time.Hour
	// GoAwayLead is how long before the MaxConnectionDuration cut GO_AWAY is sent.
	GoAwayLead = time.Minute
)

// CloseReplaced is the WebSocket close code the local service sends to a
// connection that a newer one with the same role and ClientId replaced (a
// code in the private-use range of RFC 6455, section 7.4.2). A client that
// sees it does not reconnect: the newer connection owns the identity.
const CloseReplaced = 4001

// nameRE is the grammar of channel names, stream names, client ids and
// correlation ids.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,256}$`)

// NameRule describes the grammar ValidName checks, for error messages.
const NameRule = "1 to 256 of [a-zA-Z0-9_.-]"

// ValidName reports whether s is a valid channel name, stream name or
// correlation id: 1 to 256 of [a-zA-Z0-9_.-].
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ClientIDRule describes the grammar CheckClientID checks, for error messages.
const ClientIDRule = NameRule + `, not starting with "AWS_"`

// CheckClientID returns nil when id is a valid viewer ClientId, and
// otherwise an error that says which rule id breaks.
func CheckClientID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("ClientId is empty: want %s", ClientIDRule)
	case !nameRE.MatchString(id):
		return fmt.Errorf("ClientId %q: want %s", id, ClientIDRule)
	case strings.HasPrefix(id, "AWS_"):
		return fmt.Errorf("ClientId %q: must not start with \"AWS_\" (reserved)", id)
	}
	return nil
}

// ARN is a parsed Kinesis Video Streams resource ARN:
// arn:<partition>:kinesisvideo:<region>:<account>:<type>/<name>/<creation epoch ms>.
type ARN struct {
	Partition  string // aws, aws-cn, aws-us-gov, ...
	Region     string
	Account    string // 12 digits
	Type       string // "channel" or "stream"
	Name       string
	CreationMS int64
}

// String returns the ARN in its canonical form.
func (a ARN) String() string {
	return "arn:" + a.Partition + ":kinesisvideo:" + a.Region + ":" + a.Account + ":" +
		a.Type + "/" + a.Name + "/" + strconv.FormatInt(a.CreationMS, 10)
}

// ARNRule describes the grammar ParseARN accepts, for error messages.
const ARNRule = "arn:<partition>:kinesisvideo:<region>:<12-digit account>:<channel|stream>/<name>/<creation epoch ms>"

var arnRE = regexp.MustCompile(`^arn:(aws[a-z-]*):kinesisvideo:([a-z]{2}(?:-[a-z]+)+-[0-9]+):([0-9]{12}):(channel|stream)/([a-zA-Z0-9_.-]{1,256})/([0-9]{1,19})$`)

// ParseARN parses a channel or stream ARN. It accepts exactly the grammar
// of ARNRule and nothing else.
func ParseARN(s string) (ARN, error) {
	m := arnRE.FindStringSubmatch(s)
	if m == nil {
		return ARN{}, fmt.Errorf("%q is not a Kinesis Video ARN (%s)", s, ARNRule)
	}
	ms, err := strconv.ParseInt(m[6], 10, 64)
	if err != nil {
		return ARN{}, fmt.Errorf("%q: creation time %q is out of range", s, m[6])
	}
	return ARN{Partition: m[1], Region: m[2], Account: m[3], Type: m[4], Name: m[5], CreationMS: ms}, nil
}

// ParseChannelARN parses a signaling channel ARN (type "channel").
func ParseChannelARN(s string) (ARN, error) {
	a, err := ParseARN(s)
	if err != nil {
		return a, err
	}
	if a.Type != "channel" {
		return ARN{}, fmt.Errorf("%q is a %s ARN, not a signaling channel ARN", s, a.Type)
	}
	return a, nil
}
