package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/internal/integrity"
)

const (
	// checksumMeta is the user metadata key of the object's SHA-256, sent
	// as x-amz-meta-flowstone-sha256.
	checksumMeta = "Flowstone-Sha256"
	// stagingDir holds large objects until they are copied under their
	// key. "~" cannot occur in keys.
	stagingDir = "~staging/"
	// maxObjectName is S3's limit on object names, in bytes.
	maxObjectName = 1024
	// maxSingleCopy is the largest object CopyObject copies in one request.
	maxSingleCopy = 5 << 30
	// probeTimeout bounds New's first request when ctx has no deadline.
	probeTimeout = 10 * time.Second
	// copyRate is the slowest server-side copy the time limit of a large
	// Put's copy allows for: one second more per 64 MiB.
	copyRate = 64 << 20
)

// Store keeps objects in an S3 bucket. It is safe for concurrent use.
type Store struct {
	cfg    Config
	client *minio.Client
	core   minio.Core
}

var _ objectstore.Store = (*Store)(nil)

// New connects to the bucket cfg names and creates it if it is missing. It
// fails fast, naming endpoint and bucket, when the server cannot be reached
// or refuses the credentials; without a deadline on ctx it gives up after
// 10 seconds.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	transport, err := minio.DefaultTransport(cfg.UseSSL)
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	if cfg.RootCAs != nil {
		transport.TLSClientConfig.RootCAs = cfg.RootCAs
	}
	newClient := func(maxRetries int) (*minio.Client, error) {
		return minio.New(cfg.Endpoint, &minio.Options{
			Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
			Secure:     cfg.UseSSL,
			Region:     cfg.Region,
			Transport:  transport,
			MaxRetries: maxRetries,
		})
	}
	client, err := newClient(0)
	if err != nil {
		return nil, fmt.Errorf("s3store: endpoint %s: %w", cfg.Endpoint, err)
	}
	// The regular client retries a refused connection for seconds; the
	// first request should tell a wrong address at once.
	probe, err := newClient(1)
	if err != nil {
		return nil, fmt.Errorf("s3store: endpoint %s: %w", cfg.Endpoint, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probeTimeout)
		defer cancel()
	}
	if err := ensureBucket(ctx, probe, cfg); err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, client: client, core: minio.Core{Client: client}}, nil
}

func ensureBucket(ctx context.Context, c *minio.Client, cfg Config) error {
	exists, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return bucketError(cfg, "check", err)
	}
	if exists {
		return nil
	}
	err = c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
	if err != nil && minio.ToErrorResponse(err).Code != minio.BucketAlreadyOwnedByYou {
		return bucketError(cfg, "create", err)
	}
	return nil
}

