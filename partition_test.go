package flowstone_test

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestDates(t *testing.T) {
	tests := []struct {
		name     string
		from, to time.Time
		want     []string
	}{
		{"one day", day(2025, 1, 15), day(2025, 1, 15), []string{"2025-01-15"}},
		{"both ends included", day(2025, 1, 30), day(2025, 2, 2), []string{"2025-01-30", "2025-01-31", "2025-02-01", "2025-02-02"}},
		{"leap day", day(2024, 2, 28), day(2024, 3, 1), []string{"2024-02-28", "2024-02-29", "2024-03-01"}},
		{"across a year", day(2024, 12, 31), day(2025, 1, 1), []string{"2024-12-31", "2025-01-01"}},
		{"times of day are ignored", time.Date(2025, 1, 1, 23, 59, 0, 0, time.UTC), time.Date(2025, 1, 2, 0, 1, 0, 0, time.UTC), []string{"2025-01-01", "2025-01-02"}},
		{"reversed is empty", day(2025, 1, 2), day(2025, 1, 1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := flowstone.Dates(tt.from, tt.to); !slices.Equal(got, tt.want) {
				t.Fatalf("Dates = %v, want %v", got, tt.want)
			}
		})
	}
	if n := len(flowstone.Dates(day(2024, 1, 1), day(2024, 12, 31))); n != 366 {
		t.Fatalf("2024 has %d days", n)
	}
	// A local date keeps its calendar day (no shift to UTC's).
	tokyo := time.FixedZone("JST", 9*3600)
	if got := flowstone.Dates(time.Date(2025, 1, 15, 1, 0, 0, 0, tokyo), time.Date(2025, 1, 15, 1, 0, 0, 0, tokyo)); !slices.Equal(got, []string{"2025-01-15"}) {
		t.Fatalf("Dates in JST = %v", got)
	}
}

func TestHours(t *testing.T) {
	from := time.Date(2025, 1, 15, 22, 30, 0, 0, time.UTC)
	to := time.Date(2025, 1, 16, 1, 5, 0, 0, time.UTC)
	want := []string{"2025-01-15T22", "2025-01-15T23", "2025-01-16T00", "2025-01-16T01"}
	if got := flowstone.Hours(from, to); !slices.Equal(got, want) {
		t.Fatalf("Hours = %v, want %v", got, want)
	}
	if got := flowstone.Hours(to, from); len(got) != 0 {
		t.Fatalf("reversed Hours = %v, want none", got)
	}
	if n := len(flowstone.Hours(day(2025, 1, 1), day(2025, 1, 2))); n != 25 {
		t.Fatalf("midnight to midnight gives %d hours, want 25 (both ends)", n)
	}
	for _, h := range flowstone.Hours(from, to) {
		if err := flowstone.Hourly.Validate(h); err != nil {
			t.Fatalf("Hours gave %q, which Hourly rejects: %v", h, err)
		}
	}
}

func TestParseDateRange(t *testing.T) {
	got, err := flowstone.ParseDateRange("2025-01-30..2025-02-02")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"2025-01-30", "2025-01-31", "2025-02-01", "2025-02-02"}; !slices.Equal(got, want) {
		t.Fatalf("range = %v, want %v", got, want)
	}
	if got, err := flowstone.ParseDateRange("2025-01-15..2025-01-15"); err != nil || !slices.Equal(got, []string{"2025-01-15"}) {
		t.Fatalf("one-day range = %v, %v", got, err)
	}
	for _, tc := range []struct{ in, msg string }{
		{"2025-01-31..2025-01-01", "ends before it starts"},
		{"2025-01-01", "FROM..TO"},
		{"2025-01-01-2025-01-31", "FROM..TO"},
		{"yesterday..today", "dates like"},
		{"2025-02-30..2025-03-01", "dates like"},
		{"2025-1-1..2025-1-31", "dates like"},
		{"..", "dates like"},
		{"", "FROM..TO"},
	} {
		_, err := flowstone.ParseDateRange(tc.in)
		fe := wantType(t, err, flowstone.TypeBadRequest)
		if !strings.Contains(fe.Message, tc.msg) {
			t.Fatalf("ParseDateRange(%q): message %q lacks %q", tc.in, fe.Message, tc.msg)
		}
	}
}

