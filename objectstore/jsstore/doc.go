// Package jsstore keeps objects in a JetStream object store bucket, beside
// the fleet's other JetStream state.
//
// The bucket is a stream ("OBJ_<bucket>") holding each object as chunk
// messages plus one metadata message that names them; the metadata message
// is published last and so commits the object atomically. Every replica
// holds the whole bucket, so keep it for small and medium results and put
// large ones in S3.
//
// # Checksums
//
// Put records the SHA-256 of every object in its metadata
// (ObjectInfo.Digest, "SHA-256=<base64url>", as NATS clients expect), hashing
// the chunks as it streams them; the digest is known only at the end, which
// is why it lives in the metadata message written last. Info.SHA256 is that
// digest in hex. Get reads the chunks itself and verifies length and digest
// when the reader reaches the end.
//
// Put and Get speak the object store's wire layout (NATS ADR-20) directly
// rather than through ObjectStore.Put and Get: in nats.go v1.55.0 Put can
// leak a goroutine per call and Get cuts reads off after the JetStream
// default timeout unless ctx has a deadline. Objects stay readable and
// writable by any NATS client.
//
// # Chunks and reads
//
// Objects are chunked into 1 MiB messages by default, which reads about
// three times faster than the NATS default of 128 KiB (capped at the
// server's max_payload; see WithChunkSize). Get streams the chunks through
// an ordered pull consumer with bounded read-ahead, ends with ctx, and has
// no overall time limit, so a slow reader of a large object is not cut off.
//
// Writing a key replaces its chunks: a reader still streaming the previous
// version then fails with ErrObjectChanged (which also matches
// objectstore.ErrNotFound) rather than returning part of it. Get again to
// read the new version.
//
// # Deadlines and faults
//
// No call waits for the server without a limit. Each request (a metadata
// read, a chunk's acknowledgement, the commit, a purge, a reader's
// consumer) gets RequestTimeoutDefault (10 s; WithRequestTimeout), also
// when the caller's context has a later deadline, so a reply lost when the
// server restarts costs one request timeout, not the caller's whole
// deadline. A reader fails when it waited StallTimeoutDefault (30 s;
// WithStallTimeout) for one chunk. Those failures are
// *transient.TimeoutError values; a broken connection, a reconnect and
// the like are marked too, so transient.Is tells a caller what is worth
// retrying. The caller's context ending is reported as such and is not.
//
// A failed Put leaves the key as it was: a version becomes current only by
// its metadata message, and the chunks of a version that did not are
// purged, by the next successful Put of this Store if the server could not
// be reached at once. Putting the same bytes again after an error is
// therefore safe; a Put whose commit may or may not have landed reports an
// error, and the retry simply replaces that version. Retrying needs a
// reader that can start over, such as a new bytes.Reader over the same
// bytes.
package jsstore