// bucketError explains what failed and what to check. It names endpoint
// and bucket but never the secret key.
func bucketError(cfg Config, op string, err error) error {
	scheme := "http"
	if cfg.UseSSL {
		scheme = "https"
	}
	where := fmt.Sprintf("s3store: %s bucket %q at %s://%s", op, cfg.Bucket, scheme, cfg.Endpoint)
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.AccessDenied || resp.Code == minio.InvalidAccessKeyID || resp.Code == minio.SignatureDoesNotMatch:
		return fmt.Errorf("%s: %s: check Config.AccessKey, Config.SecretKey and the key's permissions: %w", where, resp.Code, err)
	case errors.As(err, new(x509.UnknownAuthorityError)) || errors.As(err, new(*tls.CertificateVerificationError)):
		return fmt.Errorf("%s: the server's certificate is not signed by a trusted CA: give the CA that signed it in Config.RootCAs (the daemons' --s3-ca, S3_CA): %w", where, err)
	case errors.As(err, new(x509.HostnameError)):
		return fmt.Errorf("%s: the server's certificate is not valid for %s: give the endpoint by a name or address it lists: %w", where, cfg.Endpoint, err)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%s: the server speaks http, not https: unset Config.UseSSL (S3_SSL) and Config.RootCAs, or enable TLS on the server: %w", where, err)
	case resp.StatusCode == 0:
		return fmt.Errorf("%s: server unreachable: check Config.Endpoint, Config.UseSSL and that the server runs: %w", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// Name returns "s3".
func (s *Store) Name() string { return "s3" }

// Put uploads the object; see the package documentation for how large
// objects get their checksum.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (objectstore.Info, error) {
	name, err := s.objectName(key)
	if err != nil {
		return objectstore.Info{}, err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return objectstore.Info{}, s.fail(ctx, "put", key, err)
	}
	src := integrity.NewSource(ctx, r, size)
	head, complete, err := readUpTo(src, int(s.cfg.PartSize), size)
	if err != nil {
		return objectstore.Info{}, s.fail(ctx, "put", key, err)
	}
	if !complete {
		return s.putLarge(ctx, key, name, io.MultiReader(bytes.NewReader(head), src), src)
	}
	info := objectstore.Info{Key: key, Size: src.Len(), SHA256: src.Sum()}
	wctx, dog := watch(ctx, "s3 upload", s.cfg.StallTimeout)
	defer dog.stop()
	body := bytes.NewReader(head)
	_, err = s.client.PutObject(wctx, s.cfg.Bucket, name, &seekableUploadBody{uploadBody{body, dog}, body}, info.Size, minio.PutObjectOptions{
		UserMetadata: map[string]string{checksumMeta: info.SHA256},
		PartSize:     s.cfg.PartSize,
	})
	if err != nil {
		return objectstore.Info{}, s.fail(ctx, "put", key, explain(wctx, err))
	}
	return info, nil
}

// putLarge streams body to a staging object, then copies it under name with
// its checksum, which is known only once body is consumed.
func (s *Store) putLarge(ctx context.Context, key, name string, body io.Reader, src *integrity.Source) (objectstore.Info, error) {
	staged := s.cfg.Prefix + stagingDir + rand.Text()
	wctx, dog := watch(ctx, "s3 upload", s.cfg.StallTimeout)
	up, err := s.client.PutObject(wctx, s.cfg.Bucket, staged, &uploadBody{body, dog}, -1, minio.PutObjectOptions{PartSize: s.cfg.PartSize})
	dog.stop()
	if err != nil {
		// minio-go aborts the multipart upload itself, if the server
		// answers; otherwise the bucket's lifecycle rule does.
		return objectstore.Info{}, s.fail(ctx, "put", key, explain(wctx, err))
	}
	defer s.removeStaged(ctx, staged)
	info := objectstore.Info{Key: key, Size: src.Len(), SHA256: src.Sum()}
	if up.Size != info.Size {
		return objectstore.Info{}, fmt.Errorf("s3store: put %q: server stored %d bytes of %d", key, up.Size, info.Size)
	}
	dst := minio.CopyDestOptions{
		Bucket:          s.cfg.Bucket,
		Object:          name,
		ReplaceMetadata: true,
		UserMetadata:    map[string]string{checksumMeta: info.SHA256},
		PartSize:        s.cfg.PartSize,
	}
	from := minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: staged, MatchETag: up.ETag}
	limit := s.cfg.RequestTimeout + time.Duration(info.Size/copyRate)*time.Second
	_, err = transient.Call(ctx, "s3 copy", limit, func(ctx context.Context) (minio.UploadInfo, error) {
		if info.Size <= maxSingleCopy {
			return s.client.CopyObject(ctx, dst, from)
		}
		return s.client.ComposeObject(ctx, dst, from)
	})
	if err != nil {
		return objectstore.Info{}, s.fail(ctx, "put", key, fmt.Errorf("publish the staged upload: %w", err))
	}
	return info, nil
}

// removeStaged deletes a staging object even when ctx is already done, so a
// canceled Put does not leave it behind.
func (s *Store) removeStaged(ctx context.Context, staged string) {
	// A leftover is harmless and expired by the bucket's lifecycle rule.
	_, _ = transient.Call(context.WithoutCancel(ctx), "s3 request", s.cfg.RequestTimeout, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.client.RemoveObject(ctx, s.cfg.Bucket, staged, minio.RemoveObjectOptions{})
	})
}

// Get reads bytes and checksum from a single GET response, so they belong
// to the same version of the object.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, objectstore.Info, error) {
	name, err := s.objectName(key)
	if err != nil {
		return nil, objectstore.Info{}, err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return nil, objectstore.Info{}, s.fail(ctx, "get", key, err)
	}
	// The request's context lives as long as the body: until the server
	// answers the request's limit applies, then the stall limit, to each
	// Read only.
	wctx, dog := watch(ctx, "s3 request", s.cfg.RequestTimeout)
	body, oi, _, err := s.core.GetObject(wctx, s.cfg.Bucket, name, minio.GetObjectOptions{})
	dog.pause()
	if err != nil {
		dog.stop()
		return nil, objectstore.Info{}, s.fail(ctx, "get", key, explain(wctx, err))
	}
	info, err := s.info(key, oi)
	if err != nil {
		body.Close()
		dog.stop()
		return nil, objectstore.Info{}, err
	}
	dog.arm("s3 read", s.cfg.StallTimeout)
	dog.pause()
	return integrity.NewReader(&downloadBody{rc: body, key: key, ctx: wctx, w: dog}, key, info.Size, info.SHA256), info, nil
}