func TestPartitionKeysOfTimes(t *testing.T) {
	at := time.Date(2025, 1, 5, 9, 41, 7, 0, time.UTC)
	if got := flowstone.DatePartition(at); got != "2025-01-05" {
		t.Fatalf("DatePartition = %q", got)
	}
	if got := flowstone.HourPartition(at); got != "2025-01-05T09" {
		t.Fatalf("HourPartition = %q", got)
	}
	if err := flowstone.Daily.Validate(flowstone.DatePartition(at)); err != nil {
		t.Fatal(err)
	}
	if err := flowstone.Hourly.Validate(flowstone.HourPartition(at)); err != nil {
		t.Fatal(err)
	}
	if got := flowstone.JoinPartition("us_east", "2025-01-15"); got != "us_east|2025-01-15" {
		t.Fatalf("JoinPartition = %q", got)
	}
}

func TestPartitioningValidate(t *testing.T) {
	tests := []struct {
		scheme flowstone.Partitioning
		kind   string
		good   []string
		bad    []string
	}{
		{flowstone.Daily, "date", []string{"2025-01-15", "2024-02-29", "1999-12-31"},
			[]string{"", "2025-1-15", "2025-01-15T09", "2025-02-30", "2023-02-29", "15-01-2025", "us", " 2025-01-15", "2025-01-15\n"}},
		{flowstone.Hourly, "hour", []string{"2025-01-15T00", "2025-01-15T23"},
			[]string{"", "2025-01-15", "2025-01-15T24", "2025-01-15T9", "2025-01-15 09", "2025-01-15T09:00"}},
		{flowstone.Static("us", "eu", "asia"), "static", []string{"us", "eu", "asia"},
			[]string{"", "US", "africa", "us ", "us|eu"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			if tt.scheme.Kind() != tt.kind {
				t.Fatalf("Kind = %q, want %q", tt.scheme.Kind(), tt.kind)
			}
			for _, k := range tt.good {
				if err := tt.scheme.Validate(k); err != nil {
					t.Fatalf("Validate(%q) = %v", k, err)
				}
			}
			for _, k := range tt.bad {
				fe := wantType(t, tt.scheme.Validate(k), flowstone.TypeBadRequest)
				if fe.Details["partitioned_by"] != tt.kind || !strings.Contains(fe.Message, "partition") {
					t.Fatalf("Validate(%q) error %q / %v does not explain the scheme", k, fe.Message, fe.Details)
				}
			}
		})
	}
	// Static copies its keys: the caller's slice can change afterwards.
	keys := []string{"us", "eu"}
	s := flowstone.Static(keys...)
	keys[0] = "mars"
	if s.Validate("us") != nil || s.Validate("mars") == nil {
		t.Fatal("Static follows later changes to the caller's slice")
	}
}

// checkToken fails unless tok is a usable token for key.
func checkToken(t testing.TB, key, tok string) {
	t.Helper()
	if err := kv.ValidKey("x." + tok); err != nil {
		t.Fatalf("PartitionToken(%q) = %q is not a kv key token: %v", key, tok, err)
	}
	if err := kv.ValidKey(bridge.MaterializationKey("p", "a", key)); err != nil {
		t.Fatalf("MaterializationKey for %q is not a kv key: %v", key, err)
	}
	if err := objectstore.ValidKey("a/" + tok + "/b"); err != nil {
		t.Fatalf("PartitionToken(%q) = %q is not an object key segment: %v", key, tok, err)
	}
	if err := objectstore.ValidKey(bridge.ObjectKey("p", "a", key, "run-1")); err != nil {
		t.Fatalf("ObjectKey for %q is not an object key: %v", key, err)
	}
	if len(tok) == 0 || len(tok) > 128 {
		t.Fatalf("PartitionToken(%q) is %d bytes, want 1..128", key, len(tok))
	}
	if tok != flowstone.PartitionToken(key) {
		t.Fatalf("PartitionToken(%q) is not deterministic", key)
	}
}

var hostileKeys = []string{
	"default", "2025-01-15", "us_east|2025-01-15", "a/b/../../etc/passwd", "..", ".", "*", ">",
	"flowstone.api.>", "with space", "tab\there", "new\nline", "ünïcödé ✓", "%2F", "a.b.c", "=",
	"\x00", "\xff\xfe", strings.Repeat("é", 500), strings.Repeat("x", 96), strings.Repeat("x", 97),
	strings.Repeat("z", 1024), strings.Repeat("z", flowstone.MaxPartitionLen),
}

