package kiotviet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// plainString is the text of the JSON string b when it has no escape and nothing encoding/json would
// change (a control character, invalid UTF-8): most strings KiotViet sends, taken without a second
// decode. b has been validated by the decode that handed it over.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	for _, c := range in {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

// unquote is the text of the JSON string b.
func unquote(b []byte) (string, error) {
	if s, ok := plainString(b); ok {
		return s, nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// The flex* types decode one JSON leaf the way KiotViet's data needs:
// null and absent are "not set", numbers may arrive as strings, and a value
// of a plainly wrong kind (an object for a number) is an error rather than
// a silent zero.

type flexInt struct {
	V   int64
	Set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	*f = flexInt{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		var err error
		if s, err = unquote(b); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return nil
		}
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		f.V, f.Set = v, true
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v != math.Trunc(v) || math.Abs(v) > 1<<53 {
		return fmt.Errorf("not an integer: %.40q", s)
	}
	f.V, f.Set = int64(v), true
	return nil
}

type flexFloat struct {
	V   float64
	Set bool
}

func (f *flexFloat) UnmarshalJSON(b []byte) error {
	*f = flexFloat{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		var err error
		if s, err = unquote(b); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return nil
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("not a number: %.40q", s)
	}
	f.V, f.Set = v, true
	return nil
}

type flexBool struct {
	V   bool
	Set bool
}

func (f *flexBool) UnmarshalJSON(b []byte) error {
	*f = flexBool{}
	b = bytes.TrimSpace(b)
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		var err error
		if s, err = unquote(b); err != nil {
			return err
		}
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "null":
	case "true", "1":
		f.V, f.Set = true, true
	case "false", "0":
		f.Set = true
	default:
		return fmt.Errorf("not a boolean: %.40q", s)
	}
	return nil
}

type flexString struct {
	V string
}

func (f *flexString) UnmarshalJSON(b []byte) error {
	*f = flexString{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	switch b[0] {
	case '"':
		var err error
		f.V, err = unquote(b)
		return err
	case '{', '[':
		return errors.New("not a string")
	}
	f.V = string(b) // a number or a boolean, kept as written
	return nil
}

type flexTime struct {
	V time.Time
}

func (f *flexTime) UnmarshalJSON(b []byte) error {
	*f = flexTime{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] != '"' {
		return errors.New("date is not a string")
	}
	s, err := unquote(b)
	if err != nil {
		return err
	}
	t, err := ParseTime(s)
	if err != nil {
		return err
	}
	f.V = t
	return nil
}

// flexIDs decodes a removed-ids field: an array of ids (numbers or numeric
// strings), a single id, or null.
type flexIDs []int64

func (f *flexIDs) UnmarshalJSON(b []byte) error {
	*f = nil
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] != '[' {
		var one flexInt
		if err := one.UnmarshalJSON(b); err != nil {
			return err
		}
		if one.Set {
			*f = flexIDs{one.V}
		}
		return nil
	}
	var many []flexInt
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	for _, id := range many {
		if id.Set {
			*f = append(*f, id.V)
		}
	}
	return nil
}

// rawArray keeps a JSON value as raw bytes, normalised to an array: null
// and absent stay nil, an array is kept, anything else is wrapped in [ ].
type rawArray json.RawMessage

func (r *rawArray) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*r = nil
	case b[0] == '[':
		*r = append(rawArray(nil), b...)
	default:
		*r = append(append(rawArray{'['}, b...), ']')
	}
	return nil
}

// vietnam is KiotViet's time zone (UTC+7, no daylight saving). It is
// immutable, so sharing it is safe.
var vietnam = time.FixedZone("ICT", 7*3600)

// VietnamZone returns the fixed UTC+07:00 zone KiotViet's offset-less dates
// are written in.
func VietnamZone() *time.Location { return vietnam }

// ParseDateFrom reads a date a user gives (the HTTP dateFrom option, the CLI's --date-from): RFC 3339,
// or a date or date-time without an offset, read as Vietnam time as KiotViet's own dates are.
func ParseDateFrom(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, vietnam); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date: use 2006-01-02, 2006-01-02T15:04 or RFC 3339", s)
}

// ParseTime reads a KiotViet date. Dates without an offset (entity dates
// such as "2025-02-19T08:41:34.0530000") are Vietnam time; dates with an
// offset or Z (envelope timestamps, webhooks) keep it; .NET's
// "/Date(ms+0700)/" form is accepted too. An empty string is the zero time.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if strings.HasPrefix(s, "/Date(") && strings.HasSuffix(s, ")/") {
		inner := s[len("/Date(") : len(s)-2]
		if i := strings.LastIndexAny(inner, "+-"); i > 0 {
			inner = inner[:i]
		}
		ms, err := strconv.ParseInt(inner, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("bad date %.40q", s)
		}
		t := time.UnixMilli(ms).In(vietnam)
		if t.Year() < 1 || t.Year() > 9999 {
			// no shop's date: and a row holding it could never be written out as JSON again
			return time.Time{}, fmt.Errorf("bad date %.40q: year %d", s, t.Year())
		}
		return t, nil
	}
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, vietnam); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad date %.40q", s)
}

// FormatTime writes t the way KiotViet writes entity dates: Vietnam local
// time, seven fractional digits, no offset. The client sends
// lastModifiedFrom in this form.
func FormatTime(t time.Time) string {
	return t.In(vietnam).Format("2006-01-02T15:04:05.0000000")
}
