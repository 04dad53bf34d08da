package kiotviet

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Small assertion helpers: the module's go.sum does not carry testify's
// dependencies, so these tests use the standard library only.

func noErr(t *testing.T, err error, msg ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error %v %v", err, msg)
	}
}

func isErr(t *testing.T, err error, msg ...any) {
	t.Helper()
	if err == nil {
		t.Errorf("expected an error %v", msg)
	}
}

func eq[T any](t *testing.T, want, got T, msg ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Errorf("want %#v, got %#v %v", want, got, msg)
	}
}

func truth(t *testing.T, ok bool, msg ...any) {
	t.Helper()
	if !ok {
		t.Errorf("expected true %v", msg)
	}
}

func jsonEq(t *testing.T, want, got string) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal([]byte(want), &a); err != nil {
		t.Fatalf("bad want JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(got), &b); err != nil {
		t.Fatalf("bad got JSON %q: %v", got, err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("JSON differs:\nwant %s\ngot  %s", want, got)
	}
}
