package jskv

// FastWrites reports whether s writes with core-NATS requests rather than
// through jetstream.KeyValue.
func FastWrites(s *Store) bool { return s.fast != nil }

// WriteBatches reports how many batches the fast writer has sent and how
// many writes they held.
func WriteBatches(s *Store) (batches, writes uint64) {
	s.fast.mu.Lock()
	defer s.fast.mu.Unlock()
	return s.fast.sentBatches, s.fast.sentWrites
}

// DropReplies stops the fast writer's reply subscription, as if every
// reply were lost; the returned func subscribes again.
func DropReplies(s *Store) (restore func() error) {
	f := s.fast
	f.sub.Unsubscribe()
	return func() error {
		sub, err := f.nc.Subscribe(f.inbox+"*", f.onReply)
		if err == nil {
			err = f.nc.Flush()
		}
		f.sub = sub
		return err
	}
}