func TestPartitionToken(t *testing.T) {
	seen := map[string]string{}
	for _, k := range hostileKeys {
		tok := flowstone.PartitionToken(k)
		checkToken(t, k, tok)
		if other, dup := seen[tok]; dup {
			t.Fatalf("keys %q and %q share the token %q", other, k, tok)
		}
		seen[tok] = k
	}
	// Around the switch from reversible tokens to hashes.
	for n := 90; n <= 100; n++ {
		a, b := strings.Repeat("k", n), strings.Repeat("k", n-1)+"l"
		if flowstone.PartitionToken(a) == flowstone.PartitionToken(b) {
			t.Fatalf("two %d-byte keys share a token", n)
		}
		checkToken(t, a, flowstone.PartitionToken(a))
	}
}

func FuzzPartitionToken(f *testing.F) {
	for i, k := range hostileKeys {
		f.Add(k, hostileKeys[(i+1)%len(hostileKeys)])
	}
	f.Add("", "a")
	f.Add(strings.Repeat("a", 96), strings.Repeat("a", 97))
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, tb := flowstone.PartitionToken(a), flowstone.PartitionToken(b)
		checkToken(t, a, ta)
		checkToken(t, b, tb)
		if (a == b) != (ta == tb) {
			t.Fatalf("PartitionToken(%q) = %q and PartitionToken(%q) = %q", a, ta, b, tb)
		}
	})
}

func TestEmptyPartitionIsAnError(t *testing.T) {
	e := newEngine(t)
	p := examplePipeline(t, nil)
	ctx := ctxT(t)
	_, err := e.Run(ctx, p, "sum", flowstone.Partition(""))
	fe := wantType(t, err, flowstone.TypeBadRequest)
	if !strings.Contains(fe.Message, "empty partition") {
		t.Fatalf("message %q", fe.Message)
	}
	_, err = e.Get(ctx, p, "sum", flowstone.Partition(""))
	wantType(t, err, flowstone.TypeBadRequest)
	_, err = e.Run(ctx, p, "sum", flowstone.Partition(strings.Repeat("x", flowstone.MaxPartitionLen+1)))
	wantType(t, err, flowstone.TypeBadRequest)
	_, err = e.Run(ctx, p, "sum", flowstone.Partition("\xff"))
	wantType(t, err, flowstone.TypeBadRequest)
}

