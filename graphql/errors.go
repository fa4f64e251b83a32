package graphql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	gqlerrors "github.com/graph-gophers/graphql-go/errors"

	"github.com/relaymeter/relaymeter/ledger"
)

// The codes in errors' extensions.code: stable, for clients to branch on.
const (
	// CodeUnauthenticated: the API key is missing, unknown, revoked or
	// expired.
	CodeUnauthenticated = "UNAUTHENTICATED"
	// CodeUnavailable: the key registry cannot be reached for a key not
	// seen recently; retry.
	CodeUnavailable = "UNAVAILABLE"
	// CodeBadUserInput: an argument is invalid (cursor, filter, id, page
	// size).
	CodeBadUserInput = "BAD_USER_INPUT"
	// CodeParseFailed: the query is not GraphQL.
	CodeParseFailed = "GRAPHQL_PARSE_FAILED"
	// CodeValidationFailed: the query does not fit the schema or the
	// limits (depth, among others).
	CodeValidationFailed = "GRAPHQL_VALIDATION_FAILED"
	// CodeBadRequest: the HTTP request is not a GraphQL request.
	CodeBadRequest = "BAD_REQUEST"
	// CodeQueryTooLong: the query exceeds Config.MaxQueryLength.
	CodeQueryTooLong = "QUERY_TOO_LONG"
	// CodePayloadTooLarge: the body exceeds Config.MaxBodyBytes.
	CodePayloadTooLarge = "PAYLOAD_TOO_LARGE"
	// CodeInternal: the server failed; details are in its log only.
	CodeInternal = "INTERNAL"
	// CodeForbidden: the caller's key is valid but its role may not do
	// this (a mutation, an admin list, the quarantine).
	CodeForbidden = "FORBIDDEN"
	// CodeNotFound: a mutation names an application, supplier or key
	// that does not exist.
	CodeNotFound = "NOT_FOUND"
	// CodeResultTooLarge: usageSeries would return more rows than its
	// bound; narrow the range, the filter, the window or groupBy.
	CodeResultTooLarge = "RESULT_TOO_LARGE"
	// CodeRateLimited: the caller's key sent more requests than its rate
	// allows (HTTP 429); retry after the Retry-After header's seconds.
	CodeRateLimited = "RATE_LIMITED"
)

// codedError is a resolver error with a code extension.
type codedError struct {
	msg, code string
}

func (e *codedError) Error() string { return e.msg }

// Extensions returns the error's extensions for the response.
func (e *codedError) Extensions() map[string]any { return map[string]any{"code": e.code} }

// badInput returns a BAD_USER_INPUT error.
func badInput(msg string) error { return &codedError{msg: msg, code: CodeBadUserInput} }

// internalError is what a client sees of a server failure.
var internalError = &codedError{msg: "internal error", code: CodeInternal}

// fail turns a ledger error into what the client may see: invalid input
// as such, anything else logged and reported as INTERNAL.
func fail(ctx context.Context, log *slog.Logger, op string, err error) error {
	var in *ledger.InvalidInputError
	if errors.As(err, &in) {
		return badInput("invalid " + in.Field + ": " + in.Reason)
	}
	var tooMany *ledger.TooManyRowsError
	if errors.As(err, &tooMany) {
		return &codedError{code: CodeResultTooLarge, msg: fmt.Sprintf(
			"the answer has more than %d rows: narrow filter.from and filter.to, the filter, the window or groupBy", tooMany.Limit)}
	}
	level := slog.LevelError
	if ctx.Err() != nil {
		level = slog.LevelWarn // the client went away
	}
	log.Log(ctx, level, "graphql: query failed", "op", op, "err", err)
	return internalError
}

// classify sets extensions.code on errors that lack one: errors of
// parsing, validation and argument coercion (which graphql-go reports
// without extensions) are the client's; resolver errors without a code
// and panics are the server's.
func classify(errs []*gqlerrors.QueryError) {
	for _, e := range errs {
		if _, ok := e.Extensions["code"]; ok {
			continue
		}
		code := CodeBadUserInput
		switch {
		case e.ResolverError != nil:
			code = CodeInternal
		case errors.Is(e.Err, gqlerrors.ErrSyntax):
			code = CodeParseFailed
		case e.Rule != "":
			code = CodeValidationFailed
		}
		if e.Extensions == nil {
			e.Extensions = map[string]any{}
		}
		e.Extensions["code"] = code
	}
}

// panicHandler reports a resolver's panic as INTERNAL without its value;
// the value and stack are logged by panicLogger.
type panicHandler struct{}

func (panicHandler) MakePanicError(context.Context, any) *gqlerrors.QueryError {
	return &gqlerrors.QueryError{Message: internalError.msg, Extensions: internalError.Extensions()}
}

// panicLogger logs resolvers' panics.
type panicLogger struct{ log *slog.Logger }

func (l panicLogger) LogPanic(ctx context.Context, value any) {
	l.log.ErrorContext(ctx, "graphql: resolver panicked", "panic", value)
}
