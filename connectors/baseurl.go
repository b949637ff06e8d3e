package connectors

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

// CheckBaseURL accepts the base URL of an API that the connector sends
// credentials to: an absolute https URL with no query or fragment.
//
// Plain http is accepted only for a loopback host (localhost, 127.0.0.0/8,
// ::1), where tests run their fake servers: anywhere else a token, secret
// or client assertion would travel in clear text, readable and replayable
// by anyone on the path, so a typo such as http://example.okta.com must be
// a configuration error, not a silent downgrade.
func CheckBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be an absolute https:// URL without query")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return errors.New("must be an https:// URL")
}

// RequireBaseURL is the check of a required base-URL key of a
// connector's block: "KEY: required" (then ": " and hint, when given, to
// say what belongs there) when value is empty, else CheckBaseURL's
// verdict after "KEY: ". It returns nil for a good URL, so that Validate
// can collect it with errors.Join.
func RequireBaseURL(key, value, hint string) error {
	if value == "" {
		if hint != "" {
			return fmt.Errorf("%s: required: %s", key, hint)
		}
		return fmt.Errorf("%s: required", key)
	}
	if err := CheckBaseURL(value); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}
