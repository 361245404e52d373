package flowstone

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// A signal token names one gate (the run, the asset, the partition, and
// when the gate opened) and is signed with the engine's signal secret:
//
//	fsg1.<base64url(claim as JSON)>.<base64url(HMAC-SHA256(secret, "fsg1." + claim part))>
//
// It is computed again whenever it is listed, never stored: the records
// do not hold it, so reading the store does not give it away. The MAC is
// compared in constant time. A gate opened again (after an invalidate,
// or by another run) has another OpenedAt, hence another token; a token
// is good for one signal, since its gate then no longer waits.

// tokenPrefix begins every token, and the MAC's input.
const tokenPrefix = "fsg1."

// minSecretLen is the shortest signal secret accepted, in bytes.
const minSecretLen = 16

// maxTokenLen bounds a token before anything is decoded: a claim with the
// longest partition fits.
const maxTokenLen = 16 << 10

// tokenClaim is what a token names.
type tokenClaim struct {
	Pipeline  string `json:"p"`
	Asset     string `json:"a"`
	Partition string `json:"k"`
	RunID     string `json:"r"`
	// Opened is the gate's OpenedAt in Unix nanoseconds.
	Opened int64 `json:"o"`
}

// signalToken signs c with secret.
func signalToken(secret []byte, c tokenClaim) string {
	b, _ := json.Marshal(c) // strings and a number: cannot fail
	body := base64.RawURLEncoding.EncodeToString(b)
	return tokenPrefix + body + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(secret, body))
}

func tokenMAC(secret []byte, body string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(tokenPrefix))
	m.Write([]byte(body))
	return m.Sum(nil)
}

// badToken is the one error of every token refused: it does not say what
// was wrong with it.
func badToken() *Error {
	return newError(TypeBadRequest, map[string]any{"field": "token"},
		"the signal token is not valid: use the token the fleet issued for the gate (fsctl approvals lists it), whole and unchanged")
}

// parseToken verifies token with secret and returns its claim.
func parseToken(secret []byte, token string) (tokenClaim, error) {
	c, body, mac, ok := splitToken(token)
	if !ok {
		return tokenClaim{}, badToken()
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, tokenMAC(secret, body)) {
		return tokenClaim{}, badToken()
	}
	return c, nil
}

// splitToken decodes a token's claim, unverified, and returns its parts.
func splitToken(token string) (c tokenClaim, body, mac string, ok bool) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok || len(token) > maxTokenLen {
		return c, "", "", false
	}
	body, mac, ok = strings.Cut(rest, ".")
	if !ok {
		return c, "", "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || json.Unmarshal(b, &c) != nil {
		return c, "", "", false
	}
	if validName("pipeline", c.Pipeline) != nil || validName("asset", c.Asset) != nil || validPartitionText(c.Partition) != nil || c.RunID == "" {
		return c, "", "", false
	}
	return c, body, mac, true
}
