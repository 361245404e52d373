package filestore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/flowstone-go/flowstone/objectstore"
)

const (
	trailerMagic = "FLOWSTN1"
	trailerLen   = len(trailerMagic) + 8 + sha256.Size
)

// trailer is what an object file records after the object's bytes.
type trailer struct {
	size int64
	sum  [sha256.Size]byte
}

func (t trailer) encode() []byte {
	b := make([]byte, 0, trailerLen)
	b = append(b, trailerMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.size))
	return append(b, t.sum[:]...)
}

// readTrailer reads and checks the trailer of an object file of fileSize
// bytes. A damaged or truncated file is ErrChecksum.
func readTrailer(f io.ReaderAt, fileSize int64, key string) (trailer, error) {
	if fileSize < int64(trailerLen) {
		return trailer{}, fmt.Errorf("%w: %q: file of %d bytes is too short for its trailer", objectstore.ErrChecksum, key, fileSize)
	}
	b := make([]byte, trailerLen)
	if _, err := f.ReadAt(b, fileSize-int64(trailerLen)); err != nil {
		return trailer{}, fmt.Errorf("filestore: read trailer of %q: %w", key, err)
	}
	if string(b[:len(trailerMagic)]) != trailerMagic {
		return trailer{}, fmt.Errorf("%w: %q: trailer magic is missing", objectstore.ErrChecksum, key)
	}
	var t trailer
	t.size = int64(binary.BigEndian.Uint64(b[len(trailerMagic):]))
	copy(t.sum[:], b[len(trailerMagic)+8:])
	if want := fileSize - int64(trailerLen); t.size != want {
		return trailer{}, fmt.Errorf("%w: %q: trailer records %d bytes, file holds %d", objectstore.ErrChecksum, key, t.size, want)
	}
	return t, nil
}

func (t trailer) info(key string) objectstore.Info {
	return objectstore.Info{Key: key, Size: t.size, SHA256: hex.EncodeToString(t.sum[:])}
}
