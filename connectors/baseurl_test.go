package connectors

import (
	"fmt"
	"testing"
)

func TestCheckBaseURL(t *testing.T) {
	for s, ok := range map[string]bool{
		"https://example.okta.com":     true,
		"https://example.com/scim/v2":  true,
		"http://127.0.0.1:8080/api":    true,
		"http://localhost:9/x":         true,
		"http://[::1]:9":               true,
		"http://example.com":           false,
		"https://example.com/?token=x": false,
		"https://example.com/#frag":    false,
		"example.com":                  false,
		"ftp://example.com":            false,
		"https://":                     false,
	} {
		if err := CheckBaseURL(s); (err == nil) != ok {
			t.Errorf("CheckBaseURL(%q) = %v, want ok=%v", s, err, ok)
		}
	}
}

func TestRequireBaseURL(t *testing.T) {
	for _, tt := range []struct{ value, hint, want string }{
		{"https://acme.atlassian.net", "the site", ""},
		{"", "the Jira site, like https://acme.atlassian.net", "url: required: the Jira site, like https://acme.atlassian.net"},
		{"", "", "url: required"},
		{"http://acme.atlassian.net", "the site", "url: must be an https:// URL"},
		{"https://acme.atlassian.net/?x=1", "", "url: must be an absolute https:// URL without query"},
	} {
		err := RequireBaseURL("url", tt.value, tt.hint)
		if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
			t.Errorf("RequireBaseURL(%q, %q) = %v, want %q", tt.value, tt.hint, err, tt.want)
		}
	}
}
