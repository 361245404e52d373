// Package filestore keeps objects as files in a directory, for one machine
// or a shared POSIX filesystem.
//
// # Layout
//
// Each key segment becomes a path segment under the store's directory; the
// last one names the object's file and gets the suffix "@", so the object
// "a" and the objects below "a/" can coexist ("a@" is a file, "a" a
// directory). Keys are checked with objectstore.ValidKey and the resulting
// path is checked to stay inside the directory. A segment longer than 200
// bytes, which would break the 255-byte name limit of ext4 and most other
// filesystems once suffixed, is replaced by its first 64 bytes, "+" and the
// hex SHA-256 of the whole segment: deterministic, and never equal to a
// short segment because "+" cannot occur in keys. On a case-insensitive
// filesystem keys that differ only in case share a file.
//
// # File format
//
// An object file holds the object's bytes followed by a 48-byte trailer:
// the magic "FLOWSTN1", the object's length (8 bytes, big-endian) and its
// SHA-256 (32 bytes). Keeping the checksum in the same file means one rename
// publishes bytes and checksum together, with no sidecar to fall out of step
// and no dependence on extended attributes. Get verifies the length when it
// opens the file and the SHA-256 when the reader reaches the end.
//
// # Atomicity and durability
//
// Put writes to a temporary file named "+tmp-*" in the object's directory,
// fsyncs it, renames it over the object's file and fsyncs the directory, so
// readers see the old object or the new one and a crash leaves one of them.
// A reader keeps the version it opened even if it is replaced meanwhile.
// Temporary files left by a crash can be deleted while no Put runs. Delete
// removes directories it leaves empty.
package filestore
