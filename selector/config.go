package selector

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// Defaults of Config.
const (
	// DefaultHubURL is the base URL patterns use when Config.HubURL is
	// empty. ".invalid" is reserved (RFC 6761), so it names no real host:
	// relative patterns still match relative topics, but not absolute topics
	// on the real hub.
	DefaultHubURL = "https://hub.invalid/.well-known/mercure"
	// DefaultMaxLength is the default maximum length of a selector, in
	// bytes.
	DefaultMaxLength = 2048
	// DefaultMaxSelectors is the default maximum number of selectors in
	// one subscribe request.
	DefaultMaxSelectors = 1000
	// DefaultMaxVariables is the default maximum number of variables of a
	// URI template. Templates in use name one to a handful
	// ("https://example.com/users/{user}/books/{book}"); each variable
	// adds a group to the regular expression a template compiles to, and
	// matching time grows with them.
	DefaultMaxVariables = 16
	// DefaultCompileCacheSize is the default number of compiled URL
	// patterns and URI templates a Compiler keeps for reuse.
	DefaultCompileCacheSize = 4096
	// DefaultCompileCacheBytes is the default memory budget, in bytes as
	// estimated by Matcher.Size, of the compiled URL patterns and URI
	// templates a Compiler keeps for reuse.
	DefaultCompileCacheBytes = 32 << 20
	// DefaultMaxQueryBytes is the default maximum of the estimated memory
	// (Matcher.Size) of the selectors of one subscribe request: a thousand
	// URL patterns or short templates take about 8 MiB.
	DefaultMaxQueryBytes = 16 << 20
	// DefaultMatchCacheBytes is the default memory budget, in bytes, of the
	// cache of pattern and template match results.
	DefaultMatchCacheBytes = 32 << 20
)

// Config configures a Compiler. The zero value is valid and means every
// default.
type Config struct {
	// HubURL is the absolute URL of the hub, such as
	// "https://hub.example.com/.well-known/mercure". Relative URL patterns
	// and relative topics are resolved against it. Empty means
	// DefaultHubURL.
	HubURL string
	// MaxLength is the maximum length of a selector, in bytes. Zero means
	// DefaultMaxLength.
	MaxLength int
	// MaxSelectors is the maximum number of selectors ParseQuery accepts in
	// one request. Zero means DefaultMaxSelectors.
	MaxSelectors int
	// MaxVariables is the maximum number of variables of a Template
	// selector, counted as they are written: "{a}{a}" and "{a,b}" have two
	// each. Zero means DefaultMaxVariables.
	MaxVariables int
	// CompileCacheSize is how many compiled patterns and templates are kept
	// so that compiling the same selector again is free. Zero means
	// DefaultCompileCacheSize; a negative value disables the cache.
	CompileCacheSize int
	// CompileCacheBytes bounds the estimated memory (Matcher.Size) of the
	// compiled patterns and templates kept for reuse. Zero means
	// DefaultCompileCacheBytes; a negative value disables the cache.
	CompileCacheBytes int
	// MaxQueryBytes is the maximum estimated memory (the sum of
	// Matcher.Size) of the selectors ParseQuery compiles for one request.
	// Zero means DefaultMaxQueryBytes.
	MaxQueryBytes int
	// MatchCacheBytes bounds the memory, in bytes, of the cache of match
	// results of patterns and templates, shared by every Matcher of the
	// Compiler. Zero means DefaultMatchCacheBytes; a negative value
	// disables the cache. Exact selectors and the wildcard are never
	// cached: comparing strings is cheaper.
	MatchCacheBytes int
}

// Validate reports the first invalid field of c, or nil.
func (c Config) Validate() error {
	if c.HubURL != "" {
		if _, err := resolveBase(c.HubURL); err != nil {
			return err
		}
	}
	if c.MaxLength < 0 {
		return errors.New("selector: MaxLength must not be negative")
	}
	if c.MaxSelectors < 0 {
		return errors.New("selector: MaxSelectors must not be negative")
	}
	if c.MaxVariables < 0 {
		return errors.New("selector: MaxVariables must not be negative")
	}
	if c.MaxQueryBytes < 0 {
		return errors.New("selector: MaxQueryBytes must not be negative")
	}
	return nil
}

// Compiler compiles selectors against one hub URL and set of limits. It is
// safe for concurrent use. Create it with New.
type Compiler struct {
	base         string
	maxLength    int
	maxSelectors int
	maxVariables int
	maxQuery     int
	compiled     *compileCache
	results      *resultCache
	nextID       atomic.Uint64
}

// New returns a Compiler configured by cfg, or the error of cfg.Validate.
func New(cfg Config) (*Compiler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Compiler{
		base:         orDefault(cfg.HubURL, DefaultHubURL),
		maxLength:    orDefault(cfg.MaxLength, DefaultMaxLength),
		maxSelectors: orDefault(cfg.MaxSelectors, DefaultMaxSelectors),
		maxVariables: orDefault(cfg.MaxVariables, DefaultMaxVariables),
		maxQuery:     orDefault(cfg.MaxQueryBytes, DefaultMaxQueryBytes),
	}
	c.compiled = newCompileCache(orDefault(cfg.CompileCacheSize, DefaultCompileCacheSize),
		orDefault(cfg.CompileCacheBytes, DefaultCompileCacheBytes))
	c.results = newResultCache(orDefault(cfg.MatchCacheBytes, DefaultMatchCacheBytes))
	return c, nil
}

// HubURL returns the base URL relative patterns and topics are resolved
// against.
func (c *Compiler) HubURL() string { return c.base }

// MaxLength returns the maximum length of a selector, in bytes.
func (c *Compiler) MaxLength() int { return c.maxLength }

// orDefault returns v, or def when v is the zero value.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Error is a refused selector or topic. Its message is safe to show to
// clients: it never quotes the parsers' internal errors, which Unwrap
// returns for logs.
type Error struct {
	param  string
	reason string
	err    error
}

func newError(reason string, cause error) *Error {
	return &Error{reason: reason, err: cause}
}

// Error returns a one-line description, naming the query parameter that
// carried the selector when there is one.
func (e *Error) Error() string {
	if e.param != "" {
		return fmt.Sprintf("selector: %s: %s", e.param, e.reason)
	}
	return "selector: " + e.reason
}

// Unwrap returns the underlying parser error, if any. Its text may contain
// library internals: log it, do not send it to clients.
func (e *Error) Unwrap() error { return e.err }
