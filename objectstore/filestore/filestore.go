package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/internal/integrity"
)

// copyBufferSize is the write size of Put: large enough that the per-call
// overhead vanishes, small enough to keep concurrent Puts cheap.
const copyBufferSize = 256 << 10

// Store keeps objects as files below a directory. It is safe for concurrent
// use, also by several processes sharing the directory.
type Store struct {
	dir string
}

var _ objectstore.Store = (*Store)(nil)

// New opens the store kept in dir, creating the directory if needed.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("filestore: no directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: resolve %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("filestore: create the store directory: %w", err)
	}
	return &Store{dir: abs}, nil
}

// Name returns "file".
func (s *Store) Name() string { return "file" }

// Dir returns the absolute directory the store keeps its files in.
func (s *Store) Dir() string { return s.dir }

// Put writes the object to a temporary file and renames it into place once
// it is complete and synced to disk.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (objectstore.Info, error) {
	p, err := objectPath(s.dir, key)
	if err != nil {
		return objectstore.Info{}, err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return objectstore.Info{}, fmt.Errorf("filestore: put %q: %w", key, err)
	}
	info, err := s.write(ctx, p, key, r, size)
	if err != nil {
		return objectstore.Info{}, fmt.Errorf("filestore: put %q: %w", key, err)
	}
	return info, nil
}

func (s *Store) write(ctx context.Context, p, key string, r io.Reader, size int64) (objectstore.Info, error) {
	dir := filepath.Dir(p)
	f, err := createTemp(dir)
	if err != nil {
		return objectstore.Info{}, err
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	src := integrity.NewSource(ctx, r, size)
	// Hide ReadFrom, which would fall back to a 32 KiB buffer.
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, src, make([]byte, copyBufferSize)); err != nil {
		return objectstore.Info{}, err
	}
	t := trailer{size: src.Len(), sum: src.Digest()}
	if _, err := f.Write(t.encode()); err != nil {
		return objectstore.Info{}, err
	}
	if err := f.Chmod(0o644); err != nil {
		return objectstore.Info{}, err
	}
	if err := f.Sync(); err != nil {
		return objectstore.Info{}, err
	}
	if err := f.Close(); err != nil {
		return objectstore.Info{}, err
	}
	// A Put canceled while it was syncing must not publish.
	if err := integrity.ContextErr(ctx); err != nil {
		return objectstore.Info{}, err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return objectstore.Info{}, err
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return objectstore.Info{}, fmt.Errorf("stored, but not yet durable: %w", err)
	}
	return t.info(key), nil
}

// createTemp makes a temporary file in dir, creating dir as needed. A
// concurrent Delete may remove dir once it is empty, between our MkdirAll
// and CreateTemp: then try again.
func createTemp(dir string) (*os.File, error) {
	for attempt := 1; ; attempt++ {
		err := os.MkdirAll(dir, 0o755)
		if err == nil {
			var f *os.File
			if f, err = os.CreateTemp(dir, tempPattern); err == nil {
				return f, nil
			}
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 10 {
			return nil, err
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Get opens the object's file. The returned reader keeps reading the
// version it opened even if a Put replaces it meanwhile.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, objectstore.Info, error) {
	f, t, err := s.open(ctx, key)
	if err != nil {
		return nil, objectstore.Info{}, err
	}
	info := t.info(key)
	body := &sectionFile{SectionReader: io.NewSectionReader(f, 0, t.size), f: f}
	return integrity.NewReader(body, key, info.Size, info.SHA256), info, nil
}

// Stat reads the object's trailer.
func (s *Store) Stat(ctx context.Context, key string) (objectstore.Info, error) {
	f, t, err := s.open(ctx, key)
	if err != nil {
		return objectstore.Info{}, err
	}
	f.Close()
	return t.info(key), nil
}

func (s *Store) open(ctx context.Context, key string) (*os.File, trailer, error) {
	p, err := objectPath(s.dir, key)
	if err != nil {
		return nil, trailer{}, err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return nil, trailer{}, fmt.Errorf("filestore: %q: %w", key, err)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, trailer{}, fmt.Errorf("filestore: %q: %w", key, objectstore.ErrNotFound)
	}
	if err != nil {
		return nil, trailer{}, fmt.Errorf("filestore: %q: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, trailer{}, fmt.Errorf("filestore: %q: %w", key, err)
	}
	t, err := readTrailer(f, st.Size(), key)
	if err != nil {
		f.Close()
		return nil, trailer{}, err
	}
	return f, t, nil
}

// Delete removes the object's file and the directories that leaves empty.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := objectPath(s.dir, key)
	if err != nil {
		return err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return fmt.Errorf("filestore: delete %q: %w", key, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filestore: delete %q: %w", key, err)
	}
	// Removing a directory fails while it holds anything, including a
	// concurrent Put's temporary file, so this never removes live data.
	for d := filepath.Dir(p); d != s.dir; d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return nil
}

// sectionFile reads the object's bytes, without the trailer, and closes
// the file.
type sectionFile struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionFile) Close() error { return s.f.Close() }
