package testsvc_test

import (
	"testing"

	"github.com/accessbot/accessbot/internal/testsvc"
)

func TestStartSlapd(t *testing.T) {
	s := testsvc.StartSlapd(t)
	c, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestStartPostgres(t *testing.T) {
	p := testsvc.StartPostgres(t)
	if p.IsMember(t, "analyst_ro", "alice") {
		t.Fatal("member")
	}
}
