package upnp

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// maxAnswerBytes bounds a description or SOAP answer: real ones are a few KiB.
const maxAnswerBytes = 1 << 20

// defaultHTTPTimeout bounds each request of the default client, in case a caller
// gives a Gateway method a context without a deadline.
const defaultHTTPTimeout = 30 * time.Second

var errAnswerTooLarge = errors.New("upnp: gateway's answer is larger than 1 MiB")

// newHTTPClient returns a copy of user (or a fresh client) whose answers are
// bounded. The fresh client uses no proxy (the gateway is on the LAN; an
// HTTP_PROXY from the environment must not apply) and no keep-alive (many
// gateways close the connection anyway, and no idle connection, with its
// goroutines, outlives a request); each request times out after 30 s.
func newHTTPClient(user *http.Client) *http.Client {
	var c http.Client
	if user != nil {
		c = *user
		if _, done := c.Transport.(boundedTransport); done {
			return &c
		}
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		t.DisableKeepAlives = true
		c.Transport = t
		c.Timeout = defaultHTTPTimeout
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = boundedTransport{base}
	return &c
}

// boundedTransport makes reading more than maxAnswerBytes of an answer fail.
type boundedTransport struct{ base http.RoundTripper }

func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: maxAnswerBytes}
	return resp, nil
}

type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Allowed bytes used up: fine if the body ends here, an error if not.
		var probe [1]byte
		n, err := b.ReadCloser.Read(probe[:])
		if n > 0 {
			return 0, errAnswerTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
