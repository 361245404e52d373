package protocol

// Limits every peer enforces. They bound what one message can cost a
// receiver; raising one is a protocol change (peers must agree).
const (
	// MaxRequestBytes is the largest API request body accepted: 1 MiB, the
	// default NATS max_payload. Larger requests get CodePayloadTooLarge.
	MaxRequestBytes = 1 << 20

	// MaxMessageBytes is the largest reply, task, completion, manifest,
	// event batch or scheduled run accepted or produced: 1 MiB, the default
	// NATS max_payload.
	MaxMessageBytes = 1 << 20

	// MaxHeaderBytes is kept free under MaxMessageBytes when a task or a
	// completion is encoded: the server's max_payload counts the headers
	// a message travels with too (its Nats-Msg-Id, a batch header).
	// Receivers accept up to MaxMessageBytes.
	MaxHeaderBytes = 1 << 10

	// MaxPartitionBytes is the longest partition, in bytes of UTF-8.
	MaxPartitionBytes = 4096

	// InlineValueLimit is the largest stored result, in bytes, that a get
	// reply carries inline; larger results are fetched from the object
	// store by ObjectKey, or from a copy staged in StagingBucket for a
	// client that cannot reach that store (GetRequest.Stage).
	InlineValueLimit = 256 << 10
	// InlineResultLimit is the largest result, in bytes, kept inside its
	// materialization record (and tasks and completions) instead of the
	// object store: small results cost no object write at all.
	InlineResultLimit = 4096

	// MaxBackfillPartitions is the most partitions one backfill request may
	// name. The request must also fit MaxRequestBytes, which for ten-byte
	// dates allows about 80,000.
	MaxBackfillPartitions = 100_000

	// MaxBackfillParallel is the most partitions a backfill may run at
	// once (BackfillRequest.Parallel): far more than a fleet has slots
	// for (a worker has 64 by default); beyond its slots more only queue.
	MaxBackfillParallel = 1024

	// MaxNameBytes is the longest pipeline, asset or storage name.
	MaxNameBytes = 128

	// MaxIDBytes is the longest run or worker id.
	MaxIDBytes = 128

	// MaxTaskIDBytes is the longest task id (room for what TaskID builds).
	MaxTaskIDBytes = 512

	// MaxObjectKeyBytes is the longest object key, as the object stores
	// accept it.
	MaxObjectKeyBytes = 1024

	// MaxEventBatch is the most events one EventBatch may carry.
	MaxEventBatch = 256

	// MaxPriority is the highest priority; 0 is the lowest and the default.
	MaxPriority = 3
)

// DefaultPartition is the partition of unpartitioned assets, and the one an
// empty partition in a request means.
const DefaultPartition = "default"
