package httpx

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/kvsync/kvsync/internal/errs"
)

// goisms are what a reply must never show a caller: Go type names and struct tags.
var goisms = regexp.MustCompile(`struct \{|json:"|\*int|\bint(8|16|32|64)?\b|\buint|float64|\bmap\[|\[\]|interface \{`)

// CheckDecodeError is what every handler's fuzz target asserts about its decoding: nil, or a 4xx
// *errs.Error whose message is in words (no Go type, no struct tag). It returns a description of what is
// wrong, or "".
func CheckDecodeError(err error) string {
	if err == nil {
		return ""
	}
	var he *errs.Error
	if !errors.As(err, &he) {
		return fmt.Sprintf("not an *errs.Error: %T %v", err, err)
	}
	if status, _ := Status(err); status < 400 || status > 499 {
		return fmt.Sprintf("status %d for bad input: %s", status, he.Message)
	}
	if he.Message == "" || goisms.MatchString(he.Message) {
		return fmt.Sprintf("message not in words: %q", he.Message)
	}
	return ""
}
