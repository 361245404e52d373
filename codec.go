package flowstone

import (
	"encoding/json"
)

// Codec turns asset values into bytes and back. Results cross the codec in
// every backend, the in-memory one included, so a value that cannot be
// encoded fails in development, not on the fleet.
type Codec interface {
	// Encode returns v's bytes.
	Encode(v any) ([]byte, error)
	// Decode fills the value v points to from data.
	Decode(data []byte, v any) error
}

// JSONCodec is the default codec: encoding/json.
type JSONCodec struct{}

// Encode implements Codec.
func (JSONCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

// Decode implements Codec.
func (JSONCodec) Decode(data []byte, v any) error { return json.Unmarshal(data, v) }