// Stat reads the object's size and checksum with a HEAD request.
func (s *Store) Stat(ctx context.Context, key string) (objectstore.Info, error) {
	name, err := s.objectName(key)
	if err != nil {
		return objectstore.Info{}, err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return objectstore.Info{}, s.fail(ctx, "stat", key, err)
	}
	oi, err := transient.Call(ctx, "s3 request", s.cfg.RequestTimeout, func(ctx context.Context) (minio.ObjectInfo, error) {
		return s.client.StatObject(ctx, s.cfg.Bucket, name, minio.StatObjectOptions{})
	})
	if err != nil {
		return objectstore.Info{}, s.fail(ctx, "stat", key, err)
	}
	return s.info(key, oi)
}

// Delete removes the object; S3 reports success for missing objects too.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.objectName(key)
	if err != nil {
		return err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return s.fail(ctx, "delete", key, err)
	}
	_, err = transient.Call(ctx, "s3 request", s.cfg.RequestTimeout, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.client.RemoveObject(ctx, s.cfg.Bucket, name, minio.RemoveObjectOptions{})
	})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return s.fail(ctx, "delete", key, err)
	}
	return nil
}

func (s *Store) objectName(key string) (string, error) {
	if err := objectstore.ValidKey(key); err != nil {
		return "", err
	}
	name := s.cfg.Prefix + key
	if len(name) > maxObjectName {
		return "", fmt.Errorf("%w: %q with Config.Prefix %q exceeds S3's %d-byte object names", objectstore.ErrInvalidKey, key, s.cfg.Prefix, maxObjectName)
	}
	return name, nil
}

func (s *Store) info(key string, oi minio.ObjectInfo) (objectstore.Info, error) {
	var sum string
	for k, v := range oi.UserMetadata {
		if strings.EqualFold(k, checksumMeta) {
			sum = v
		}
	}
	if !integrity.ValidSum(sum) {
		return objectstore.Info{}, fmt.Errorf("%w: %q has no valid %s metadata (written by another tool?)", objectstore.ErrChecksum, key, checksumMeta)
	}
	return objectstore.Info{Key: key, Size: oi.Size, SHA256: sum}, nil
}

// fail wraps err for the caller: a done context is reported as such, S3's
// NoSuchKey becomes objectstore.ErrNotFound, and errors worth retrying are
// marked for transient.Is.
func (s *Store) fail(ctx context.Context, op, key string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("s3store: %s %q: %w", op, key, err)
		}
		return fmt.Errorf("s3store: %s %q: %w: %w", op, key, integrity.ContextErr(ctx), err)
	}
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey:
		return fmt.Errorf("s3store: %s %q: %w", op, key, objectstore.ErrNotFound)
	case minio.NoSuchBucket:
		return fmt.Errorf("s3store: %s %q: bucket %q does not exist at %s: %w", op, key, s.cfg.Bucket, s.cfg.Endpoint, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// minio-go's or net/http's own limit, not the caller's.
		err = fmt.Errorf("%w (%v)", &transient.TimeoutError{Op: "s3 request"}, err)
	}
	return fmt.Errorf("s3store: %s %q: %w", op, key, markTransient(err))
}

// readUpTo reads r until EOF or limit bytes, whichever comes first, and
// reports whether it reached EOF. It allocates no more than it needs: hint
// is the declared size or -1.
func readUpTo(r io.Reader, limit int, hint int64) ([]byte, bool, error) {
	initial := 64 << 10
	if hint >= 0 && hint < int64(limit) {
		initial = int(hint) + 1 // one more byte to see EOF without growing
	}
	buf := make([]byte, 0, min(initial, limit+1))
	for {
		if len(buf) > limit {
			return buf, false, nil
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(2*cap(buf), limit+1)-len(buf))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, len(buf) <= limit, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}