// An unpartitioned asset has one partition, DefaultPartition: every verb
// refuses another key with bad_request before anything runs or is read,
// and calls that name no partition (or the default by name) work.
func TestUnpartitionedAssetRefusesPartitions(t *testing.T) {
	e := newEngine(t)
	var n, d, s int
	p := examplePipeline(t, map[string]*int{"numbers": &n, "doubled": &d, "sum": &s})
	ctx := ctxT(t)
	checkEveryVerbRefuses(t, e, p, "sum", "../../etc/passwd")
	checkEveryVerbRefuses(t, e, p, "numbers", "eu")
	if n+d+s != 0 {
		t.Fatalf("refused calls executed assets: %d %d %d", n, d, s)
	}
	if _, err := e.Run(ctx, p, "sum"); err != nil {
		t.Fatal(err)
	}
	if res, err := e.Run(ctx, p, "sum", flowstone.Partition(flowstone.DefaultPartition)); err != nil || !res.Cached {
		t.Fatalf("run of the default partition by name = %+v, %v; want the cached value", res, err)
	}
	if st, err := e.Status(ctx, p, "sum"); err != nil || st.State != flowstone.StateCompleted {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if c, err := e.Invalidate(ctx, p, "numbers", flowstone.AllPartitions(), flowstone.Cascade()); c != 3 || err != nil {
		t.Fatalf("invalidate of every partition = %d, %v; want 3", c, err)
	}
}

// A partitioned asset's verbs all refuse a key its scheme rejects, as Run
// does: status of a non-date partition of a daily asset is bad_request,
// not not_found.
func TestEveryVerbChecksThePartitionScheme(t *testing.T) {
	e := newEngine(t)
	var ran atomic.Bool
	p := flowstone.MustPipeline("p",
		flowstone.Asset("lookup", func(*flowstone.Context) (any, error) { ran.Store(true); return 1, nil }),
		flowstone.Asset("daily", func(*flowstone.Context) (any, error) { ran.Store(true); return 1, nil },
			flowstone.DependsOn("lookup"), flowstone.PartitionedBy(flowstone.Daily)),
		flowstone.Asset("report", func(*flowstone.Context) (any, error) { ran.Store(true); return 1, nil }, flowstone.DependsOn("daily")),
	)
	checkEveryVerbRefuses(t, e, p, "daily", "us")
	checkEveryVerbRefuses(t, e, p, "report", "2025-02-30")
	checkEveryVerbRefuses(t, e, p, "report", flowstone.DefaultPartition)
	if ran.Load() {
		t.Fatal("an asset ran for a refused partition")
	}
	// lookup has a partitioned asset downstream: it is materialized per
	// partition of it, and takes those keys.
	ctx := ctxT(t)
	if _, err := e.Run(ctx, p, "report", flowstone.Partition("2025-01-15")); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.Exists(ctx, p, "lookup", flowstone.Partition("2025-01-15")); !ok || err != nil {
		t.Fatalf("exists lookup of the run's partition = %v, %v", ok, err)
	}
}

// checkEveryVerbRefuses wants bad_request from every verb given key for
// asset.
func checkEveryVerbRefuses(t *testing.T, e *flowstone.Engine, p *flowstone.Pipeline, asset, key string) {
	t.Helper()
	ctx := ctxT(t)
	part := flowstone.Partition(key)
	_, err := e.Run(ctx, p, asset, part)
	wantType(t, err, flowstone.TypeBadRequest)
	wantType(t, e.Validate(p, asset, part), flowstone.TypeBadRequest)
	_, err = e.Get(ctx, p, asset, part)
	wantType(t, err, flowstone.TypeBadRequest)
	_, err = e.Exists(ctx, p, asset, part)
	wantType(t, err, flowstone.TypeBadRequest)
	_, err = e.Status(ctx, p, asset, part)
	wantType(t, err, flowstone.TypeBadRequest)
	wantType(t, e.Cancel(ctx, p, asset, part), flowstone.TypeBadRequest)
	_, err = e.Invalidate(ctx, p, asset, part)
	wantType(t, err, flowstone.TypeBadRequest)
	_, err = e.Invalidate(ctx, p, asset, flowstone.Partitions(key))
	wantType(t, err, flowstone.TypeBadRequest)
	_, err = e.Backfill(ctx, p, asset, flowstone.Partitions(key))
	wantType(t, err, flowstone.TypeBadRequest)
	wantType(t, e.Seed(ctx, p, asset, 1, part), flowstone.TypeBadRequest)
	// The pipeline's methods use the default engine: the same check.
	_, err = p.Status(ctx, asset, part)
	wantType(t, err, flowstone.TypeBadRequest)
}

func TestDateRangeDays(t *testing.T) {
	for _, tc := range []struct {
		from, to time.Time
		want     int64
	}{
		{day(2025, 1, 1), day(2025, 1, 1), 1},
		{day(2025, 1, 1), day(2025, 12, 31), 365},
		{day(2024, 1, 1), day(2024, 12, 31), 366},
		{day(2025, 1, 2), day(2025, 1, 1), 0},
		{time.Date(2025, 3, 30, 23, 0, 0, 0, time.FixedZone("CEST", 2*3600)), day(2025, 3, 31), 2},
		{day(1, 1, 1), day(9999, 12, 31), 3652059},
	} {
		if got := flowstone.DateRangeDays(tc.from, tc.to); got != tc.want {
			t.Errorf("DateRangeDays(%v, %v) = %d, want %d", tc.from, tc.to, got, tc.want)
		}
		if tc.want > 0 && tc.want <= flowstone.MaxDateRangeDays {
			if n := len(flowstone.Dates(tc.from, tc.to)); int64(n) != tc.want {
				t.Errorf("Dates(%v, %v) has %d days, DateRangeDays says %d", tc.from, tc.to, n, tc.want)
			}
		}
	}
	_, err := flowstone.ParseDateRange("0001-01-01..9999-12-31")
	if fe := wantType(t, err, flowstone.TypeBadRequest); !strings.Contains(fe.Message, "3652059 days") {
		t.Errorf("ParseDateRange of ten thousand years: %v", fe)
	}
	if days, err := flowstone.ParseDateRange("2025-01-01..2025-01-03"); err != nil || len(days) != 3 {
		t.Errorf("ParseDateRange of three days = %v, %v", days, err)
	}
}
