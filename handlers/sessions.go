package handlers

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/xanoauth/caddy-xanoauth/password"
	"github.com/xanoauth/caddy-xanoauth/ratelimit"
	"github.com/xanoauth/caddy-xanoauth/store"
	"github.com/xanoauth/caddy-xanoauth/token"
)

// Session messages (our decisions; documented in docs/wire-contract.md).
const (
	MsgInvalidRefresh = "Invalid refresh token."
	MsgRefreshExpired = "Refresh token has expired."
)

// refreshTokenLen is the length of an encoded refresh token: 32 random
// bytes in unpadded base64url.
const refreshTokenLen = 43

// MaxSessionRevocations is how many single-session logouts of one user
// (per table and data source) are recorded as such within one token
// lifetime; past it a logout logs the user out everywhere instead (our
// decision; documented in docs/security.md). Each single-session logout leaves
// a record, kept on disk and in memory until the token it revoked would
// have expired, so without a bound one account looping login and logout
// could grow the revocation set without end. 100 is far beyond what one
// person does across their devices in a token lifetime.
const MaxSessionRevocations = 100

// DefaultRefreshGrace is how long a spent refresh token may come back (a
// second tab refreshing at the same moment) before it counts as reuse.
const DefaultRefreshGrace = 10 * time.Second

// tokenPair is what signup, login and refresh hand out.
type tokenPair struct {
	Access  string
	Refresh string
}

// sessions holds the per-service state of refresh handling: the results of
// recent refreshes, so that a concurrent refresh with the same token gets
// the same pair, and locks that serialise refreshes of one token.
type sessions struct {
	locks [64]sync.Mutex
	mu    sync.Mutex
	grace map[string]graceEntry
}

type graceEntry struct {
	pair  tokenPair
	until time.Time
}

func (ss *sessions) lock(hash []byte) *sync.Mutex { return &ss.locks[hash[0]%64] }

func (ss *sessions) recent(hash []byte, now time.Time) (tokenPair, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	e, ok := ss.grace[string(hash)]
	if !ok || now.After(e.until) {
		return tokenPair{}, false
	}
	return e.pair, true
}

