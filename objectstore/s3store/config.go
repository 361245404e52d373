package s3store

import (
	"cmp"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/flowstone-go/flowstone/objectstore"
)

const (
	// RegionDefault is the region used when Config.Region is empty.
	RegionDefault = "us-east-1"
	// PartSizeDefault is the multipart part size used when Config.PartSize
	// is zero: 16 MiB.
	PartSizeDefault = 16 << 20
	// PartSizeMin is the smallest part size S3 accepts: 5 MiB.
	PartSizeMin = 5 << 20
	// PartSizeMax is the largest part size S3 accepts: 5 GiB.
	PartSizeMax = 5 << 30
	// RequestTimeoutDefault is Config.RequestTimeout when it is zero: 30 s.
	RequestTimeoutDefault = 30 * time.Second
	// StallTimeoutDefault is Config.StallTimeout when it is zero: 30 s.
	StallTimeoutDefault = 30 * time.Second
)

// Config says where the store keeps its objects.
type Config struct {
	// Endpoint is the server's host or host:port, without a scheme, such as
	// "s3.eu-central-1.amazonaws.com" or "127.0.0.1:7070". Defaults to
	// nothing: New fails without it.
	Endpoint string
	// Bucket holds the objects; New creates it if it is missing. Defaults
	// to nothing: New fails without it.
	Bucket string
	// AccessKey identifies the credentials. Defaults to "", which together
	// with an empty SecretKey sends anonymous requests.
	AccessKey string
	// SecretKey signs requests. It never appears in errors. Defaults to "".
	SecretKey string
	// Region is the bucket's region, used for signing and when creating the
	// bucket. Defaults to RegionDefault ("us-east-1").
	Region string
	// UseSSL selects https instead of http. Defaults to false (http), which
	// suits servers on loopback or a private network only.
	UseSSL bool
	// RootCAs are the certificate authorities that verify the server's
	// certificate over https: a private CA's (CAFile reads one from a PEM
	// file). Setting it implies UseSSL. Defaults to nil: the system's
	// roots.
	RootCAs *x509.CertPool
	// Prefix goes in front of every key to form the S3 object name, such as
	// "results/" to share a bucket. It must consist of key characters
	// (see objectstore.ValidKey) and counts against S3's 1024-byte name
	// limit. Defaults to "" (keys at the bucket's root).
	Prefix string
	// PartSize is the size of a multipart upload part, between PartSizeMin
	// and PartSizeMax. Objects up to this size go in a single request; each
	// Put of a larger one holds about two parts in memory. Defaults to
	// PartSizeDefault (16 MiB).
	PartSize uint64
	// RequestTimeout bounds each request whose length does not depend on
	// the object's: Stat, Delete, a Get until the server answers, removing
	// a staged upload; the server-side copy of a large Put gets it plus
	// one second per 64 MiB. It applies whether or not the caller's
	// context has a deadline (a shorter deadline still wins); running out
	// of it is a *transient.TimeoutError. Defaults to RequestTimeoutDefault
	// (30 s).
	RequestTimeout time.Duration
	// StallTimeout bounds a transfer that makes no progress: a Put fails
	// once the server has taken none of its bytes, nor answered, for this
	// long (a multipart part must upload within it), and a Get's reader
	// fails when a Read waited this long for bytes. Time spent reading the
	// caller's source or waiting for the caller to Read does not count.
	// Running out of it is a *transient.TimeoutError. Defaults to
	// StallTimeoutDefault (30 s).
	StallTimeout time.Duration
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.Region = cmp.Or(c.Region, RegionDefault)
	c.PartSize = cmp.Or(c.PartSize, PartSizeDefault)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, RequestTimeoutDefault)
	c.StallTimeout = cmp.Or(c.StallTimeout, StallTimeoutDefault)
	c.UseSSL = c.UseSSL || c.RootCAs != nil
	return c
}

func (c Config) validate() error {
	switch {
	case c.Endpoint == "":
		return errors.New("s3store: Config.Endpoint is empty: give the S3 server's host:port")
	case strings.Contains(c.Endpoint, "://") || strings.Contains(c.Endpoint, "/"):
		return fmt.Errorf("s3store: Config.Endpoint %q: give host:port only, without scheme or path; set Config.UseSSL for https", c.Endpoint)
	case c.Bucket == "":
		return errors.New("s3store: Config.Bucket is empty: name the bucket to keep objects in")
	case c.PartSize < PartSizeMin || c.PartSize > PartSizeMax:
		return fmt.Errorf("s3store: Config.PartSize %d is outside S3's limits [%d, %d]", c.PartSize, PartSizeMin, PartSizeMax)
	case c.RequestTimeout < 0:
		return fmt.Errorf("s3store: Config.RequestTimeout %v is negative: give a limit, or 0 for the default", c.RequestTimeout)
	case c.StallTimeout < 0:
		return fmt.Errorf("s3store: Config.StallTimeout %v is negative: give a limit, or 0 for the default", c.StallTimeout)
	case (c.AccessKey == "") != (c.SecretKey == ""):
		return errors.New("s3store: give both Config.AccessKey and Config.SecretKey, or neither for anonymous access")
	}
	if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		return fmt.Errorf("s3store: Config.Bucket %q: %w", c.Bucket, err)
	}
	if c.Prefix != "" {
		if err := objectstore.ValidKey(c.Prefix + "x"); err != nil {
			return fmt.Errorf("s3store: Config.Prefix %q is not made of key characters and segments: %w", c.Prefix, err)
		}
	}
	return nil
}

// CAFile reads the PEM certificates in path into a pool for
// Config.RootCAs: a private CA's, that signed the S3 server's certificate.
// It fails if the file holds no certificate.
func CAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("s3store: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("s3store: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}
