package xanoauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2"

	"github.com/xanoauth/caddy-xanoauth/handlers"
	"github.com/xanoauth/caddy-xanoauth/store"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI adds operator endpoints to Caddy's admin API (the `caddy trust`
// pattern): they run inside the server process, so they never fight it for
// the bbolt lock.
//
//	POST /xano/keys/rotate       a new signing key; older keys verify until their tokens expire
//	POST /xano/sessions/revoke   {"table":"user","data_source":"live","user_id":1} revokes every session of the user
//	POST /xano/users             {"table":"admin","email":…,"password":…,"fields":{"role":"admin"}} creates a user
//	PATCH /xano/users            {"table":"user","email":…,"fields":{"role":"admin"}} changes fields, extras or password (a new password logs the user out everywhere)
type adminAPI struct {
	ctx caddy.Context
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.xano",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Provision keeps the config's context; the app is looked up per request
// because a zero-config app only exists once a handler has asked for it.
func (a *adminAPI) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	return nil
}

// Routes returns the admin routes.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/xano/keys/rotate", Handler: caddy.AdminHandlerFunc(a.rotateKeys)},
		{Pattern: "/xano/sessions/revoke", Handler: caddy.AdminHandlerFunc(a.revokeSessions)},
		{Pattern: "/xano/users", Handler: caddy.AdminHandlerFunc(a.users)},
	}
}

func (a *adminAPI) app() (*App, error) {
	v, err := a.ctx.AppIfConfigured("xano")
	if err != nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("the xano app is not running")}
	}
	app, ok := v.(*App)
	if !ok || app.svc == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("the xano app is not running")}
	}
	return app, nil
}

func (a *adminAPI) rotateKeys(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed: %s", r.Method)}
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	n, err := app.RotateKeys(r.Context())
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusConflict, Err: err}
	}
	return json.NewEncoder(w).Encode(map[string]int{"keys": n})
}

// revokeRequest is the body of POST /xano/sessions/revoke.
type revokeRequest struct {
	Table      string `json:"table"`
	DataSource string `json:"data_source"`
	UserID     int64  `json:"user_id"`
}

func (a *adminAPI) revokeSessions(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed: %s", r.Method)}
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	var req revokeRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("decoding request: %v", err)}
	}
	if req.Table == "" {
		req.Table = DefaultTable
	}
	if req.DataSource == "" {
		req.DataSource = app.DataSources[0]
	}
	t, ok := app.svc.Tables[req.Table]
	if !ok || req.UserID <= 0 || !slices.Contains(app.DataSources, req.DataSource) {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New("need a known table, a known data_source (or none) and a user_id")}
	}
	n, err := app.svc.RevokeUser(r.Context(), t, req.DataSource, req.UserID, "")
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	return json.NewEncoder(w).Encode(map[string]int{"revoked": n})
}

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ caddy.Provisioner = (*adminAPI)(nil)
)

// userRequest is the body of POST /xano/users: an operator creating a user
// or, with update, changing one. Unlike signup it may set extras (that is
// how an operator makes an admin) and works on closed tables.
type userRequest struct {
	Table      string         `json:"table"`
	DataSource string         `json:"data_source"`
	Email      string         `json:"email"`
	Password   string         `json:"password"`
	Fields     map[string]any `json:"fields"`
}

// users creates a user (POST) or updates the fields and/or password of an
// existing one, found by email (PATCH). Extras changed here reach tokens
// at the user's next login or refresh.
func (a *adminAPI) users(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost && r.Method != http.MethodPatch {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed: %s", r.Method)}
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	var req userRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("decoding request: %v", err)}
	}
	if req.Table == "" {
		req.Table = DefaultTable
	}
	if req.DataSource == "" {
		req.DataSource = app.DataSources[0]
	}
	u, err := app.svc.AdminUpsert(r.Context(), req.DataSource, req.Table, req.Email, req.Password, req.Fields, r.Method == http.MethodPost)
	if err != nil {
		return caddy.APIError{HTTPStatus: adminStatus(err), Err: err}
	}
	return json.NewEncoder(w).Encode(map[string]any{"id": u.ID, "email": u.Email})
}

func adminStatus(err error) int {
	switch {
	case errors.Is(err, store.ErrEmailTaken):
		return http.StatusConflict
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	}
	var bad *handlers.AdminInputError
	if errors.As(err, &bad) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
