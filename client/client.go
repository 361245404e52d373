package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/objectstore/jsstore"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// Client speaks to a FlowStone fleet. It is safe for concurrent use.
type Client struct {
	nc    *nats.Conn
	owned bool // Connect opened nc, so Close closes it
	cfg   config
	// refused hears of the publishes the server refused (Connect's
	// clients only).
	refused *refusals
	// results and staging read the fleet's JetStream object stores
	// (protocol.ResultsBucket, protocol.StagingBucket) with message gets.
	results, staging *jsstore.Reader
}

// Connect dials the NATS server at url (a comma-separated list for a
// cluster) and returns a client on that connection, which Close closes.
// Credentials and TLS go in WithNATSOptions (nats.UserInfo,
// nats.UserCredentials, nats.RootCAs, nats.ClientCert, ...). A server that
// cannot be reached, or whose TLS or authentication fails, is an
// *flowstone.Error of TypeUnavailable that says what to do.
//
// A client connected so needs only the client role's permissions
// (deploy/nats.conf): the API verbs, message gets on the runs bucket and
// the result buckets, and subscriptions to its inbox, events and record
// updates. Should the server refuse one of its publishes or subscriptions,
// the call fails at once with a TypeConfigError naming the subject,
// instead of waiting for its timeout.
func Connect(url string, opts ...Option) (*Client, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	// Subscriptions the server refuses fail when read, and refused
	// publishes end the calls waiting on them (see refusals).
	o := nats.GetDefaultOptions()
	o.Servers = splitURLs(url)
	for _, opt := range append([]nats.Option{nats.Name("flowstone-client"), nats.PermissionErrOnSubscribe(true)}, cfg.natsOpts...) {
		if err := opt(&o); err != nil {
			return nil, &flowstone.Error{Type: flowstone.TypeConfigError, Message: "client.WithNATSOptions: " + err.Error()}
		}
	}
	ref := newRefusals()
	theirs := o.AsyncErrorCB
	o.AsyncErrorCB = func(nc *nats.Conn, sub *nats.Subscription, err error) {
		ref.heard(err)
		if theirs != nil {
			theirs(nc, sub, err)
		}
	}
	nc, err := o.Connect()
	if err != nil {
		return nil, connectError(url, err, o.TLSConfig != nil && len(o.TLSConfig.Certificates) > 0 || o.TLSCertCB != nil)
	}
	c := newClient(nc, cfg)
	c.refused = ref
	c.owned = true
	return c, nil
}

// New returns a client on an open NATS connection, which stays the
// caller's: Close does not close it.
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, &flowstone.Error{Type: flowstone.TypeConfigError, Message: "client.New needs a NATS connection; use client.Connect to dial one"}
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newClient(nc, cfg), nil
}

func newClient(nc *nats.Conn, cfg config) *Client {
	return &Client{nc: nc, cfg: cfg,
		results: jsstore.NewReader(nc, protocol.ResultsBucket), staging: jsstore.NewReader(nc, protocol.StagingBucket)}
}

// Conn returns the client's NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Close closes the NATS connection if Connect opened it. Calls in flight
// fail with TypeUnavailable.
func (c *Client) Close() {
	if c.owned {
		c.nc.Close()
	}
}

// splitURLs splits a comma-separated server list as nats.Connect does.
func splitURLs(url string) []string {
	urls := strings.Split(url, ",")
	for i, u := range urls {
		urls[i] = strings.TrimSuffix(strings.TrimSpace(u), "/")
	}
	return urls
}

// connectError explains why Connect could not connect to url: no server,
// TLS that failed one way or the other, or credentials refused. withCert
// tells whether the client presented a certificate.
func connectError(url string, err error, withCert bool) error {
	hint := ": start a fleet (fsctl dev, or cmd/coordinator with NATS) or point --server / NATS_URL at one"
	var unknownCA x509.UnknownAuthorityError
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &unknownCA) || errors.As(err, &certErr) && errors.As(certErr.Err, &unknownCA):
		hint = ": the server's certificate is not signed by a CA this client trusts; give the CA that signed it (fsctl --tls-ca, NATS_TLS_CA; nats.RootCAs)"
	case errors.As(err, &hostErr):
		hint = ": the server's certificate is not valid for the address dialled; connect by a name or IP address the certificate lists"
	case errors.Is(err, nats.ErrSecureConnRequired):
		hint = ": the server requires TLS; give the CA that signed its certificate (fsctl --tls-ca, NATS_TLS_CA; nats.RootCAs)"
	case errors.Is(err, nats.ErrSecureConnWanted):
		hint = ": the server does not speak TLS; connect without --tls-ca and a client certificate, or enable TLS on the server"
	case refusedCertificate(err) && !withCert:
		hint = ": the server requires a client certificate (mutual TLS); give one signed by a CA the server trusts (fsctl --tls-cert and --tls-key, NATS_TLS_CERT and NATS_TLS_KEY; nats.ClientCert)"
	case refusedCertificate(err):
		hint = ": the server refused this client's certificate; give one signed by a CA the server trusts (fsctl --tls-cert and --tls-key)"
	case errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked):
		hint = ": the server refused the credentials; give the user and password of a role (fsctl --user and --password, NATS_USER and NATS_PASSWORD) or a credentials file (--creds, NATS_CREDS)"
	}
	return &flowstone.Error{Type: flowstone.TypeUnavailable,
		Message: "cannot connect to NATS at " + redact(url) + ": " + err.Error() + hint,
		Details: map[string]any{"server": redact(url), "cause": err.Error()}}
}

// refusedCertificate reports the server's refusal of the client's
// certificate, or of its lack of one: a TLS alert, or the connection
// closed right after the handshake (with TLS 1.3 the client learns of the
// refusal only when it next reads or writes, and may miss the alert).
func refusedCertificate(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") ||
		strings.Contains(msg, "closed by remote after TLS handshake")
}
