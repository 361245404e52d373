// Package jsonw appends JSON strings and times exactly as encoding/json
// writes them, without reflection. It is the shared piece of the
// hand-written encoders of the hot path (protocol's tasks, completions and
// events; the engine's materialization records), whose tests check their
// output byte for byte against encoding/json. It imports only the
// standard library.
package jsonw

import (
	"time"
	"unicode/utf8"
)

// String appends s as an encoding/json Encoder with SetEscapeHTML(false)
// writes it: '"', '\\' and control characters escaped, U+2028 and U+2029
// as \u2028 and \u2029, and each byte of invalid UTF-8 as \ufffd.
func String(dst []byte, s string) []byte { return appendString(dst, s, &plain) }

// HTMLString appends s as json.Marshal writes it: as String, and '<', '>'
// and '&' escaped too.
func HTMLString(dst []byte, s string) []byte { return appendString(dst, s, &htmlSafe) }

// Time appends t as time.Time.MarshalJSON writes it, reporting false where
// MarshalJSON fails (a year outside 0..9999, a zone offset of 24 hours or
// more).
func Time(dst []byte, t time.Time) ([]byte, bool) {
	dst = append(dst, '"')
	n0 := len(dst)
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	// The checks of time.Time.appendStrictRFC3339.
	switch {
	case dst[n0+len("9999")] != '-':
		return dst, false
	case dst[len(dst)-1] != 'Z':
		c := dst[len(dst)-len("Z07:00")]
		h := dst[len(dst)-len("07:00"):]
		if '0' <= c && c <= '9' || 10*(h[0]-'0')+(h[1]-'0') >= 24 {
			return dst, false
		}
	}
	return append(dst, '"'), true
}

func appendString(dst []byte, s string, safe *[256]bool) []byte {
	dst = append(dst, '"')
	i := 0
	for i < len(s) && safe[s[i]] {
		i++
	}
	if i == len(s) {
		// Names, ids and most text: nothing to escape.
		dst = append(dst, s...)
		return append(dst, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				// Other control characters (and <, >, & when HTML-safe).
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// plain holds the bytes a JSON string carries as they are: ASCII but for
// control characters, '"' and '\\'; htmlSafe also leaves out '<', '>' and
// '&'.
var plain, htmlSafe = func() (p, h [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		p[c] = c != '"' && c != '\\'
		h[c] = p[c] && c != '<' && c != '>' && c != '&'
	}
	return p, h
}()
