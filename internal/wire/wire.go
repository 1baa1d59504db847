package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
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

// EncodePayload returns the standard padded base64 of the JSON of v, written
// as JavaScript's JSON.stringify writes it (no HTML escaping of <, > and &),
// so that what the Go client sends is byte for byte what the JS SDK sends.
func EncodePayload(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
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
