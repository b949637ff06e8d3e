package connectortest

import (
	"net/http/httptest"
	"slices"
	"testing"
)

func TestFaults(t *testing.T) {
	var f Faults
	if _, ok := f.Take(); ok {
		t.Fatal("Take on an empty queue")
	}
	f.FailNext(429, 503)
	f.FailNext(500)
	for _, want := range []int{429, 503, 500} {
		if got, ok := f.Take(); !ok || got != want {
			t.Fatalf("Take = %d, %v; want %d", got, ok, want)
		}
	}
	f.Record(httptest.NewRequest("GET", "/api/users/1?x=y", nil))
	f.Record(httptest.NewRequest("POST", "/api/users", nil))
	f.Note("POST (failed)")
	if n := f.Count("POST"); n != 2 {
		t.Fatalf("Count(POST) = %d", n)
	}
	if n := f.Count(""); n != 3 {
		t.Fatalf("Count() = %d", n)
	}
	if got := f.Calls(); !slices.Equal(got, []string{"GET /api/users/1", "POST /api/users", "POST (failed)"}) {
		t.Fatalf("Calls = %q", got)
	}
}

func TestState(t *testing.T) {
	var s State
	ctx := t.Context()
	if _, ok, err := s.Get(ctx, "k"); ok || err != nil {
		t.Fatalf("Get on empty = %v, %v", ok, err)
	}
	v := []byte("v1")
	if err := s.Put(ctx, "k", v); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X' // the stored copy is not aliased
	if got, ok, _ := s.Get(ctx, "k"); !ok || string(got) != "v1" {
		t.Fatalf("Get = %q, %v", got, ok)
	}
	if keys := s.Keys(); !slices.Equal(keys, []string{"k"}) {
		t.Fatalf("Keys = %q", keys)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if len(s.Keys()) != 0 {
		t.Fatalf("Keys after Delete = %q", s.Keys())
	}
}
