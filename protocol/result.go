package protocol

// Encoding says how a result's stored bytes represent its value.
type Encoding string

// The encodings.
const (
	// EncodingJSON: the bytes are the value as JSON.
	EncodingJSON Encoding = "json"
	// EncodingRaw: the bytes are the value itself ([]byte results).
	EncodingRaw Encoding = "raw"
)

func (e Encoding) check(field string) *Error {
	if e != EncodingJSON && e != EncodingRaw {
		return fieldErrorf(field, "%s %s is not %q or %q", field, quote(string(e)), EncodingJSON, EncodingRaw)
	}
	return nil
}

// InlineStorage is the Storage of a result kept inside its record.
const InlineStorage = "inline"

// ResultRef locates a stored result and says how to read it. It is embedded
// (its fields flattened) in GetReply, DepRef and Completion.
type ResultRef struct {
	// ObjectKey is the result's key in the object store.
	ObjectKey string `json:"object_key,omitempty"`
	// Storage names the backend holding the object.
	Storage string `json:"storage,omitempty"`
	// Size is the object's length in bytes.
	Size int64 `json:"size,omitempty"`
	// SHA256 is the object's SHA-256, lowercase hex; readers verify it.
	SHA256 string `json:"sha256,omitempty"`
	// Encoding says how the bytes represent the value.
	Encoding Encoding `json:"encoding,omitempty"`
	// Inline holds the result's bytes when they are small (at most
	// InlineResultLimit): no object was stored, ObjectKey is empty and
	// Storage is "inline".
	Inline []byte `json:"inline,omitempty"`
	// ValueRunID is the run that computed the value, where the message
	// does not say it otherwise: a dependency of a task (for the lineage
	// of the result), a completion of a task that found its asset
	// materialized by another run.
	ValueRunID string `json:"value_run_id,omitempty"`
}

func (r ResultRef) validate(prefix string) *Error {
	switch {
	case r.Storage == InlineStorage:
		// The bytes travel in Inline (tasks, completions) or in the
		// message itself (GetReply's value).
		if len(r.Inline) > InlineResultLimit || len(r.Inline) > 0 && int64(len(r.Inline)) != r.Size || r.ObjectKey != "" {
			return fieldErrorf(prefix+"inline", "%sinline holds %d bytes: at most %d, equal to size (%d), and no object_key", prefix, len(r.Inline), InlineResultLimit, r.Size)
		}
	case len(r.Inline) > 0:
		return fieldErrorf(prefix+"inline", "%sinline needs storage %q", prefix, InlineStorage)
	default:
		if err := checkObjectKey(prefix+"object_key", r.ObjectKey); err != nil {
			return err
		}
	}
	if err := checkName(prefix+"storage", r.Storage); err != nil {
		return err
	}
	if err := checkNonNegative(prefix+"size", r.Size); err != nil {
		return err
	}
	if err := checkSHA256(prefix+"sha256", r.SHA256); err != nil {
		return err
	}
	if r.ValueRunID != "" {
		if err := checkID(prefix+"value_run_id", r.ValueRunID); err != nil {
			return err
		}
	}
	return r.Encoding.check(prefix + "encoding")
}

// empty reports whether r locates nothing.
func (r ResultRef) empty() bool {
	return r.ObjectKey == "" && r.Storage == "" && r.Size == 0 && r.SHA256 == "" && r.Encoding == "" && len(r.Inline) == 0 && r.ValueRunID == ""
}
