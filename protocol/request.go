package protocol

// Request is an API request: one type per verb, sent as JSON to
// APISubject(req.Verb()). Only this package's request types implement it.
type Request interface {
	// Verb returns the API verb the request is for.
	Verb() string
	// Validate checks every field, as DecodeRequest does.
	Validate() *Error
	isRequest()
}

// DecodeRequest decodes and validates an API request of type T. It refuses
// an empty body, a body over MaxRequestBytes (CodePayloadTooLarge), invalid
// UTF-8, malformed JSON, trailing data, unknown fields, a "v" other than
// Version (CodeUnsupportedVersion), and whatever T's Validate refuses; the
// code is CodeBadRequest unless said otherwise. On failure it returns the
// zero T.
func DecodeRequest[T Request](data []byte) (T, *Error) {
	return decodeValid[T](data, MaxRequestBytes)
}

// EncodeRequest validates req and encodes it, failing on what DecodeRequest
// would refuse.
func EncodeRequest(req Request) ([]byte, *Error) {
	return encodeValid(req, MaxRequestBytes)
}

// checkTarget validates the fields that address one asset's partition in a
// request: the version, the pipeline and asset names, and the partition,
// where "" means DefaultPartition.
func checkTarget(v int, pipeline, asset, partition string) *Error {
	if err := checkVersion(v); err != nil {
		return err
	}
	if err := checkName("pipeline", pipeline); err != nil {
		return err
	}
	if err := checkName("asset", asset); err != nil {
		return err
	}
	return checkPartition("partition", partition, true)
}
