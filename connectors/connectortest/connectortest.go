// Package connectortest holds helpers for the connector packages' tests.
// It is imported only from _test.go files.
package connectortest

import (
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// FastHTTP returns the shared HTTP client tuned for tests against a fake
// server: retryMax retries (negative: none) with millisecond backoff and
// 5 s attempts. Retry-After is honoured up to the default cap.
func FastHTTP(retryMax int) *connectors.HTTPClient {
	return connectors.NewHTTPClient(fastOptions(retryMax))
}

// FastHTTPShortRetryAfter is FastHTTP with a 1 ms Retry-After cap: any
// Retry-After the fake server sends ends the inner loop at once and is left
// to the classified error, as a long one would be in production.
func FastHTTPShortRetryAfter(retryMax int) *connectors.HTTPClient {
	o := fastOptions(retryMax)
	o.MaxRetryAfter = time.Millisecond
	return connectors.NewHTTPClient(o)
}

func fastOptions(retryMax int) connectors.HTTPOptions {
	return connectors.HTTPOptions{
		RetryMax: retryMax, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond,
		AttemptTimeout: 5 * time.Second,
	}
}

// ErrOf drops the receipt of a Grant call, for assertions about its error
// alone: mustOK(t, connectortest.ErrOf(c.Grant(ctx, g))).
func ErrOf(_ access.Receipt, err error) error { return err }
