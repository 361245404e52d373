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
// # Keys
//
// An object's S3 name is Config.Prefix followed by its key; with the prefix
// it must fit S3's 1024 bytes, or the call fails with
// objectstore.ErrInvalidKey. Servers that map names to files, such as
// versitygw's POSIX backend, cannot hold both "a" and "a/b", nor key
// segments over 255 bytes.
package s3store
