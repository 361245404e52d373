package filestore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/flowstone-go/flowstone/objectstore"
)

const (
	// objectSuffix ends every object file's name. It cannot occur in a key,
	// so no directory is ever named like an object file.
	objectSuffix = "@"
	// tempPattern names Put's temporary files. "+" cannot start a mapped
	// segment, so they never collide with objects or directories.
	tempPattern = "+tmp-*"
	// maxSegment is the longest key segment kept as is.
	maxSegment = 200
	// hashedPrefix is how much of a long segment stays readable.
	hashedPrefix = 64
)

// objectPath maps a key to its file below dir (an absolute, clean path).
func objectPath(dir, key string) (string, error) {
	if err := objectstore.ValidKey(key); err != nil {
		return "", err
	}
	segs := strings.Split(key, "/")
	parts := make([]string, 0, len(segs)+1)
	parts = append(parts, dir)
	for _, seg := range segs {
		parts = append(parts, segmentName(seg))
	}
	parts[len(parts)-1] += objectSuffix
	p := filepath.Join(parts...)
	// ValidKey already rules out traversal; refuse anyway should a future
	// change to the key alphabet let one through.
	rel, err := filepath.Rel(dir, p)
	if err != nil || !filepath.IsLocal(rel) || strings.Count(rel, string(filepath.Separator)) != len(segs)-1 {
		return "", fmt.Errorf("%w: %q does not map to a path inside the store", objectstore.ErrInvalidKey, key)
	}
	return p, nil
}

// segmentName keeps short segments and shortens long ones deterministically.
func segmentName(seg string) string {
	if len(seg) <= maxSegment {
		return seg
	}
	sum := sha256.Sum256([]byte(seg))
	return seg[:hashedPrefix] + "+" + hex.EncodeToString(sum[:])
}
