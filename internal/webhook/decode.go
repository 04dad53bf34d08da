// Package webhook receives, stores and applies KiotViet's webhooks: the body's decoding and signature
// check (this file and verify.go), the stored events' store calls, and the applier that every replica
// runs. The HTTP handler is functions/kiotvietwebhook; it does no sync work, it only stores.
package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// EventTypes KiotViet sends that kvsync applies (kiotviet-api.md §9). Creations arrive as .update.
var EventTypes = []string{
	"product.update", "product.delete", "stock.update",
	"category.update", "category.delete", "branch.update", "branch.delete",
	"pricebook.update", "pricebook.delete", "pricebookdetail.update", "pricebookdetail.delete",
}

// KnownType tells whether t is one of EventTypes.
func KnownType(t string) bool {
	for _, e := range EventTypes {
		if e == t {
			return true
		}
	}
	return false
}

// Notification is one entry of a delivery: its event type ("product.update"), KiotViet's retailer id
// from the Action, and the Data items undecoded.
type Notification struct {
	Type       string
	RetailerID int64
	Data       []json.RawMessage
}

// Delivery is one webhook body as KiotViet sends it: the envelope {Id, Attempt, Notifications} or the
// bare delete shape {RemoveId: [...]}, whose event type only the URL can tell.
type Delivery struct {
	ID            string
	Attempt       int
	Notifications []Notification
	RemoveIDs     []int64 // the bare delete shape
	RetailerID    int64   // from the Actions; 0 for a bare delete
}

// Types lists the delivery's event types, in order, without repeats.
func (d Delivery) Types() []string {
	var out []string
	for _, n := range d.Notifications {
		if !contains(out, n.Type) {
			out = append(out, n.Type)
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// DedupeKey identifies a delivery across KiotViet's retries: its Id (the same on every Attempt), else
// (the bare delete shape carries none) the event type and a hash of the body.
func (d Delivery) DedupeKey(eventType string, body []byte) string {
	if d.ID != "" {
		return "id:" + d.ID
	}
	sum := sha256.Sum256(body)
	return "body:" + eventType + ":" + hex.EncodeToString(sum[:])
}

// ErrMalformed is the class of every decoding failure; the message says what is wrong in words.
var ErrMalformed = errors.New("malformed webhook body")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Decode reads a webhook body. eventType is the URL's event type (used for, and required by, the bare
// {RemoveId} shape; for an envelope it must agree with the Actions when given). Unknown fields are
// ignored; an unknown event type is kept (stored and skipped by the applier), since KiotViet adds types.
func Decode(body []byte, eventType string) (Delivery, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return Delivery{}, malformed("the body must be a JSON object")
	}
	var w struct {
		ID            json.RawMessage `json:"Id"`
		Attempt       json.RawMessage `json:"Attempt"`
		Notifications []struct {
			Action string          `json:"Action"`
			Data   json.RawMessage `json:"Data"`
		} `json:"Notifications"`
		RemoveID json.RawMessage `json:"RemoveId"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Delivery{}, malformed("field %s has the wrong kind of value", fieldName(te.Field))
		}
		return Delivery{}, malformed("not valid JSON")
	}
	var d Delivery
	if len(w.ID) > 0 && string(w.ID) != "null" {
		var id string
		if err := json.Unmarshal(w.ID, &id); err != nil {
			return Delivery{}, malformed("Id must be a string")
		}
		if len(id) > 100 {
			return Delivery{}, malformed("Id is longer than 100 characters")
		}
		d.ID = id
	}
	if len(w.Attempt) > 0 && string(w.Attempt) != "null" {
		n, err := strconv.Atoi(strings.Trim(string(w.Attempt), `"`))
		if err != nil || n < 0 {
			return Delivery{}, malformed("Attempt must be a whole number")
		}
		d.Attempt = n
	}
	if len(w.RemoveID) > 0 && string(w.RemoveID) != "null" {
		ids, err := decodeIDs(w.RemoveID)
		if err != nil {
			return Delivery{}, malformed("RemoveId must be a list of ids")
		}
		if eventType == "" {
			return Delivery{}, malformed("a RemoveId body carries no event type: the webhook URL must name it (?event=product.delete)")
		}
		if !strings.HasSuffix(eventType, ".delete") {
			return Delivery{}, malformed("a RemoveId body is a delete, but the URL names %s", eventType)
		}
		d.RemoveIDs = ids
	}
	for i, n := range w.Notifications {
		typ, rid, err := parseAction(n.Action)
		if err != nil {
			return Delivery{}, malformed("Notifications[%d].Action %s", i, err)
		}
		if d.RetailerID != 0 && rid != d.RetailerID {
			return Delivery{}, malformed("Notifications[%d].Action is for another retailer", i)
		}
		d.RetailerID = rid
		var items []json.RawMessage
		if len(n.Data) > 0 && string(n.Data) != "null" {
			if err := json.Unmarshal(n.Data, &items); err != nil {
				return Delivery{}, malformed("Notifications[%d].Data must be a list", i)
			}
		}
		d.Notifications = append(d.Notifications, Notification{Type: typ, RetailerID: rid, Data: items})
	}
	if len(d.Notifications) == 0 && d.RemoveIDs == nil {
		return Delivery{}, malformed("neither Notifications nor RemoveId is present")
	}
	return d, nil
}

// parseAction splits "product.update.500400541" into its type and retailer id. KiotViet's Action is the
// type followed by the retailer id (the official plugin explodes it on "."); match by prefix, not equality.
func parseAction(a string) (string, int64, error) {
	if a == "" {
		return "", 0, errors.New("is missing")
	}
	i := strings.LastIndexByte(a, '.')
	if i <= 0 || i == len(a)-1 {
		return "", 0, errors.New("must be <type>.<retailer id>, such as product.update.500400541")
	}
	rid, err := strconv.ParseInt(a[i+1:], 10, 64)
	if err != nil || rid <= 0 {
		return "", 0, errors.New("must end with the retailer id, such as product.update.500400541")
	}
	typ := strings.ToLower(a[:i])
	if strings.Count(typ, ".") != 1 {
		return "", 0, errors.New("must be <entity>.<update|delete>.<retailer id>")
	}
	return typ, rid, nil
}

// decodeIDs reads a list of ids given as numbers or numeric strings.
func decodeIDs(raw json.RawMessage) ([]int64, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	out := make([]int64, 0, len(items))
	for _, it := range items {
		v, err := strconv.ParseInt(strings.Trim(string(bytes.TrimSpace(it)), `"`), 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func fieldName(f string) string {
	if f == "" {
		return "(top level)"
	}
	return f
}
