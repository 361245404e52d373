//go:build faults

package faults

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nats-io/nats.go/jetstream"
)

// callWait bounds each read the checks make.
const callWait = 10 * time.Second

// readRecords reads every record of keys from the materializations bucket
// directly. A key that is absent is left out; a read that fails is an
// error for that key.
func readRecords(js jetstream.JetStream, keys []string) (map[string]*flowstone.Materialization, map[string]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	kv, err := js.KeyValue(ctx, protocol.MaterializationsBucket)
	if err != nil {
		return nil, nil, fmt.Errorf("open bucket %s: %w", protocol.MaterializationsBucket, err)
	}
	recs, errs := map[string]*flowstone.Materialization{}, map[string]error{}
	for _, k := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), callWait)
		e, err := kv.Get(ctx, k)
		cancel()
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			errs[k] = err
			if len(errs) > 20 && len(recs) == 0 {
				return recs, errs, fmt.Errorf("bucket %s unreadable: %w", protocol.MaterializationsBucket, err)
			}
		default:
			rec, err := bridge.UnmarshalRecord(e.Value())
			if err != nil {
				errs[k] = err
				continue
			}
			recs[k] = rec
		}
	}
	return recs, errs, nil
}

// objects reads result bytes back from where a record says they are,
// with the stores' own clients (not the fleet's code), to check them.
type objects struct {
	js      jetstream.JetStream
	fileDir string
	s3      *minio.Client
}

func newObjects(f *fleet) (*objects, error) {
	o := &objects{js: f.js, fileDir: f.fileDir}
	if f.s3 != nil {
		c, err := minio.New(f.s3.endpoint, &minio.Options{Creds: credentials.NewStaticV4(f.s3.access, f.s3.secret, ""), Region: s3Region})
		if err != nil {
			return nil, err
		}
		o.s3 = c
	}
	return o, nil
}

// sum returns the SHA-256 (hex) of the bytes rec points to.
func (o *objects) sum(rec *flowstone.Materialization) (string, error) {
	if rec.Value.Storage == flowstone.InlineStorage {
		return hexSum(rec.Value.Inline), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	var b []byte
	var err error
	switch rec.Value.Storage {
	case "jetstream":
		var obs jetstream.ObjectStore
		if obs, err = o.js.ObjectStore(ctx, protocol.ResultsBucket); err == nil {
			b, err = obs.GetBytes(ctx, rec.Value.ObjectKey)
		}
	case "s3":
		if o.s3 == nil {
			return "", errors.New("record says s3, but the fleet has no S3 server")
		}
		var obj *minio.Object
		if obj, err = o.s3.GetObject(ctx, s3Bucket, rec.Value.ObjectKey, minio.GetObjectOptions{}); err == nil {
			b, err = io.ReadAll(obj)
			obj.Close()
		}
	case "file":
		b, err = o.readFile(rec.Value.ObjectKey)
	default:
		return "", fmt.Errorf("unknown storage %q", rec.Value.Storage)
	}
	if err != nil {
		return "", err
	}
	return hexSum(b), nil
}

// fileTrailer is the file store's trailer: "FLOWSTN1", length, SHA-256.
const fileTrailer = 48

// readFile reads an object of the file store: each key segment a
// directory, the last one the file with "@" appended, the bytes followed
// by the trailer (see objectstore/filestore's package doc). The trailer's
// own checksum must match the bytes too.
func (o *objects) readFile(key string) ([]byte, error) {
	if o.fileDir == "" {
		return nil, errors.New("record says file, but the fleet has no file store")
	}
	b, err := os.ReadFile(filepath.Join(o.fileDir, filepath.FromSlash(key)) + "@")
	if err != nil {
		return nil, err
	}
	if len(b) < fileTrailer || !strings.HasPrefix(string(b[len(b)-fileTrailer:]), "FLOWSTN1") {
		return nil, errors.New("no file store trailer")
	}
	data, trailer := b[:len(b)-fileTrailer], b[len(b)-fileTrailer:]
	if sum := sha256.Sum256(data); string(sum[:]) != string(trailer[16:]) {
		return nil, errors.New("the file's trailer checksum does not match its bytes")
	}
	return data, nil
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
