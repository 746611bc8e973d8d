package rules

import (
	"math"
	"reflect"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// fastExpr runs an expression of numbers and booleans as Go closures over
// an array of slots instead of on expr's VM with a map environment: the
// same program (compiled and checked by expr when the config was loaded),
// the same result (TestFastExprMatchesVM holds them side by side on random
// expressions and values), without a map write and an allocation per name
// on every reading. An expression it does not cover (text, calls, int
// arithmetic, members, ...) runs on the VM.
type fastExpr struct {
	run   func(s []float64) bool
	names []string // slot i holds names[i]: a number, or a bool as 0 or 1
}

// maxExactInt bounds the integer literals compileFast takes: up to it an
// int and its float64 compare the same.
const maxExactInt int64 = 1 << 53

func exactInt(v int) bool { return int64(v) <= maxExactInt && int64(v) >= -maxExactInt }

// compileFast compiles p's checked tree (a name's type is the one the
// checker gave it from the environment, config.ExprEnv); nil when not
// covered.
func compileFast(p *vm.Program) *fastExpr {
	c := fastCompiler{slot: map[string]int{}}
	f, ok := c.boolOf(p.Node())
	if !ok {
		return nil
	}
	return &fastExpr{run: f, names: c.names}
}

type fastCompiler struct {
	slot  map[string]int
	names []string
}

func (c *fastCompiler) slotOf(name string) int {
	i, ok := c.slot[name]
	if !ok {
		i = len(c.names)
		c.slot[name], c.names = i, append(c.names, name)
	}
	return i
}

type numFn = func(s []float64) float64

// numOf compiles a number; isInt says it is an int in expr (whose
// arithmetic wraps where a float's does not: not covered).
func (c *fastCompiler) numOf(n ast.Node) (f numFn, isInt, ok bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		k := n.Type().Kind()
		if k != reflect.Float64 && k != reflect.Int {
			return nil, false, false
		}
		i := c.slotOf(n.Value)
		return func(s []float64) float64 { return s[i] }, k == reflect.Int, true
	case *ast.IntegerNode:
		if !exactInt(n.Value) {
			return nil, false, false
		}
		v := float64(n.Value)
		return func([]float64) float64 { return v }, true, true
	case *ast.FloatNode:
		v := n.Value
		return func([]float64) float64 { return v }, false, true
	case *ast.ConstantNode:
		switch v := n.Value.(type) {
		case float64:
			return func([]float64) float64 { return v }, false, true
		case int:
			if exactInt(v) {
				x := float64(v)
				return func([]float64) float64 { return x }, true, true
			}
		}
		return nil, false, false
	case *ast.UnaryNode:
		x, isInt, ok := c.numOf(n.Node)
		switch {
		case !ok:
		case n.Operator == "+":
			return x, isInt, true
		case n.Operator == "-":
			return func(s []float64) float64 { return -x(s) }, isInt, true
		}
		return nil, false, false
	case *ast.BinaryNode:
		a, ai, ok := c.numOf(n.Left)
		if !ok {
			return nil, false, false
		}
		b, bi, ok := c.numOf(n.Right)
		if !ok {
			return nil, false, false
		}
		switch n.Operator {
		case "/": // a float in expr, ints or not
			return func(s []float64) float64 { return a(s) / b(s) }, false, true
		case "**", "^":
			return func(s []float64) float64 { return math.Pow(a(s), b(s)) }, false, true
		}
		if ai && bi {
			return nil, false, false
		}
		switch n.Operator {
		case "+":
			return func(s []float64) float64 { return a(s) + b(s) }, false, true
		case "-":
			return func(s []float64) float64 { return a(s) - b(s) }, false, true
		case "*":
			return func(s []float64) float64 { return a(s) * b(s) }, false, true
		}
	}
	return nil, false, false
}

type boolFn = func(s []float64) bool

func (c *fastCompiler) boolOf(n ast.Node) (boolFn, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		if n.Type().Kind() != reflect.Bool {
			return nil, false
		}
		i := c.slotOf(n.Value)
		return func(s []float64) bool { return s[i] != 0 }, true
	case *ast.BoolNode:
		v := n.Value
		return func([]float64) bool { return v }, true
	case *ast.ConstantNode:
		if v, ok := n.Value.(bool); ok {
			return func([]float64) bool { return v }, true
		}
		return nil, false
	case *ast.UnaryNode:
		x, ok := c.boolOf(n.Node)
		if !ok || (n.Operator != "!" && n.Operator != "not") {
			return nil, false
		}
		return func(s []float64) bool { return !x(s) }, true
	case *ast.BinaryNode:
		return c.binaryBool(n)
	}
	return nil, false
}

func (c *fastCompiler) binaryBool(n *ast.BinaryNode) (boolFn, bool) {
	switch n.Operator {
	case "&&", "and", "||", "or":
		a, b, ok := c.bools(n)
		if !ok {
			return nil, false
		}
		if n.Operator == "&&" || n.Operator == "and" {
			return func(s []float64) bool { return a(s) && b(s) }, true
		}
		return func(s []float64) bool { return a(s) || b(s) }, true
	case "==", "!=":
		eq, ok := c.equal(n)
		if !ok {
			return nil, false
		}
		if n.Operator == "!=" {
			return func(s []float64) bool { return !eq(s) }, true
		}
		return eq, true
	}
	a, _, ok := c.numOf(n.Left)
	if !ok {
		return nil, false
	}
	b, _, ok := c.numOf(n.Right)
	if !ok {
		return nil, false
	}
	switch n.Operator {
	case "<":
		return func(s []float64) bool { return a(s) < b(s) }, true
	case "<=":
		return func(s []float64) bool { return a(s) <= b(s) }, true
	case ">":
		return func(s []float64) bool { return a(s) > b(s) }, true
	case ">=":
		return func(s []float64) bool { return a(s) >= b(s) }, true
	}
	return nil, false
}

// equal compiles == of two numbers (an int and a float compare as floats
// in expr too) or of two booleans.
func (c *fastCompiler) equal(n *ast.BinaryNode) (boolFn, bool) {
	if a, _, ok := c.numOf(n.Left); ok {
		if b, _, ok := c.numOf(n.Right); ok {
			return func(s []float64) bool { return a(s) == b(s) }, true
		}
		return nil, false
	}
	a, b, ok := c.bools(n)
	if !ok {
		return nil, false
	}
	return func(s []float64) bool { return a(s) == b(s) }, true
}

// bools compiles both sides of n as booleans.
func (c *fastCompiler) bools(n *ast.BinaryNode) (a, b boolFn, ok bool) {
	if a, ok = c.boolOf(n.Left); ok {
		b, ok = c.boolOf(n.Right)
	}
	return a, b, ok
}
