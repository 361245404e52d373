package readers

import (
	"context"

	"github.com/flowstone-go/flowstone"
	"github.com/minio/minio-go/v7"
)

// S3Prefix reads the keys of the objects under prefix in an S3 bucket, in
// the listing's (lexical) order. Its checkpoint is the last key read: a
// restarted scatter lists again after it.
func S3Prefix(client *minio.Client, bucket, prefix string) flowstone.ItemReader {
	return &s3Reader{client: client, bucket: bucket, prefix: prefix}
}

type s3Reader struct {
	client *minio.Client
	bucket string
	prefix string
	stop   context.CancelFunc
	list   <-chan minio.ObjectInfo
	last   string
}

func (r *s3Reader) Open(c *flowstone.Context, checkpoint string) error {
	ctx, cancel := context.WithCancel(c.Context())
	r.stop, r.last = cancel, checkpoint
	r.list = r.client.ListObjects(ctx, r.bucket, minio.ListObjectsOptions{Prefix: r.prefix, Recursive: true, StartAfter: checkpoint})
	return nil
}

func (r *s3Reader) Read(_ *flowstone.Context, n int) ([]string, string, bool, error) {
	var items []string
	for len(items) < n {
		obj, ok := <-r.list
		if !ok {
			return items, r.last, true, nil
		}
		if obj.Err != nil {
			return nil, "", false, obj.Err
		}
		items = append(items, obj.Key)
		r.last = obj.Key
	}
	return items, r.last, false, nil
}

func (r *s3Reader) Close() error {
	if r.stop != nil {
		r.stop()
		for range r.list {
		}
	}
	return nil
}
