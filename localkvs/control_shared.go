package localkvs

import (
	"encoding/base64"
	"strings"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// What the control-plane handlers of signaling channels (control.go) and
// of streams (streams.go) have in common: the paging of their List
// operations and the checks and changes of their tags. The errors keep
// naming each operation's own fields.

// resourceKind is a kind of resource that the control plane finds by
// name or ARN: its noun in errors and the prefix of its fields (Channel
// for ChannelName and ChannelARN).
type resourceKind struct{ noun, field string }

// The kinds of resources of the control plane.
var (
	channelResource = resourceKind{noun: "signaling channel", field: "Channel"}
	streamResource  = resourceKind{noun: "stream", field: "Stream"}
)

// find finds a resource of kind k by ARN (when set) or name with get (the
// store's get or getStream), which answers whether there is one.
func find[R any](k resourceKind, name, arn string, get func(name, arn string) (R, bool)) (R, error) {
	var none R
	if arn != "" {
		if err := validARN(k.field+"ARN", arn); err != nil {
			return none, err
		}
		r, ok := get("", arn)
		if !ok {
			return none, notFound("no %s with ARN %q", k.noun, arn)
		}
		return r, nil
	}
	if name == "" {
		return none, invalidArg("%sName or %sARN is required", k.field, k.field)
	}
	if err := validName(k.field+"Name", name); err != nil {
		return none, err
	}
	r, ok := get(name, "")
	if !ok {
		return none, notFound("no %s named %q", k.noun, name)
	}
	return r, nil
}

// channelByARN finds the channel arn, sent as field: the channel
// operations that name it by ARN alone (ListTagsForResource,
// GetSignalingChannelEndpoint, JoinStorageSession).
func (s *Server) channelByARN(field, arn string) (*channelRec, error) {
	if err := validARN(field, arn); err != nil {
		return nil, err
	}
	c, ok := s.store.get("", arn)
	if !ok {
		return nil, noChannel(arn)
	}
	return c, nil
}

// emptyAnswer is the answer of an operation that answers {} once the
// store has made its change (the store's update, updateStream), or the
// store's error.
func emptyAnswer[R any](_ R, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// nameCondition is the ChannelNameCondition of ListSignalingChannels and
// the StreamNameCondition of ListStreams. An alias of an unnamed struct,
// so that encoding/json's errors for it, which decode answers, read as
// they did when each input spelled it out.
type nameCondition = struct{ ComparisonOperator, ComparisonValue string }

// listOp describes a List operation for parse: its name (which the
// NextToken error names), the field of its name condition and the
// MaxResults it takes when the request has none.
type listOp struct {
	name, condition string
	defaultMax      int
}

// The List operations of the control plane.
var (
	listChannelsOp = listOp{name: "ListSignalingChannels", condition: "ChannelNameCondition", defaultMax: 500}
	listStreamsOp  = listOp{name: "ListStreams", condition: "StreamNameCondition", defaultMax: 10000}
)

// listPage is a checked List request, as the store's list and listStreams
// take it: at most max names beginning with prefix, after the name after
// ("" for the first page).
type listPage struct {
	prefix, after string
	max           int
}

// parse checks the MaxResults (1 to 10000), NextToken (a token of
// listAnswer) and name condition (BEGINS_WITH a valid name) of a request
// of op.
func (op listOp) parse(maxResults *int, nextToken *string, c *nameCondition) (listPage, error) {
	p := listPage{max: op.defaultMax}
	if maxResults != nil {
		if *maxResults < 1 || *maxResults > 10000 {
			return listPage{}, invalidArg("MaxResults %d must be between 1 and 10000", *maxResults)
		}
		p.max = *maxResults
	}
	if nextToken != nil && *nextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(*nextToken)
		if err != nil || !wire.ValidName(string(b)) {
			return listPage{}, invalidArg("NextToken is not a token returned by %s", op.name)
		}
		p.after = string(b)
	}
	if c != nil {
		if c.ComparisonOperator != "" && c.ComparisonOperator != "BEGINS_WITH" {
			return listPage{}, invalidArg("%s.ComparisonOperator %q is not supported; use BEGINS_WITH", op.condition, c.ComparisonOperator)
		}
		if c.ComparisonValue != "" && !wire.ValidName(c.ComparisonValue) {
			return listPage{}, invalidArg("%s.ComparisonValue %q: want %s", op.condition, c.ComparisonValue, wire.NameRule)
		}
		p.prefix = c.ComparisonValue
	}
	return p, nil
}

// listAnswer is the answer of a List operation: the records found, each
// as info gives it, under field, and when more follow, the NextToken
// that goes on after the last of them (name gives a record's name).
func listAnswer[R, J any](field string, recs []R, more bool, info func(R) J, name func(R) string) map[string]any {
	list := make([]J, len(recs))
	for i, r := range recs {
		list[i] = info(r)
	}
	out := map[string]any{field: list}
	if more {
		out["NextToken"] = base64.RawURLEncoding.EncodeToString([]byte(name(recs[len(recs)-1])))
	}
	return out
}

// tagJSON is a tag as CreateSignalingChannel and TagResource carry it.
type tagJSON struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// maxTags is the most tags a resource may have.
const maxTags = 50

// validTags checks each tag's key and value.
func validTags(tags []tagJSON) error {
	for i, t := range tags {
		if len(t.Key) < 1 || len(t.Key) > 128 {
			return invalidArg("Tags[%d].Key must be 1 to 128 characters", i)
		}
		if strings.HasPrefix(t.Key, "aws:") {
			return invalidArg("Tags[%d].Key %q must not start with aws:", i, t.Key)
		}
		if len(t.Value) > 256 {
			return invalidArg("Tags[%d].Value must be at most 256 characters", i)
		}
	}
	return nil
}

// tagsLimit is the error of a resource that would have n tags, more
// than maxTags.
func tagsLimit(n int) error {
	return limitExceeded(codeTagsLimit, "a resource can have at most %d tags, this request would give it %d", maxTags, n)
}

// tagList is the tags of a stream request (a map) as a list, the form
// the tag checks take.
func tagList(tags map[string]string) []tagJSON {
	list := make([]tagJSON, 0, len(tags))
	for k, v := range tags {
		list = append(list, tagJSON{k, v})
	}
	return list
}

// checkTagsToAdd checks the Tags of TagResource and TagStream: at least
// one, each valid.
func checkTagsToAdd(tags []tagJSON) error {
	if len(tags) == 0 {
		return invalidArg("Tags must hold at least one tag")
	}
	return validTags(tags)
}

// addTags sets tags on a resource's tags (on creation, TagResource,
// TagStream) and fails if it would have more than maxTags then.
func addTags(resource map[string]string, tags []tagJSON) error {
	for _, t := range tags {
		resource[t.Key] = t.Value
	}
	if len(resource) > maxTags {
		return tagsLimit(len(resource))
	}
	return nil
}

// checkTagKeys checks the TagKeyList of UntagResource and UntagStream.
func checkTagKeys(keys []string) error {
	if len(keys) == 0 {
		return invalidArg("TagKeyList must hold at least one key")
	}
	return nil
}

// removeTags removes the tags of keys from a resource's tags.
func removeTags(resource map[string]string, keys []string) {
	for _, k := range keys {
		delete(resource, k)
	}
}
