// Package s3store keeps objects in an S3 bucket through minio-go: AWS S3,
// MinIO, versitygw, Ceph RGW and other S3-compatible servers.
//
// # Checksums
//
// Every object carries its SHA-256 as user metadata
// (x-amz-meta-flowstone-sha256), written in the same request that makes the
// object visible, so readers never see bytes without their checksum or a
// checksum of other bytes. Get reads bytes and metadata from one GET
// response and verifies them at EOF. An object without the metadata, such as
// one uploaded by another tool, fails Get with objectstore.ErrChecksum.
//
// # Small and large objects
//
// The SHA-256 of a stream of unknown length is known only at its end, but S3
// takes metadata when an upload starts. Put therefore reads up to
// Config.PartSize bytes first:
//
//   - If the object ends within them, it is sent in one PUT with its
//     checksum: one request, atomic.
//   - Otherwise the stream is uploaded by multipart upload, one part in
//     memory at a time, under a staging name <Prefix>~staging/<random>,
//     hashing as it goes. Then a server-side copy (CopyObject, or a
//     multipart copy above 5 GiB) publishes it under its key with the
//     checksum as metadata, atomically, and the staged copy is deleted.
//     The data crosses the network once; the server copies it once more.
//
// Memory per Put is thus about two parts (the staging buffer and minio-go's
// part buffer), and objects can reach 10,000 parts (156 GiB at the default
// 16 MiB PartSize). "~" cannot occur in keys, so staged names never collide
// with objects. A crash can leave staged objects and incomplete multipart
// uploads behind: give the bucket lifecycle rules that expire
// "<Prefix>~staging/" and abort incomplete multipart uploads after a day.
//
// # Deadlines and faults
//
// No call waits for the server without a limit, whether or not the
// caller's context has a deadline (a shorter deadline still wins). Requests
// whose length does not depend on the object (Stat, Delete, a Get until the
// server answers) get Config.RequestTimeout; transfers get
// Config.StallTimeout without progress: an upload the server takes no bytes
// of, a Read that receives none. Running out of either is a
// *transient.TimeoutError. Refused and reset connections, a body cut off
// mid-stream, 5xx responses, SlowDown and RequestTimeout are transient as
// well (see package transient); minio-go retries some of them itself
// before the store sees them. The caller's context ending is reported as
// such and is not transient.
//
// A failed Put never leaves a partial object under its key: a small
// object is one PUT, which the server applies whole or not at all, and a
// large one becomes visible only by the final copy. Putting the same bytes
// again after an error is therefore safe, given a reader that can start
// over, such as a new bytes.Reader. A failed large Put may leave a staged
// object or an incomplete multipart upload behind when the server could
// not be told to drop it; the lifecycle rules above remove them.
//
// # Keys
//
// An object's S3 name is Config.Prefix followed by its key; with the prefix
// it must fit S3's 1024 bytes, or the call fails with
// objectstore.ErrInvalidKey. Servers that map names to files, such as
// versitygw's POSIX backend, cannot hold both "a" and "a/b", nor key
// segments over 255 bytes.
package s3store
