package flowstone

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowstone-go/flowstone/protocol"
)

// MaxPartitionLen is the longest partition key accepted, in bytes.
const MaxPartitionLen = 4096

// Partitioning is an asset's partition scheme: it names the scheme (AssetInfo
// reports it) and rejects keys that do not belong to it.
type Partitioning interface {
	// Kind names the scheme: "date", "hour", "static", ...
	Kind() string
	// Validate returns nil if key is a partition of this scheme.
	Validate(key string) error
}

type timePartitioning struct {
	kind, layout, example string
}

func (p timePartitioning) Kind() string { return p.kind }

func (p timePartitioning) Validate(key string) error {
	if t, err := time.Parse(p.layout, key); err != nil || t.Format(p.layout) != key {
		return newError(TypeBadRequest, map[string]any{"partition": key, "partitioned_by": p.kind},
			"partition %q is not a %s partition: use the form %s", key, p.kind, p.example)
	}
	return nil
}

// Layouts of the time partitions' text forms.
const (
	DateLayout = "2006-01-02"
	HourLayout = "2006-01-02T15"
)

var (
	// Daily partitions by calendar day: keys like "2025-01-15".
	Daily Partitioning = timePartitioning{"date", DateLayout, "2025-01-15"}
	// Hourly partitions by hour: keys like "2025-01-15T09".
	Hourly Partitioning = timePartitioning{"hour", HourLayout, "2025-01-15T09"}
)

type anyKeyPartitioning struct{}

func (anyKeyPartitioning) Kind() string          { return "any" }
func (anyKeyPartitioning) Validate(string) error { return nil }

// AnyKey partitions by any key (customer ids, tenants, file names): every
// partition text is accepted, so every caller can create a partition.
// Declare it on an asset that needs keys not known in advance; an asset
// declared without PartitionedBy (and with no partitioned asset upstream
// or downstream of it) has the one partition DefaultPartition and refuses
// any other key.
var AnyKey Partitioning = anyKeyPartitioning{}

type staticPartitioning []string

func (p staticPartitioning) Kind() string { return "static" }

func (p staticPartitioning) Validate(key string) error {
	if slices.Contains(p, key) {
		return nil
	}
	return newError(TypeBadRequest, map[string]any{"partition": key, "partitioned_by": "static", "allowed": []string(p)},
		"partition %q is not one of [%s]", key, strings.Join(p, " "))
}

// Static partitions by a fixed set of keys (regions, customers, ...).
func Static(keys ...string) Partitioning { return staticPartitioning(slices.Clone(keys)) }

// DatePartition is the key of t's day in Daily's form ("2025-01-15").
func DatePartition(t time.Time) string { return t.Format(DateLayout) }

// HourPartition is the key of t's hour in Hourly's form ("2025-01-15T09").
func HourPartition(t time.Time) string { return t.Format(HourLayout) }

// Dates returns the day keys from from to to, both included (none if to is
// before from).
func Dates(from, to time.Time) []string {
	from = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	to = time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, time.UTC)
	var out []string
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		out = append(out, DatePartition(d))
	}
	return out
}

// Hours returns the hour keys from from to to, both included.
func Hours(from, to time.Time) []string {
	from = from.UTC().Truncate(time.Hour)
	to = to.UTC().Truncate(time.Hour)
	var out []string
	for h := from; !h.After(to); h = h.Add(time.Hour) {
		out = append(out, HourPartition(h))
	}
	return out
}

// MaxDateRangeDays is the most days a date range (DateRange,
// ParseDateRange) may span: protocol.MaxBackfillPartitions, the most
// partitions a backfill or invalidate request to the fleet may name
// (about 273 years). A longer range is refused from its two ends alone,
// before any key is built.
const MaxDateRangeDays = protocol.MaxBackfillPartitions

// dateRangeDays counts the days from from to to, both included (0 if to is
// before from), from their calendar dates, without building a key.
func dateRangeDays(from, to time.Time) int64 {
	f := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	t := time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, time.UTC)
	if t.Before(f) {
		return 0
	}
	return (t.Unix()-f.Unix())/(24*60*60) + 1
}

// dateKeys is Dates for a range checked first: it must not end before it
// starts, nor span more than MaxDateRangeDays days.
func dateKeys(from, to time.Time) ([]string, error) {
	fk, tk := DatePartition(from), DatePartition(to)
	details := map[string]any{"from": fk, "to": tk}
	n := dateRangeDays(from, to)
	if n == 0 {
		return nil, newError(TypeBadRequest, details, "date range ends (%s) before it starts (%s)", tk, fk)
	}
	if n > MaxDateRangeDays {
		details["days"], details["limit"] = n, MaxDateRangeDays
		return nil, newError(TypeBadRequest, details, "date range %s..%s spans %d days; the limit is %d: split it", fk, tk, n, MaxDateRangeDays)
	}
	return Dates(from, to), nil
}

// ParseDateRange reads "2025-01-01..2025-01-31" (both ends included) into
// day keys. A range over MaxDateRangeDays days is a BadRequest error,
// found before any key is built.
func ParseDateRange(s string) ([]string, error) {
	from, to, ok := strings.Cut(s, "..")
	if !ok {
		return nil, newError(TypeBadRequest, map[string]any{"range": s}, "date range %q: use FROM..TO, like 2025-01-01..2025-01-31", s)
	}
	f, err1 := time.Parse(DateLayout, from)
	t, err2 := time.Parse(DateLayout, to)
	if err1 != nil || err2 != nil {
		return nil, newError(TypeBadRequest, map[string]any{"range": s}, "date range %q: both ends must be dates like 2025-01-31", s)
	}
	if t.Before(f) {
		return nil, newError(TypeBadRequest, map[string]any{"range": s}, "date range %q ends before it starts", s)
	}
	if n := dateRangeDays(f, t); n > MaxDateRangeDays {
		return nil, newError(TypeBadRequest, map[string]any{"range": s, "days": n, "limit": MaxDateRangeDays},
			"date range %q spans %d days; the limit is %d: split it", s, n, MaxDateRangeDays)
	}
	return Dates(f, t), nil
}

// JoinPartition builds a multi-dimensional key ("us_east|2025-01-15").
func JoinPartition(parts ...string) string { return strings.Join(parts, "|") }

// longTokenAfter is the longest key encoded reversibly in a token; longer
// keys are named by their hash (the record keeps the text).
const longTokenAfter = 96

// PartitionToken encodes a partition key as a token that is safe in KV keys,
// NATS subjects, object keys and file names: base64url (no padding) for keys
// up to 96 bytes, "=" and the SHA-256 in hex for longer ones. Distinct keys
// give distinct tokens. The empty key, which no call accepts as a
// partition, is "=" so that even it never yields an empty key segment.
func PartitionToken(key string) string {
	if key == "" {
		return "="
	}
	if len(key) <= longTokenAfter {
		return base64.RawURLEncoding.EncodeToString([]byte(key))
	}
	sum := sha256.Sum256([]byte(key))
	return "=" + hex.EncodeToString(sum[:])
}

// validPartitionText rejects text that is not UTF-8.
func validPartitionText(key string) error {
	if err := checkPartition(key); err != nil {
		return err
	}
	if !utf8.ValidString(key) {
		return newError(TypeBadRequest, nil, "partition key is not valid UTF-8")
	}
	return nil
}
