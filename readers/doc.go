// Package readers holds the item readers FlowStone ships for scatters fed
// from a source (flowstone.ScatterFrom): a slice, the keys of a key/value
// store (a JetStream KV bucket through kv/jskv, or any kv.Store), the
// messages of a JetStream stream, and the objects under an S3 prefix.
// Each keeps a checkpoint a restarted scatter resumes from.
package readers
