package jskv

// FastWrites reports whether s writes with core-NATS requests rather than
// through jetstream.KeyValue.
func FastWrites(s *Store) bool { return s.fast != nil }