func (ss *sessions) remember(hash []byte, p tokenPair, until, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.grace == nil {
		ss.grace = map[string]graceEntry{}
	}
	for k, e := range ss.grace { // entries live seconds; the map stays small
		if now.After(e.until) {
			delete(ss.grace, k)
		}
	}
	ss.grace[string(hash)] = graceEntry{p, until}
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashRefresh(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// wellFormedRefresh rejects anything that cannot be one of our refresh
// tokens before it costs a store read.
func wellFormedRefresh(raw string) bool {
	if len(raw) != refreshTokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(raw)
	return err == nil
}

// accessExp is the exp of an access token of table t issued at now.
func accessExp(t *Table, now time.Time) int64 { return now.Unix() + int64(t.TokenTTL/time.Second) }

// mintAccess issues an access token of session sid for u with iat iat,
// which the caller takes from IssuedAt (accessIAT) and stores with the
// session, so that a log-out-everywhere can tell whether its cutoff
// covers the session.
func (s *Service) mintAccess(t *Table, ds string, u *store.User, sid string, now time.Time, iat int64) (string, int64, error) {
	exp := accessExp(t, now)
	tok, err := s.Keys().Mint(token.Claims{
		ID: u.ID, Table: t.Name, DS: ds, Extras: extrasOf(t, u), SID: sid,
		IssuedAt: iat, NotBefore: now.Unix(), Expiry: exp,
	})
	return tok, exp, err
}

// accessIAT is the iat of a token for user userID of realm minted now:
// the store's (IssuedAt), later than any log-out-everywhere of the user's,
// which revokes by iat.
func (s *Service) accessIAT(realm store.Realm, userID int64, now time.Time) int64 {
	return s.Store.IssuedAt(realm, userID, now.Unix())
}

// errPasswordChanged is returned when a user's password hash changed
// between the check of a password against it and what that check allowed.
var errPasswordChanged = errors.New("the password changed meanwhile")

// loginSession issues the tokens of a new session of u for a login whose
// password pw was checked against the hash checked: an access token always, a
// refresh token when the table has refresh on. Only a session with a
// refresh token is stored (durably, before its token is handed out): the
// token has to be found again. One without lives in its access token
// alone, and revoking it needs no record (store/cutoffs.go), so a login
// costs its password hash, no write and two reads.
//
// A password change (or reset) that commits while the login runs must not
// leave it a session. The change stores the new hash before it records its
// cutoff (RevokeUser), and this reads the hash again after it has minted
// and stored: either that read finds a hash that no longer verifies pw,
// and the login is refused with errPasswordChanged, or the session and
// its token came before the cutoff, which revokes them. (A hash that
// changed but still verifies pw is another login's upgrade.)
func (s *Service) loginSession(ctx context.Context, t *Table, ds string, u *store.User, checked, pw string) (tokenPair, error) {
	ns, err := s.newSession(t, ds)
	if err != nil {
		return tokenPair{}, err
	}
	ns.sess.UserID = u.ID
	ns.sess.IssuedAt = s.accessIAT(ns.sess.Realm, u.ID, ns.now)
	if ns.rt != nil {
		if err := s.Store.CreateSession(ctx, ns.sess, ns.rt); err != nil {
			return tokenPair{}, err
		}
	}
	p, err := ns.issue(s, t, u)
	if err != nil {
		return tokenPair{}, err
	}
	now, err := s.Store.UserByID(ctx, ns.sess.Realm, u.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return tokenPair{}, err
	}
	same := false
	if err == nil {
		if same, err = s.stillThePassword(ctx, now.PasswordHash, checked, pw); err != nil {
			return tokenPair{}, err
		}
	}
	if !same {
		if ns.rt != nil {
			// Its tokens were never handed out; the stored session goes
			// all the same, so that nothing of the login outlives it.
			if err := s.Store.RevokeSession(ctx, ns.sess.SID, ns.sess.AccessExp); err != nil {
				return tokenPair{}, err
			}
		}
		return tokenPair{}, errPasswordChanged
	}
	return p, nil
}

// swapHash stores hash as user id's password hash if the stored one is
// still expected, the one a password was checked against: otherwise it
// stores nothing and returns errPasswordChanged with the stored hash, so
// that a write based on an old check never undoes a newer change.
func (s *Service) swapHash(ctx context.Context, realm store.Realm, id int64, expected, hash string) (current string, err error) {
	err = s.Store.UpdateUser(ctx, realm, id, func(u *store.User) error {
		if u.PasswordHash != expected {
			current = u.PasswordHash
			return errPasswordChanged
		}
		u.PasswordHash = hash
		return nil
	})
	return current, err
}

// stillThePassword reports whether pw, found right against the hash
// checked, is still the user's password now that the stored hash is
// current. Another login's hash upgrade (bcrypt or outdated parameters to
// argon2id) changes the hash and not the password, so a different hash is
// a password change only if it does not verify pw. That costs one more
// hash, in that race only; ErrBusy is returned as Verify returns it.
func (s *Service) stillThePassword(ctx context.Context, current, checked, pw string) (bool, error) {
	if current == checked {
		return true, nil
	}
	ok, _, err := s.Hasher.Verify(ctx, current, pw)
	if errors.Is(err, password.ErrBusy) {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return ok, nil // an unusable hash verifies nothing
}

// signupSession creates u, and its first session if that is stored (see
// loginSession), in one durable write, and issues the session's tokens.
func (s *Service) signupSession(ctx context.Context, t *Table, ds string, u *store.User) (tokenPair, error) {
	ns, err := s.newSession(t, ds)
	if err != nil {
		return tokenPair{}, err
	}
	// A new user has no cutoff (ids are never reused): its tokens' iat is
	// the clock's.
	ns.sess.IssuedAt = ns.now.Unix()
	if ns.rt != nil {
		err = s.Store.CreateUserSession(ctx, ns.sess.Realm, u, ns.sess, ns.rt)
	} else {
		err = s.Store.CreateUser(ctx, ns.sess.Realm, u)
	}
	if err != nil {
		return tokenPair{}, err
	}
	return ns.issue(s, t, u)
}

// revocationCounts counts each user's single-session revocations for
// revokeSession: one limiter per table, whose window is the table's
// MaxTokenTTL, the longest a revocation record can matter, for tables the
// app gave no counter (Service.RevocationCounters). It lives in memory
// only, so a restart starts every count afresh.
type revocationCounts struct {
	mu       sync.Mutex
	perTable map[string]*ratelimit.Limiter
}

// NewRevocationCounter makes table t's counter of single-session
// revocations per user: MaxSessionRevocations per MaxTokenTTL, the longest
// a revocation record can matter. MaxTokenTTL is a configured token_ttl
// (at least a second in practice); the floor only keeps ratelimit.New's
// minimum. The key bound is the default: a key is one user, ~150 bytes.
func NewRevocationCounter(t *Table) (*ratelimit.Limiter, error) {
	return ratelimit.New(MaxSessionRevocations, RevocationWindow(t), 0)
}

// RevocationWindow is the window of table t's revocation counter.
func RevocationWindow(t *Table) time.Duration { return max(t.MaxTokenTTL(), time.Second) }

// limiter returns table t's counter, made on first use.
func (rc *revocationCounts) limiter(t *Table) *ratelimit.Limiter {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rl := rc.perTable[t.Name]; rl != nil {
		return rl
	}
	rl, err := NewRevocationCounter(t)
	if err != nil {
		panic(err) // not reached: the limit and window are valid
	}
	if rc.perTable == nil {
		rc.perTable = map[string]*ratelimit.Limiter{}
	}
	rc.perTable[t.Name] = rl
	return rl
}

// revokeSession logs out session sid of user userID of table t in realm,
// whose token asking for it expires at until (unix seconds). Every such
// logout leaves a record (store.RevokeSession) until that token would
// have expired, so they are counted per user: past MaxSessionRevocations
// within the table's MaxTokenTTL the logout is folded into a
// log-out-everywhere of the user (RevokeUser), which keeps one merged
// cutoff per user however often it happens, and revokes this session
// with the others. Since no record outlives one MaxTokenTTL, at any
// instant a user has at most MaxSessionRevocations unexpired records from
// this process's single-session logouts (expired ones wait for the next
// prune). A fold, like any log-out-everywhere, writes no record for the
// stored sessions (refresh on) that its cutoff covers, only for one whose
// newest token is younger than the cutoff (a refresh racing it). It
// reports whether it folded.
func (s *Service) revokeSession(ctx context.Context, t *Table, realm store.Realm, userID int64, sid string, until int64) (folded bool, err error) {
	rl := s.RevocationCounters[t.Name]
	if rl == nil {
		rl = s.revocations.limiter(t)
	}
	now := s.now()
	// Cheap: Prune stops at the first user whose count is still live, so
	// it costs what it drops, and memory holds only live counts.
	rl.Prune(now)
	if ok, _ := rl.Allow(realm.DataSource+"\x00"+strconv.FormatInt(userID, 10), now); ok {
		return false, s.Store.RevokeSession(ctx, sid, until)
	}
	_, err = s.RevokeUser(ctx, t, realm.DataSource, userID, "")
	return true, err
}

// RevokeUser logs user userID of table t in ds out everywhere but session
// except (empty: everywhere), stored sessions or not, and returns how many
// stored sessions that ended. The cutoff lasts until the last exp a token
// issued before it can have, under the longest lifetime the table has had
// (the pruner adds the leeway).
func (s *Service) RevokeUser(ctx context.Context, t *Table, ds string, userID int64, except string) (int, error) {
	now := s.now().Unix()
	return s.Store.RevokeUserSessions(ctx, store.Realm{DataSource: ds, Table: t.Name}, userID, store.Cutoff{
		Before: now,
		Except: except,
		Until:  now + int64(t.MaxTokenTTL()/time.Second),
	})
}

// pendingSession is a session drawn but not stored yet.
type pendingSession struct {
	sess    *store.Session
	rt      *store.RefreshToken // nil when the table has refresh off
	refresh string              // the refresh token itself, sent once
	now     time.Time
}

// newSession draws a session of table t in ds, starting now; the caller
// (or the store) sets its UserID.
func (s *Service) newSession(t *Table, ds string) (*pendingSession, error) {
	sidBytes := make([]byte, 16)
	if _, err := rand.Read(sidBytes); err != nil {
		return nil, err
	}
	now := s.now()
	ns := &pendingSession{now: now, sess: &store.Session{
		SID:       hex.EncodeToString(sidBytes),
		Realm:     store.Realm{DataSource: ds, Table: t.Name},
		Created:   now.Unix(),
		AccessExp: accessExp(t, now),
	}}
	if t.RefreshTTL > 0 {
		var err error
		if ns.refresh, err = randomToken(32); err != nil {
			return nil, err
		}
		ns.sess.RefreshExp = now.Add(t.RefreshTTL).Unix()
		ns.rt = &store.RefreshToken{Hash: hashRefresh(ns.refresh), SID: ns.sess.SID, Expires: ns.sess.RefreshExp}
	}
	return ns, nil
}

// issue mints the access token of a stored session for u.
func (ns *pendingSession) issue(s *Service, t *Table, u *store.User) (tokenPair, error) {
	access, _, err := s.mintAccess(t, ns.sess.Realm.DataSource, u, ns.sess.SID, ns.now, ns.sess.IssuedAt)
	if err != nil {
		return tokenPair{}, err
	}
	return tokenPair{Access: access, Refresh: ns.refresh}, nil
}

// refresh exchanges a refresh token for a new pair. The old token is spent;
// presenting it again within the grace window returns the same new pair
// (two tabs refreshing at once), later it revokes the whole session.
func (a *Auth) refresh(w http.ResponseWriter, r *http.Request) *Error {
	t := a.table()
	if t.RefreshTTL <= 0 {
		return errNotLocated // refresh is off for this table, as on Xano
	}
	if e := a.allow(LimitRefresh, r); e != nil {
		return e
	}
	log := a.Svc.Logger.With(zap.String("endpoint", "refresh"), zap.String("table", t.Name))
	ds, in, e := a.inputs(w, r)
	if e != nil {
		return e
	}
	raw, e := in.RequiredText("refreshToken")
	if e != nil {
		return e
	}
	if !wellFormedRefresh(raw) {
		return unauthorized(MsgInvalidRefresh)
	}
	hash := hashRefresh(raw)
	mu := a.Svc.sessions.lock(hash)
	mu.Lock()
	defer mu.Unlock()

	now := a.Svc.now()
	if p, ok := a.Svc.sessions.recent(hash, now); ok {
		// The same pair again, if its access token still holds: its
		// session may have been logged out since, and a refresh token is
		// this table's and this data source's only.
		if _, e := a.Svc.checkToken(p.Access, ds, []string{t.Name}); e != nil {
			if e.Message != MsgOtherDataSource {
				e = unauthorized(MsgInvalidRefresh)
			}
			return e
		}
		a.setSessionCookie(w, r, p.Access, t.TokenTTL)
		return a.sendPair(w, p)
	}
	rt, err := a.Svc.Store.RefreshTokenByHash(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) {
		return unauthorized(MsgInvalidRefresh)
	}
	if err != nil {
		return a.fatal(log, "reading refresh token", err)
	}
	sess, err := a.Svc.Store.SessionBySID(r.Context(), rt.SID)
	if errors.Is(err, store.ErrNotFound) {
		return unauthorized(MsgInvalidRefresh)
	}
	if err != nil {
		return a.fatal(log, "reading session", err)
	}
	if sess.Realm.DataSource != ds {
		return unauthorized(MsgOtherDataSource)
	}
	if sess.Realm.Table != t.Name {
		return unauthorized(MsgInvalidRefresh)
	}
	u, err := a.Svc.Store.UserByID(r.Context(), sess.Realm, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return unauthorized(MsgInvalidRefresh)
	}
	if err != nil {
		return a.fatal(log, "reading user", err)
	}

	var p tokenPair
	iat := a.Svc.accessIAT(sess.Realm, u.ID, now)
	access, exp, err := a.Svc.mintAccess(t, ds, u, sess.SID, now, iat)
	if err != nil {
		return a.fatal(log, "minting token", err)
	}
	if p.Refresh, err = randomToken(32); err != nil {
		return a.fatal(log, "generating refresh token", err)
	}
	p.Access = access
	next := &store.RefreshToken{Hash: hashRefresh(p.Refresh), Expires: now.Add(t.RefreshTTL).Unix()}
	_, err = a.Svc.Store.RotateRefresh(r.Context(), hash, next, iat, exp, now, t.RefreshGrace)
	switch {
	case err == nil:
		a.Svc.sessions.remember(hash, p, now.Add(t.RefreshGrace), now)
		log.Info("refresh", zap.Int64("user_id", u.ID))
		a.setSessionCookie(w, r, p.Access, t.TokenTTL)
		return a.sendPair(w, p)
	case errors.Is(err, store.ErrRefreshReused):
		log.Warn("spent refresh token presented again; session revoked", zap.Int64("user_id", u.ID))
		return unauthorized(MsgInvalidRefresh)
	case errors.Is(err, store.ErrExpired):
		return unauthorized(MsgRefreshExpired)
	case errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrRefreshInGrace):
		// In grace but with no remembered pair (the process restarted in
		// between): refuse this one without punishing the session.
		return unauthorized(MsgInvalidRefresh)
	default:
		return a.fatal(log, "rotating refresh token", err)
	}
}

// logout revokes the session of the presented access token and/or refresh
// token; with all=true, every session of the user.
func (a *Auth) logout(w http.ResponseWriter, r *http.Request) *Error {
	t := a.table()
	log := a.Svc.Logger.With(zap.String("endpoint", "logout"), zap.String("table", t.Name))
	// An access token that has expired or was revoked does not stop a
	// logout: the refresh token beside it (a client that refreshes lazily
	// holds both) still ends its session, and a dead session cookie is
	// still cleared.
	c, authErr := a.Svc.authenticate(r, a.sessionCookieNames(r), []string{t.Name})
	if authErr != nil && authErr.Status != http.StatusUnauthorized {
		return authErr
	}
	refuse := func(e *Error) *Error {
		if authErr != nil {
			a.clearSessionCookie(w, r)
		}
		return e
	}
	ds, e := a.Svc.dataSource(r)
	if e != nil {
		return e
	}
	in, e := ParseInput(w, r, a.MaxBody)
	if e != nil {
		return e
	}
	rawRefresh, hasRefresh, e := in.Text("refreshToken")
	if e != nil {
		return e
	}
	hasRefresh = hasRefresh && rawRefresh != ""
	if c == nil && !hasRefresh {
		if authErr != nil {
			return refuse(authErr)
		}
		return unauthorized(MsgAuthRequired)
	}
	all, _, _ := in.Text("all")
	everywhere := all == "true" || all == "1"

	type target struct {
		realm  store.Realm
		userID int64
		sid    string
		until  int64
	}
	var targets []target
	if c != nil {
		targets = append(targets, target{store.Realm{DataSource: c.DS, Table: c.Table}, c.ID, c.SID, c.Expiry})
	}
	if hasRefresh {
		var rt *store.RefreshToken
		var err error
		if wellFormedRefresh(rawRefresh) {
			rt, err = a.Svc.Store.RefreshTokenByHash(r.Context(), hashRefresh(rawRefresh))
		} else {
			err = store.ErrNotFound
		}
		var sess *store.Session
		if err == nil {
			sess, err = a.Svc.Store.SessionBySID(r.Context(), rt.SID)
		}
		switch {
		case err == nil && sess.Realm.Table == t.Name && sess.Realm.DataSource != ds:
			// As /auth/refresh answers: a refresh token is its data
			// source's only.
			if c == nil {
				return refuse(unauthorized(MsgOtherDataSource))
			}
		case err == nil && sess.Realm.Table == t.Name && c != nil && sess.SID == c.SID:
			// The access token's own session: revoked, and counted
			// (revokeSession), once.
		case err == nil && sess.Realm.Table == t.Name && sess.Revoked && !everywhere:
			// Logged out already, and its record stands. A replayed
			// refresh token must not count towards the user's fold: whoever
			// kept a dead one could log the user out everywhere.
		case err == nil && sess.Realm.Table == t.Name:
			targets = append(targets, target{sess.Realm, sess.UserID, sess.SID, sess.AccessExp})
		case err == nil || errors.Is(err, store.ErrNotFound):
			if c == nil {
				return refuse(unauthorized(MsgInvalidRefresh))
			}
		default:
			return a.fatal(log, "reading refresh token", err)
		}
	}
	for _, tg := range targets {
		var err error
		folded := false
		if everywhere {
			_, err = a.Svc.RevokeUser(r.Context(), t, tg.realm.DataSource, tg.userID, "")
		} else {
			folded, err = a.Svc.revokeSession(r.Context(), t, tg.realm, tg.userID, tg.sid, tg.until)
		}
		if err != nil {
			return a.fatal(log, "revoking session", err)
		}
		if folded {
			log.Warn("too many single-session logouts within a token lifetime; logged out everywhere instead",
				zap.Int64("user_id", tg.userID), zap.Int("limit", MaxSessionRevocations))
		}
		log.Info("logout", zap.Int64("user_id", tg.userID), zap.Bool("all", everywhere || folded))
	}
	a.clearSessionCookie(w, r)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// changePassword checks the old password, sets the new one and revokes
// every other session of the user; the calling session stays valid.
func (a *Auth) changePassword(w http.ResponseWriter, r *http.Request) *Error {
	t := a.table()
	log := a.Svc.Logger.With(zap.String("endpoint", "password"), zap.String("table", t.Name))
	c, e := a.Svc.authenticate(r, nil, []string{t.Name})
	if e != nil {
		return e
	}
	if c == nil {
		return unauthorized(MsgAuthRequired)
	}
	in, e := ParseInput(w, r, a.MaxBody)
	if e != nil {
		return e
	}
	oldPw, e := in.RequiredText("old_password")
	if e != nil {
		return e
	}
	newPw, e := in.RequiredText("new_password")
	if e != nil {
		return e
	}
	if err := t.Policy.Check(newPw); err != nil {
		return inputError("new_password", err.Error())
	}
	realm := store.Realm{DataSource: c.DS, Table: c.Table}
	u, err := a.Svc.Store.UserByID(r.Context(), realm, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return unauthorized(MsgInvalidToken)
	}
	if err != nil {
		return a.fatal(log, "reading user", err)
	}
	// A stolen access token must not become an unlimited oracle for the
	// old password: guesses are reserved and counted like failed logins,
	// in flight ones included.
	limit := a.loginLimit(r, realm, u.Email)
	if e := limit.reserve(); e != nil {
		return e
	}
	ok, _, err := limit.verify(r.Context(), a.Svc.Hasher, u.PasswordHash, oldPw)
	if errors.Is(err, password.ErrBusy) || ctxErr(r.Context()) {
		return a.hashFailure(log, err)
	}
	if !ok {
		log.Info("password change refused", zap.Int64("user_id", u.ID))
		return accessDenied(MsgInvalidCredentials)
	}
	hash, err := a.Svc.Hasher.Hash(r.Context(), newPw)
	if err != nil {
		return a.hashFailure(log, err)
	}
	// The old password was checked against u's hash. If another change or
	// an administrator's reset came in between, it is no longer the
	// password, and this change must not undo that one; if a login only
	// upgraded the hash of the same password, the change goes ahead.
	for attempt, expected := 1, u.PasswordHash; ; attempt++ {
		var current string
		current, err = a.Svc.swapHash(r.Context(), realm, u.ID, expected, hash)
		if !errors.Is(err, errPasswordChanged) {
			break
		}
		same, verr := a.Svc.stillThePassword(r.Context(), current, expected, oldPw)
		if verr != nil {
			return a.hashFailure(log, verr)
		}
		if !same || attempt == 3 {
			log.Info("password change refused: the password changed while it was checked", zap.Int64("user_id", u.ID))
			return accessDenied(MsgInvalidCredentials)
		}
		expected = current
	}
	if err != nil {
		return a.fatal(log, "saving password", err)
	}
	n, err := a.Svc.RevokeUser(r.Context(), t, realm.DataSource, u.ID, c.SID)
	if err != nil {
		return a.fatal(log, "revoking sessions", err)
	}
	log.Info("password changed", zap.Int64("user_id", u.ID), zap.Int("sessions_revoked", n))
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (a *Auth) sendPair(w http.ResponseWriter, p tokenPair) *Error {
	resp := tokenResponse{AuthToken: p.Access, RefreshToken: p.Refresh}
	if a.MirrorAccessToken {
		resp.AccessToken = p.Access
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
