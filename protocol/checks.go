package protocol

import (
	"strconv"
	"time"
)

// Field checks shared by the message types. Each names the field in its
// error, using the JSON name (with a path for nested fields).

func checkNonNegative[N int | int64](field string, n N) *Error {
	if n < 0 {
		return fieldErrorf(field, "%s is %d; it must not be negative", field, n)
	}
	return nil
}

func checkPriority(field string, p int) *Error {
	if p < 0 || p > MaxPriority {
		return fieldErrorf(field, "%s %d is outside 0..%d (3 is the highest)", field, p, MaxPriority)
	}
	return nil
}

// checkTime refuses the zero time, which is always a forgotten field, and
// times that cannot be encoded again: RFC 3339 has four-digit years, and
// while time.Parse takes a zone offset of 24 hours or more, encoding/json
// will not write one.
func checkTime(field string, t time.Time) *Error {
	if t.IsZero() {
		return fieldErrorf(field, "%s is missing (the zero time)", field)
	}
	if y := t.Year(); y < 1 || y > 9999 {
		return fieldErrorf(field, "%s has year %d; use a year in 1..9999", field, y)
	}
	if _, offset := t.Zone(); offset <= -24*60*60 || offset >= 24*60*60 {
		return fieldErrorf(field, "%s has a zone offset of %d seconds; use one within a day of UTC", field, offset)
	}
	return nil
}

func checkSHA256(field, s string) *Error {
	ok := len(s) == 64
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
	}
	if !ok {
		return fieldErrorf(field, "%s %s is not a SHA-256 digest: use 64 lowercase hex digits", field, quote(s))
	}
	return nil
}

// checkNames checks a list of names and refuses duplicates.
func checkNames(field string, names []string) *Error {
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		f := indexed(field, i)
		if err := checkName(f, n); err != nil {
			return err
		}
		if seen[n] {
			return fieldErrorf(f, "%s repeats %q", f, n)
		}
		seen[n] = true
	}
	return nil
}

func indexed(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}
