package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// DefaultMaxBody is the body size limit when none is configured.
const DefaultMaxBody = 64 << 10

// maxMultipartParts bounds the work a hostile multipart body can cause
// within the byte limit (many tiny parts each cost a header parse).
const maxMultipartParts = 256

// Input holds a request's named inputs, as Xano gathers them: the query
// string first, then the body, whose values win. Values are strings,
// json.Number, bools, nil, or (from JSON) arrays and objects.
type Input map[string]any

// ParseInput reads the query string and a JSON, urlencoded or multipart body
// of at most maxBody bytes. A body with no or a text/plain content type is
// accepted when it parses as a JSON object, because some clients post JSON
// without a content type. Unknown keys are kept; the endpoints ignore them.
func ParseInput(w http.ResponseWriter, r *http.Request, maxBody int64) (Input, *Error) {
	in := Input{}
	for k, vs := range r.URL.Query() {
		if len(vs) > 0 {
			in[k] = vs[0]
		}
	}
	if r.Body == nil || r.Body == http.NoBody {
		return in, nil
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeInputError,
				Message: fmt.Sprintf("Request body exceeds the limit of %d bytes.", maxBody)}
		}
		return nil, inputError("", MsgBadForm)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return in, nil
	}

	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var fromBody map[string]any
	var perr *Error
	switch {
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		fromBody, perr = parseJSONObject(body)
	case mediaType == "application/x-www-form-urlencoded":
		fromBody, perr = parseURLEncoded(body)
	case mediaType == "multipart/form-data":
		fromBody, perr = parseMultipart(body, params["boundary"])
	case mediaType == "" || mediaType == "text/plain":
		// Only a body that really is a JSON object counts; anything else
		// is ignored, as Xano ignores a body it cannot interpret.
		if obj, e := parseJSONObject(body); e == nil {
			fromBody = obj
		}
	}
	if perr != nil {
		return nil, perr
	}
	for k, v := range fromBody {
		in[k] = v
	}
	return in, nil
}

// parseJSONObject parses a JSON object body (see decodeJSONObject, which
// also refuses duplicate keys and marks strings that are not clean text).
func parseJSONObject(body []byte) (map[string]any, *Error) { return decodeJSONObject(body) }

func parseURLEncoded(body []byte) (map[string]any, *Error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, inputError("", MsgBadForm)
	}
	out := make(map[string]any, len(vals))
	for k, vs := range vals {
		out[k] = vs[0]
	}
	return out, nil
}

func parseMultipart(body []byte, boundary string) (map[string]any, *Error) {
	if boundary == "" {
		return nil, inputError("", MsgBadForm)
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	out := map[string]any{}
	for i := 0; ; i++ {
		if i >= maxMultipartParts {
			return nil, inputError("", MsgBadForm)
		}
		part, err := mr.NextPart()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, inputError("", MsgBadForm)
		}
		name := part.FormName()
		if name == "" || part.FileName() != "" {
			continue // files are not auth inputs
		}
		val, err := io.ReadAll(part) // bounded: the whole body is in memory already
		if err != nil {
			return nil, inputError("", MsgBadForm)
		}
		if _, seen := out[name]; !seen {
			out[name] = string(val)
		}
	}
}

// Text returns input key as text. A missing key or JSON null reports
// present=false. Numbers and booleans are taken as their text, as Xano casts
// them; arrays and objects, invalid UTF-8 and NUL bytes are input errors.
func (in Input) Text(key string) (s string, present bool, e *Error) {
	v, ok := in[key]
	if !ok || v == nil {
		return "", false, nil
	}
	switch v := v.(type) {
	case notText:
		return "", true, inputError(key, MsgNotText)
	case string:
		s = v
	case json.Number:
		s = v.String()
	case bool:
		s = fmt.Sprint(v)
	default:
		return "", true, inputError(key, MsgNotText)
	}
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return "", true, inputError(key, MsgNotText)
	}
	return s, true, nil
}

// Email returns the required email input, trimmed and lower-cased as Xano
// does, and checked to be a plain address.
func (in Input) Email() (string, *Error) {
	raw, e := in.RequiredText("email")
	if e != nil {
		return "", e
	}
	return normalizeEmail(raw)
}

// RequiredText is Text for an input that must be present and non-empty.
func (in Input) RequiredText(key string) (string, *Error) {
	s, present, e := in.Text(key)
	if e != nil {
		return "", e
	}
	if !present || s == "" {
		return "", missingParam(key)
	}
	return s, nil
}
