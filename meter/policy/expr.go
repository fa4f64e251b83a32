package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// ExprName is the name of the expr policy.
const ExprName = "expr"

// ExprVersion is the current version of the expr policy.
const ExprVersion = 1

// ExprCostLimit bounds the work of one evaluation, in CEL's cost units
// (about one per operation, plus the size of strings and bytes scanned);
// an evaluation that would exceed it stops with an error.
const ExprCostLimit = 100_000

// maxExpression bounds the expression's text.
const maxExpression = 16 << 10

// exprSmall is the size (bytes or characters) up to which every string and
// bytes variable of a message counts as small: an expression whose
// estimated cost over small inputs is within ExprCostLimit is evaluated
// without a cost tracker for such messages, since it cannot exceed the
// limit; any other message, or expression, is evaluated with one.
const exprSmall = 4 << 10

func init() {
	Register(Definition{Name: ExprName, Version: ExprVersion, New: newExpr, Payload: true})
}

// ExprParams are the expr policy's parameters.
type ExprParams struct {
	// Expression is a CEL expression of type int: a message's units. It
	// sees direction and role (enum names: "CLIENT_TO_UPSTREAM",
	// "REQUEST"), method, protocol, service and application (strings),
	// wire_size, payload_size and batch_size (ints) and payload (bytes).
	Expression string `json:"expression"`
}

// Validate refuses an empty or oversized expression.
func (p *ExprParams) Validate() error {
	if strings.TrimSpace(p.Expression) == "" {
		return errors.New("expression: empty")
	}
	if len(p.Expression) > maxExpression {
		return fmt.Errorf("expression of %d bytes: at most %d", len(p.Expression), maxExpression)
	}
	return nil
}

// Expr is the expr policy: a message's units are the value of a CEL
// expression over it, compiled and type-checked once when the policy is
// built. A negative value, or an evaluation over ExprCostLimit, is an
// error.
type Expr struct {
	// tracked stops at ExprCostLimit; fast, the same expression without a
	// tracker, is nil unless the expression's cost over small inputs is
	// provably within the limit.
	tracked, fast cel.Program
}

// smallInputs tells the CEL cost estimator that every string and bytes
// variable holds at most exprSmall elements.
type smallInputs struct{}

// EstimateSize bounds the variables' sizes.
func (smallInputs) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	if len(n.Path()) == 1 {
		return &checker.SizeEstimate{Min: 0, Max: exprSmall}
	}
	return nil
}

// EstimateCallCost leaves calls to CEL's own estimates.
func (smallInputs) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

var exprEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("direction", cel.StringType),
		cel.Variable("role", cel.StringType),
		cel.Variable("method", cel.StringType),
		cel.Variable("protocol", cel.StringType),
		cel.Variable("service", cel.StringType),
		cel.Variable("application", cel.StringType),
		cel.Variable("wire_size", cel.IntType),
		cel.Variable("payload_size", cel.IntType),
		cel.Variable("batch_size", cel.IntType),
		cel.Variable("payload", cel.BytesType),
	)
})

func newExpr(raw json.RawMessage) (Policy, error) {
	var p ExprParams
	if err := DecodeParams(raw, &p); err != nil {
		return nil, &ParamsError{Policy: ExprName, Err: err}
	}
	env, err := exprEnv()
	if err != nil {
		return nil, fmt.Errorf("expr: CEL environment: %w", err)
	}
	ast, iss := env.Compile(p.Expression)
	if iss.Err() != nil {
		// The issues name each error's line:column in the expression.
		return nil, &ParamsError{Policy: ExprName, Err: fmt.Errorf("expression: %w", iss.Err())}
	}
	if t := ast.OutputType(); !t.IsExactType(types.IntType) {
		return nil, &ParamsError{Policy: ExprName, Err: fmt.Errorf("expression is of type %s: want int", t)}
	}
	var e Expr
	e.tracked, err = env.Program(ast, cel.CostLimit(ExprCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, &ParamsError{Policy: ExprName, Err: fmt.Errorf("expression: %w", err)}
	}
	if est, err := env.EstimateCost(ast, smallInputs{}); err == nil && est.Max <= ExprCostLimit {
		if e.fast, err = env.Program(ast, cel.EvalOptions(cel.OptOptimize)); err != nil {
			return nil, &ParamsError{Policy: ExprName, Err: fmt.Errorf("expression: %w", err)}
		}
	}
	return e, nil
}

// small reports whether every string and bytes variable of s and m is
// within exprSmall bytes (a string's characters are at most its bytes).
func small(s *Stream, m *event.Message) bool {
	return len(m.Payload) <= exprSmall && len(m.Method) <= exprSmall && len(s.Protocol) <= exprSmall &&
		len(s.Service) <= exprSmall && len(s.Application) <= exprSmall
}

// Name returns "expr".
func (Expr) Name() string { return ExprName }

// Version returns ExprVersion.
func (Expr) Version() int { return ExprVersion }

// exprActivation resolves the expression's variables from one message,
// lazily: only the variables the expression reads are converted.
type exprActivation struct {
	s *Stream
	m *event.Message
}

var enumNames = func() (t struct{ dir, role map[int32]ref.Val }) {
	t.dir = map[int32]ref.Val{}
	for v, n := range event.Direction_name {
		t.dir[v] = types.String(n)
	}
	t.role = map[int32]ref.Val{}
	for v, n := range event.Role_name {
		t.role[v] = types.String(n)
	}
	return t
}()

func enumName(names map[int32]ref.Val, v int32) ref.Val {
	if n, ok := names[v]; ok {
		return n
	}
	return types.String(fmt.Sprint(v))
}

// ResolveName returns the value of the variable name.
func (a *exprActivation) ResolveName(name string) (any, bool) {
	m := a.m
	switch name {
	case "direction":
		return enumName(enumNames.dir, int32(m.Direction)), true
	case "role":
		return enumName(enumNames.role, int32(m.Role)), true
	case "method":
		return types.String(m.Method), true
	case "protocol":
		return types.String(a.s.Protocol), true
	case "service":
		return types.String(a.s.Service), true
	case "application":
		return types.String(a.s.Application), true
	case "wire_size":
		return types.Int(clampInt(m.WireSize)), true
	case "payload_size":
		return types.Int(clampInt(m.PayloadSize)), true
	case "batch_size":
		return types.Int(m.BatchSize), true
	case "payload":
		return types.Bytes(m.Payload), true
	}
	return nil, false
}

// Parent returns nil: the message is the only scope.
func (*exprActivation) Parent() interpreter.Activation { return nil }

func clampInt(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}

var activations = sync.Pool{New: func() any { return new(exprActivation) }}

// Units evaluates the expression over m. It carries no state.
func (e Expr) Units(s *Stream, _ []byte, m *event.Message) (uint64, []byte, error) {
	if s == nil {
		s = &Stream{}
	}
	a := activations.Get().(*exprActivation)
	a.s, a.m = s, m
	prg := e.tracked
	if e.fast != nil && small(s, m) {
		prg = e.fast
	}
	out, _, err := prg.Eval(a)
	a.s, a.m = nil, nil
	activations.Put(a)
	if err != nil {
		return 0, nil, fmt.Errorf("evaluating the expression: %w", err)
	}
	n, ok := out.(types.Int)
	if !ok {
		return 0, nil, fmt.Errorf("the expression gave %s, not an int", out.Type())
	}
	if n < 0 {
		return 0, nil, fmt.Errorf("the expression gave %d units: negative", int64(n))
	}
	return uint64(n), nil, nil
}

var _ Policy = Expr{}
