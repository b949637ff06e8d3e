package connectors

import "testing"

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
