package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Xano's error codes. Front ends branch on these strings, so they are part of
// the wire contract and must stay byte-exact.
const (
	CodeInputError      = "ERROR_CODE_INPUT_ERROR"
	CodeAccessDenied    = "ERROR_CODE_ACCESS_DENIED"
	CodeUnauthorized    = "ERROR_CODE_UNAUTHORIZED"
	CodeNotFound        = "ERROR_CODE_NOT_FOUND"
	CodeTooManyRequests = "ERROR_CODE_TOO_MANY_REQUESTS"
	CodeFatal           = "ERROR_FATAL"
)

// Messages that are Xano's own (SPEC §4) or our decisions (documented in the
// docs/wire-contract.md). Kept in one place so tests and handlers cannot drift apart.
const (
	MsgInvalidCredentials = "Invalid Credentials."
	MsgAccountInUse       = "This account is already in use."
	MsgAuthRequired       = "Unauthorized - Authentication Required"
	MsgInvalidToken       = "Invalid token."
	MsgTokenExpired       = "Token has expired."
	MsgOtherDataSource    = "This token belongs to a different datasource."
	MsgNotLocated         = "Unable to locate request."
	MsgSignupClosed       = "Signup is not available for this table."
	MsgAccessDenied       = "Access denied: insufficient permissions."
	MsgCrossSiteCookie    = "Access denied: the session cookie cannot be used from another site."
	MsgFatal              = "An internal error occurred."
	MsgInvalidEmail       = "Invalid email address."
	MsgNotText            = "Value must be text."
	MsgBadJSON            = "Request body is not valid JSON."
	MsgBadForm            = "Request body could not be parsed."
	MsgUnknownDataSource  = "Unknown data source."
)

// Error is a response in Xano's error envelope. Handlers return it instead of
// a caddyhttp.Error because Caddy would answer those with an empty body, and
// Xano clients read code and message from the body.
type Error struct {
	Status  int
	Code    string
	Message string
	// Param names the offending input; Xano then sends payload {"param": …},
	// otherwise payload is the empty string.
	Param string
	// RetryAfter is sent as Retry-After (whole seconds, at least 1) with a
	// 429 or 503; 0 means 1s.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// MarshalJSON writes the envelope with keys in Xano's order.
func (e *Error) MarshalJSON() ([]byte, error) {
	var payload any = ""
	if e.Param != "" {
		payload = map[string]string{"param": e.Param}
	}
	return json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Payload any    `json:"payload"`
	}{e.Code, e.Message, payload})
}

func inputError(param, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInputError, Message: msg, Param: param}
}

func missingParam(param string) *Error {
	return inputError(param, "Missing param: "+param)
}

func unauthorized(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: msg}
}

func accessDenied(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeAccessDenied, Message: msg}
}

var (
	errNotLocated = &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: MsgNotLocated}
	errFatal      = &Error{Status: http.StatusInternalServerError, Code: CodeFatal, Message: MsgFatal}
	errBusy       = &Error{Status: http.StatusServiceUnavailable, Code: CodeTooManyRequests, Message: "The server is busy, please retry shortly."}
)

// WriteError sends e in the Xano envelope.
func WriteError(w http.ResponseWriter, e *Error) {
	setRetryAfter(w, e)
	writeJSON(w, e.Status, e)
}

// setRetryAfter sets Retry-After on the answers that need one (429, 503),
// in the envelope or on a page.
func setRetryAfter(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", retryAfterSeconds(e.RetryAfter))
	}
}

// writeJSON sends v as JSON. Every response of ours may carry a token or a
// user record, so none of them may be cached or sniffed as something else.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(errFatal)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
