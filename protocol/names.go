package protocol

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// ValidName reports whether s can name a pipeline, an asset or a storage
// backend: 1 to MaxNameBytes letters, digits, '_' or '-', starting with a
// letter (^[A-Za-z][A-Za-z0-9_-]{0,127}$). Names are the only user text that
// becomes part of a subject or key. The error is an *Error with
// CodeBadRequest.
func ValidName(s string) error {
	if err := checkName("name", s); err != nil {
		return err
	}
	return nil
}

// ValidID reports whether s can be a run or worker id: 1 to MaxIDBytes
// letters, digits, '_' or '-' (^[A-Za-z0-9_-]{1,128}$), a single token in
// subjects, KV keys and object keys alike. A worker named after a host with
// dots maps them (to '-', say) first. The error is an *Error with
// CodeBadRequest.
func ValidID(s string) error {
	if err := checkID("id", s); err != nil {
		return err
	}
	return nil
}

// ValidTaskID reports whether s can be a task id: 1 to MaxTaskIDBytes of
// ValidID tokens joined by single dots, which is what TaskID builds. The
// error is an *Error with CodeBadRequest.
func ValidTaskID(s string) error {
	if err := checkTaskID("id", s); err != nil {
		return err
	}
	return nil
}

func checkName(field, s string) *Error {
	ok := len(s) > 0 && len(s) <= MaxNameBytes && isLetter(s[0])
	for i := 1; ok && i < len(s); i++ {
		ok = isTokenByte(s[i])
	}
	if !ok {
		return fieldErrorf(field, "%s %s is not a valid name: use 1-%d letters, digits, '_' or '-', starting with a letter", field, quote(s), MaxNameBytes)
	}
	return nil
}

// checkOptionalName accepts "" (meaning a default) or a valid name.
func checkOptionalName(field, s string) *Error {
	if s == "" {
		return nil
	}
	return checkName(field, s)
}

func checkID(field, s string) *Error {
	if !isToken(s, MaxIDBytes) {
		return fieldErrorf(field, "%s %s is not a valid id: use 1-%d letters, digits, '_' or '-'", field, quote(s), MaxIDBytes)
	}
	return nil
}

func checkTaskID(field, s string) *Error {
	ok := len(s) > 0 && len(s) <= MaxTaskIDBytes
	if ok {
		for tok := range strings.SplitSeq(s, ".") {
			if !isToken(tok, MaxTaskIDBytes) {
				ok = false
				break
			}
		}
	}
	if !ok {
		return fieldErrorf(field, "%s %s is not a valid task id: use tokens of letters, digits, '_' or '-' joined by single dots, %d bytes at most", field, quote(s), MaxTaskIDBytes)
	}
	return nil
}

// checkPartition accepts any valid UTF-8 up to MaxPartitionBytes; empty only
// where it means the default (in requests).
func checkPartition(field, s string, allowEmpty bool) *Error {
	switch {
	case s == "" && !allowEmpty:
		return fieldErrorf(field, "%s is empty: messages past the API carry the resolved partition (%q for unpartitioned assets)", field, DefaultPartition)
	case len(s) > MaxPartitionBytes:
		return fieldErrorf(field, "%s is %d bytes long; the limit is %d", field, len(s), MaxPartitionBytes)
	case !utf8.ValidString(s):
		return fieldErrorf(field, "%s is not valid UTF-8", field)
	}
	return nil
}

// checkObjectKey applies the object stores' portable key rule:
// slash-separated segments of [A-Za-z0-9._=-], none "." or "..".
func checkObjectKey(field, s string) *Error {
	ok := len(s) > 0 && len(s) <= MaxObjectKeyBytes
	if ok {
		for seg := range strings.SplitSeq(s, "/") {
			if seg == "" || seg == "." || seg == ".." {
				ok = false
				break
			}
			for i := 0; ok && i < len(seg); i++ {
				ok = isTokenByte(seg[i]) || seg[i] == '.' || seg[i] == '='
			}
		}
	}
	if !ok {
		return fieldErrorf(field, "%s %s is not a valid object key: use '/'-separated segments of letters, digits, '.', '_', '=' or '-', %d bytes at most", field, quote(s), MaxObjectKeyBytes)
	}
	return nil
}

// checkText accepts any valid UTF-8 (free text such as messages).
func checkText(field, s string) *Error {
	if !utf8.ValidString(s) {
		return fieldErrorf(field, "%s is not valid UTF-8", field)
	}
	return nil
}

func isToken(s string, limit int) bool {
	if len(s) == 0 || len(s) > limit {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isTokenByte(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// quote renders untrusted text for a message, cut to a readable length.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(cut(s, limit)) + "..."
	}
	return strconv.Quote(s)
}

// cut returns at most n bytes of s, not splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
