package wire

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
)

// Actions a client sends, and message types the service sends.
const (
	SDPOffer           = "SDP_OFFER"
	SDPAnswer          = "SDP_ANSWER"
	ICECandidate       = "ICE_CANDIDATE"
	StatusResponse     = "STATUS_RESPONSE"
	GoAway             = "GO_AWAY"
	ReconnectICEServer = "RECONNECT_ICE_SERVER"
)

// MaxPayload is the largest base64 message payload the service accepts, in bytes.
const MaxPayload = 10 * 1024

// ClientMessage is a frame from a client to the service. encoding/json
// matches keys case-insensitively, so the C SDK's PascalCase keys
// (RecipientClientId, MessagePayload, CorrelationId) decode too.
type ClientMessage struct {
	Action            string `json:"action"`
	MessagePayload    string `json:"messagePayload"`
	RecipientClientID string `json:"recipientClientId,omitempty"`
	CorrelationID     string `json:"correlationId,omitempty"`
}

// ServiceMessage is a frame from the service to a client.
type ServiceMessage struct {
	MessageType    string  `json:"messageType"`
	MessagePayload string  `json:"messagePayload,omitempty"`
	SenderClientID string  `json:"senderClientId,omitempty"`
	StatusResponse *Status `json:"statusResponse,omitempty"`
}

// Status is the body of a STATUS_RESPONSE.
type Status struct {
	CorrelationID string `json:"correlationId"`
	Success       bool   `json:"success"`
	ErrorType     string `json:"errorType,omitempty"`
	StatusCode    string `json:"statusCode,omitempty"`
	Description   string `json:"description,omitempty"`
}

// IDPattern is the pattern of client ids, correlation ids and channel names.
var IDPattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,256}$`)

// EncodePayload returns the standard padded base64 of the JSON of v.
func EncodePayload(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodePayload decodes a base64 payload holding JSON into v.
func DecodePayload(payload string, v any) error {
	b, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return fmt.Errorf("payload is not base64: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("payload is not JSON: %w", err)
	}
	return nil
}
